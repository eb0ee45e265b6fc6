"""``make fleet``: start the fleet, run the scenarios, print the figures last, stop everything by PID.

Exit status 0 only if every scenario that ran passed (scenario 3 is reported PENDING until its DAG exists);
1 on any failure. Where Redis, PostgreSQL or the Celery provider is missing the run is skipped with the
reason (exit 0), unless ``REQUIRE_FLEET=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from demo.processes import ProcessSupervisor
from tests.fleet.cluster import REDIS_HOST, REDIS_PORT, REPO, Fleet, FleetError
from tests.fleet.scenarios import (
    Outcome,
    Size,
    files_move_once,
    handoff,
    refresh_economy,
    worker_dies,
)

REQUIRE_ENV = "REQUIRE_FLEET"
DEFAULT_WORKDIR = REPO / ".fleet"


def redis_problem(host: str, port: int) -> str | None:
    """Why Redis at ``host:port`` cannot be the broker (a PING over a plain socket: no client library)."""
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"Redis at {host}:{port} is unreachable ({exc.strerror or type(exc).__name__})"
    if not answer.startswith(b"+PONG"):
        return f"Redis at {host}:{port} answered PING with {answer[:40]!r}"
    return None


def missing_requirement() -> str | None:
    """Why the fleet cannot run on this machine (Redis, PostgreSQL, the Celery provider), or None."""
    problem = redis_problem(REDIS_HOST, REDIS_PORT)
    if problem:
        return problem
    try:
        from tests.fixtures.databases import admin_execute

        admin_execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test is unreachable ({type(exc).__name__}: {exc})"
    try:
        import airflow.providers.celery  # noqa: F401
    except ImportError:
        return "apache-airflow-providers-celery is not installed (`make fleet` syncs the uv group `fleet`)"
    return None


def step(message: str) -> None:
    print(f"[fleet] {message}", flush=True)


def run(size: Size, workdir: Path) -> int:
    """One fleet run; the process exit status."""
    started = time.monotonic()
    problem = missing_requirement()
    if problem:
        if os.environ.get(REQUIRE_ENV) == "1":
            print(f"fleet FAILED: {problem} ({REQUIRE_ENV}=1 forbids skipping)", flush=True)
            return 1
        print(f"fleet SKIPPED: {problem}", flush=True)
        return 0
    supervisor = ProcessSupervisor()
    fleet = Fleet(workdir, supervisor)
    outcomes: list[Outcome] = []
    error: str | None = None
    try:
        step(f"size {size.name}; work directory {workdir}")
        fleet.prepare()
        step(
            f"PostgreSQL databases {fleet.metastore_db} (metastore), {fleet.token_db} (token store); "
            f"Redis database {fleet.redis_db}"
        )
        emulator = fleet.start_emulator()
        step(f"emulator at {emulator.url}")
        fleet.define_connections()
        fleet.migrate()
        step("airflow db migrate done; starting api-server, scheduler, dag-processor, triggerer, 2 workers")
        fleet.start_airflow()
        step(f"fleet ready at {fleet.api_url} after {time.monotonic() - started:.0f} s")
        scenarios: list[Callable[[Fleet, Size], Outcome]] = [
            refresh_economy,
            handoff,
            files_move_once,
            worker_dies,
        ]
        for scenario in scenarios:
            begun = time.monotonic()
            outcome = scenario(fleet, size)
            outcomes.append(outcome)
            step(f"{outcome.name}: {outcome.status} ({time.monotonic() - begun:.0f} s)")
            for failure in outcome.failures:
                print(f"      FAILED CHECK: {failure}", flush=True)
    except FleetError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted"
    except Exception as exc:  # a bug or a broken service: report it with the figures gathered so far
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    finally:
        supervisor.stop_all()
        fleet.release()
    duration = time.monotonic() - started
    if error:
        print(f"fleet FAILED: {error}", flush=True)
    print_figures(outcomes, size, duration)
    ok = error is None and len(outcomes) == 4 and all(not o.failures for o in outcomes)
    return 0 if ok else 1


def print_figures(outcomes: list[Outcome], size: Size, duration: float) -> None:
    """The summary, as the last lines of the output."""
    print(f"\nfleet figures ({size.name} size: {2 * size.per_queue} mapped tasks, 2 Celery workers x 4)")
    for outcome in outcomes:
        detail = f" - {outcome.pending}" if outcome.pending else ""
        print(f"  {outcome.name}: {outcome.status}{detail}")
        for name, value in outcome.figures.items():
            text = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else value
            print(f"      {name:<22} {text}")
    passed = sum(1 for o in outcomes if o.status == "passed")
    failed = sum(1 for o in outcomes if o.status == "FAILED")
    pending = sum(1 for o in outcomes if o.status == "PENDING")
    print(f"  duration {duration:.0f} s")
    # The plain closing-line form (pending scenarios count as skipped; their reason is printed above).
    print(f"fleet: {passed} passed, {failed} failed, {pending} skipped")
