"""``python -m bench [--quick | --smoke] [--only SCENARIO ...] [--out DIR]``: run the benchmarks against a
local emulator and write ``latest.json`` and ``latest.md`` into ``bench/results`` (or ``--out``).

With ``--only``, the chosen scenarios are merged into an existing ``latest.json`` of the same mode (the other
scenarios' figures are kept, and a note records the separate run); ``--replace`` writes only this run."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import connections

SCENARIOS = (
    "imports",
    "hot_path",
    "transfers",
    "fleet",
    "contention",
    "small_files",
    "watch",
    "watch_dagrun",
)
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The runner's options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, P=4 only: a minute or two")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--out", type=Path, default=RESULTS, help="result directory (default bench/results)")
    parser.add_argument(
        "--replace", action="store_true", help="with --only: overwrite latest.json instead of merging into it"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; a scenario that fails is recorded with its error and the run goes on."""
    args = parse_args(argv)
    connections.isolate_airflow()  # before anything imports Airflow
    from bench import (
        contention,
        fleet,
        hot_path,
        imports,
        report,
        small_files,
        transfers,
        watch,
        watch_dagrun,
    )
    from bench.emulator import start_emulator
    from bench.settings import FULL, QUICK, SMOKE
    from bench.targets import evaluate

    settings = SMOKE if args.smoke else QUICK if args.quick else FULL
    modules = {
        "imports": imports,
        "hot_path": hot_path,
        "transfers": transfers,
        "fleet": fleet,
        "contention": contention,
        "small_files": small_files,
        "watch": watch,
        "watch_dagrun": watch_dagrun,
    }
    chosen = args.only or list(SCENARIOS)
    results: dict[str, Any] = {
        "machine": report.machine_info(),
        "settings": {k: v for k, v in vars(settings).items()},
        "errors": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    emulator = start_emulator(workdir / "emulator")
    started = time.monotonic()
    try:
        for name in chosen:
            print(f"[bench] {name} ({settings.mode}) ...", flush=True)
            begun = time.monotonic()
            try:
                results[name] = modules[name].run(settings, emulator=emulator, workdir=workdir)
            except Exception as exc:
                traceback.print_exc()
                results["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(f"[bench] {name} done in {time.monotonic() - begun:.0f} s", flush=True)
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - started, 1)
    if args.only and not args.replace:
        results = report.merge(report.read_json(args.out / "latest.json"), results, chosen)
    results["targets"] = evaluate(results)
    report.write_json(results, args.out / "latest.json")
    (args.out / "latest.md").write_text(report.markdown(results))
    print((args.out / "latest.md").read_text())
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
