"""``pymonitor api``: serve the REST API, and make API keys (shown once, kept only as digests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pymonitor.actors.alerting.config import AlertingConfig, load_config
from pymonitor.actors.alerting.errors import AlertConfigError

from .output import fail, now_ms, print_json

api_app = typer.Typer(help="The REST API: serve it, make API keys.", no_args_is_help=True)
app = api_app

KeysOpt = Annotated[Path, typer.Option("--keys", help="The API keys file (JSON, digests only).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]


def _alerting(path: Path | None) -> AlertingConfig | None:
    if path is None:
        return None
    try:
        return load_config(path, now_ms=now_ms())
    except AlertConfigError as exc:
        fail(f"{path}: {exc}")


@api_app.command("serve")
def serve(
    alerts_db: Annotated[Path, typer.Option("--alerts-db", help="The alerting actor's history file.")] = Path(
        "alerts.db"
    ),
    hub_db: Annotated[Path | None, typer.Option("--hub-db", help="The hub's store, for /v1/fleet.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The [alerting] TOML (reply secret, SMS callbacks).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless a proxy fronts it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8080,
    keys: KeysOpt = Path("api-keys.json"),
) -> None:
    """Serve /v1 (alerts, replies, fleet) until interrupted."""
    try:
        from pymonitor.api.app import ApiSettings
        from pymonitor.api.auth import ApiKeys, KeyFileError
        from pymonitor.api.server import serve as run
    except ImportError as exc:
        fail(f"the API needs pymonitor[api] installed ({exc})")

    alerting = _alerting(config)
    responders = alerting.replies.responders if alerting is not None and alerting.replies is not None else ()
    try:
        api_keys = ApiKeys.load(keys, responders)
    except KeyFileError as exc:
        fail(str(exc))
    if not api_keys.keys:
        typer.echo(f"warning: no API keys ({keys} is empty): only /v1/health and signed replies will work", err=True)
    settings = ApiSettings(alerts_db=alerts_db, hub_db=hub_db, alerting=alerting, keys=api_keys)
    typer.echo(f"serving the PyMonitor API on http://{host}:{port}/v1 ({len(api_keys.keys)} keys)")
    run(settings, host, port)


@api_app.command("add-key")
def add_key(
    user: Annotated[str, typer.Argument(help="Who the key is for (shown in the audit trail).")],
    keys: KeysOpt = Path("api-keys.json"),
    json: Json = False,
) -> None:
    """Make a key for USER and print it once: only its digest is kept in the keys file."""
    from pymonitor.api.auth import KeyFileError
    from pymonitor.api.auth import add_key as add

    try:
        key = add(keys, user, now_ms())
    except KeyFileError as exc:
        fail(str(exc))
    if json:
        print_json({"user": user, "key": key, "keys_file": str(keys)})
        return
    typer.echo(f"API key for {user} (shown once; only its digest is kept in {keys}):")
    typer.echo(key)
