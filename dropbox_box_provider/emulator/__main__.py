"""Command line: ``python -m dropbox_box_provider.emulator --host 127.0.0.1 --port 0 --seed demo``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from dropbox_box_provider.emulator.persistence import StateSaver, load_state
from dropbox_box_provider.emulator.seed import BOX_JWT_CONFIG_NAME, apply_seed
from dropbox_box_provider.emulator.server import base_url, bind_socket, create_app, make_server
from dropbox_box_provider.emulator.state import EmulatorState


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The emulator's options."""
    parser = argparse.ArgumentParser(
        prog="python -m dropbox_box_provider.emulator",
        description="Local Dropbox and Box OAuth + file API emulator (real hosts are path prefixes).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)"
    )
    parser.add_argument("--seed", choices=["demo"], default=None, help="register the demo apps and users")
    parser.add_argument(
        "--state", type=Path, default=None, help="JSON file to load at start and save changes to"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="where the Box JWT app config is written")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=float(os.environ.get("DBX_EMULATOR_LATENCY_MS") or 0),
        help="milliseconds every API request waits, like a network round trip (default "
        "$DBX_EMULATOR_LATENCY_MS or 0; also the control API's config key latency_ms)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM."""
    args = parse_args(argv)
    data_dir: Path = args.data_dir or Path(tempfile.mkdtemp(prefix="dbx-box-emulator-"))
    state = EmulatorState()
    if args.latency_ms < 0:
        print("--latency-ms must be 0 or more", file=sys.stderr)
        return 2
    state.seed_config["latency_ms"] = args.latency_ms
    apply_seed(state, args.seed, data_dir)
    saver = None
    if args.state is not None:
        load_state(state, args.state)
        saver = StateSaver(state, args.state)
        saver.start()
    sock = bind_socket(args.host, args.port)
    server = make_server(create_app(state=state), sock)

    async def announce() -> None:
        if args.seed:
            print(f"box jwt config: {data_dir / BOX_JWT_CONFIG_NAME}", flush=True)
        print(f"listening on {base_url(sock)}", flush=True)

    original_startup = server.startup

    async def startup(sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await original_startup(sockets=sockets)
        await announce()

    original_shutdown = server.shutdown

    async def shutdown(sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await original_shutdown(sockets=sockets)
        if saver is not None:  # before uvicorn re-raises the captured SIGTERM
            saver.stop()

    server.startup = startup  # type: ignore[method-assign]
    server.shutdown = shutdown  # type: ignore[method-assign]
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
