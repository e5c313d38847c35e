"""Replacing a file whole: a crash leaves the old content or the new one, never half of each."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigSyncError


def replace_file(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write a new file, fsync it, rename it over ``path``, fsync the directory.

    ``mode`` None keeps the old file's permissions (0644 for a new file); a given mode is forced
    even on a leftover temporary file (``O_CREAT`` alone would not change an existing one).
    """
    tmp = path.with_name(f".{path.name}.new")
    try:
        if mode is None:
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigSyncError(f"{path}: cannot write the new file: {exc.strerror}") from None
