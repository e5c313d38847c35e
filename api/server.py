"""Run the API under uvicorn: in the foreground (``pymonitor api serve``) or in a thread beside a node."""

from __future__ import annotations

import threading

import uvicorn

from .app import ApiSettings, create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
START_TIMEOUT_S = 10.0
POLL_S = 0.01


def _server(settings: ApiSettings, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
    return uvicorn.Server(config)


def serve(settings: ApiSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    _server(settings, host, port).run()


class BackgroundServer:
    """The API in a daemon thread (a node's, or a test's); ``stop`` asks uvicorn to finish and waits."""

    def __init__(self, settings: ApiSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.server = _server(settings, host, port)
        self.thread = threading.Thread(target=self._run, name="api-server", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, SystemExit) as exc:  # a port in use: told to whoever called start()
            self.error = exc

    def start(self) -> BackgroundServer:
        self.thread.start()
        waited = threading.Event()
        for _ in range(int(START_TIMEOUT_S / POLL_S)):
            if self.server.started or not self.thread.is_alive():
                break
            waited.wait(POLL_S)
        if not self.server.started:
            where = f"{self.server.config.host}:{self.server.config.port}"
            why = "timed out" if self.error is None else f"{type(self.error).__name__} {self.error} (port in use?)"
            raise RuntimeError(f"the API server did not start on {where}: {why}")
        return self

    @property
    def port(self) -> int:
        """The bound port (the real one when asked for port 0)."""
        sockets = [s for server in self.server.servers for s in server.sockets]
        return int(sockets[0].getsockname()[1]) if sockets else self.server.config.port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(START_TIMEOUT_S)
