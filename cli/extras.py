"""Command groups that need an optional extra: without it, the command names the extra to install.

The core install (``pip install pymonitor``) must run ``pymonitor demo`` and every core command on
a Raspberry Pi; ``alerts``, ``notify`` and ``api`` need ``holidays`` and ``httpx`` (the ``alerts``
extra), and ``api serve`` also FastAPI (the ``api`` extra). Importing those groups must not break
the whole CLI when the extra is missing.
"""

from __future__ import annotations

import typer

from .output import fail

ANY_ARGUMENTS = {"allow_extra_args": True, "ignore_unknown_options": True}


def missing_extra(app: typer.Typer, name: str, extras: str, error: ImportError) -> None:
    """Register ``name`` as a command that, whatever its arguments, says which extras to install (exit 2)."""

    @app.command(name, context_settings=ANY_ARGUMENTS, help=f"(not installed: pip install 'pymonitor\\[{extras}]')")
    def needs_extra(ctx: typer.Context) -> None:
        fail(f"pymonitor {name} needs pip install 'pymonitor[{extras}]' ({error})")
