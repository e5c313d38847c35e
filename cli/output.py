"""What every CLI command shares: JSON on stdout, errors on stderr with exit status 2, the wall clock."""

from __future__ import annotations

import sys
import time
from typing import Any, NoReturn

import orjson
import typer


def print_json(data: Any) -> None:
    """One JSON document on its own line (``--json`` output; non-string dict keys allowed)."""
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> NoReturn:
    """``error: message`` on stderr, then exit (2: bad input, the convention of every command)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def now_ms() -> int:
    """Wall-clock ms since the epoch, for records a command writes (cores get time passed in)."""
    return time.time_ns() // 1_000_000
