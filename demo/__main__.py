"""``python -m demo [--ui] [--workdir DIR]``: run the demo; exit status 0 only if every step succeeded."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from demo.console import StepFailed
from demo.run import DemoRun
from demo.workspace import REPO, Workspace


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The demo's options."""
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="The whole product on embedded defaults: emulator, sqlite token store, example DAGs.",
    )
    parser.add_argument("--ui", action="store_true", help="finish by serving the Airflow UI until Ctrl-C")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO / ".demo",
        help="work directory, removed and recreated at start (default: .demo in the repository)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 on success, 1 when a step failed, 130 when interrupted."""
    args = parse_args(argv)
    demo = DemoRun(Workspace(args.workdir.resolve()), ui=args.ui)
    try:
        demo.run()
    except StepFailed as exc:
        demo.console.error(f"\nDemo failed at step {demo.console.number}: {exc}")
        return 1
    except KeyboardInterrupt:
        demo.console.error("\nDemo interrupted; the processes it started were stopped.")
        return 130
    except SystemExit as exc:  # SIGTERM/SIGHUP, turned into SystemExit by the supervisor
        demo.console.error(
            f"\nDemo stopped by a signal (exit {exc.code}); the processes it started were stopped."
        )
        return int(exc.code) if isinstance(exc.code, int) else 1
    except Exception:
        demo.console.error(f"\nDemo failed at step {demo.console.number} with an unexpected error:")
        traceback.print_exc()
        return 1
    print("\nDemo finished: every step succeeded.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
