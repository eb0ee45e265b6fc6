"""App factory and in-process runner of the emulator (Starlette app served by uvicorn)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from dropbox_box_provider.emulator import (
    box_api,
    box_events,
    box_file_api,
    control,
    dropbox_api,
    dropbox_batch,
    dropbox_file_api,
    oauth,
)
from dropbox_box_provider.emulator.middleware import FaultsAndStats
from dropbox_box_provider.emulator.responses import ApiError
from dropbox_box_provider.emulator.seed import apply_seed
from dropbox_box_provider.emulator.state import EmulatorState


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response


def create_app(
    state: EmulatorState | None = None, seed: str | None = None, data_dir: str | Path | None = None
) -> ASGIApp:
    """The emulator as an ASGI app; ``seed`` ("demo") installs the demo apps (key file in ``data_dir``)."""
    if state is None:
        state = EmulatorState()
        if seed is not None:
            directory = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="dbx-box-emulator-"))
            apply_seed(state, seed, directory)
    app = Starlette(
        routes=[
            *control.routes(),
            *oauth.routes(),
            *dropbox_api.routes(),
            *dropbox_file_api.routes(),
            *box_file_api.routes(),  # before box_api: it hands the requests it does not serve on
            *dropbox_batch.routes(),
            *box_api.routes(),
        ],
        exception_handlers={ApiError: _api_error},
    )
    app.state.emulator = state
    wrapped = FaultsAndStats(box_events.JournalSync(app, state), state)
    return wrapped


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 picks a free one); the real port is on the socket."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: ASGIApp, sock: socket.socket) -> uvicorn.Server:
    """A uvicorn server for ``app`` (single process, warnings only, no access log)."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30, lifespan="off")
    return uvicorn.Server(config)


def base_url(sock: socket.socket) -> str:
    """http://HOST:PORT of a bound socket."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextlib.contextmanager
def run_in_thread(
    seed: str | None = "demo",
    data_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    state: EmulatorState | None = None,
) -> Iterator[str]:
    """Serve the emulator in a daemon thread on a free port; yields its base URL, stops on exit."""
    app = create_app(state=state, seed=seed, data_dir=data_dir)
    sock = bind_socket(host, 0)
    server = make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="emulator")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator thread did not start; see its log output above")
        time.sleep(0.01)
    try:
        yield base_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
