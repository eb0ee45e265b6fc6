"""``python -m tests.fleet [--full] [--workdir DIR]``: run the fleet scenarios (see tests.fleet.run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fleet.run import DEFAULT_WORKDIR, run
from tests.fleet.scenarios import CI, FULL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the larger size (200 tasks, 50 files to 64 MiB)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="work directory (recreated)")
    args = parser.parse_args(argv)
    return run(FULL if args.full else CI, args.workdir.resolve())


if __name__ == "__main__":
    sys.exit(main())
