"""The fleet's scenarios. Each triggers a DAG of ``tests/fleet/dags`` through the REST API, waits for it, and
checks the outcome from the metastore (task instances' hostnames, tries, XComs) and the emulator's counters.

A scenario returns its figures and the list of failed checks; an empty list is a pass.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from dropbox_box_provider.emulator.state import GRANT_REFRESH
from tests.fleet.cluster import REPO, Fleet
from tests.fleet.work import BOX_CONN, DROPBOX_CONN

SERVICES = {"box": BOX_CONN, "dropbox": DROPBOX_CONN}
SHORT_TTL = 2.0
LONG_TTL = 600.0
MAX_GRANTS_PER_LIFETIME = 1.05
MiB = 1024 * 1024


@dataclass(frozen=True)
class Size:
    """How big a run is: CI (about 10 minutes on 2 cores) or FULL."""

    name: str
    per_queue: int
    seconds: float
    files: int
    max_file_mib: int

    @property
    def run_timeout(self) -> float:
        return 120.0 + self.per_queue * 2 * (self.seconds + 20.0) / 8


CI = Size("CI", per_queue=20, seconds=5.0, files=20, max_file_mib=16)
FULL = Size("FULL", per_queue=100, seconds=5.0, files=50, max_file_mib=64)


@dataclass
class Outcome:
    """A scenario's result: figures for the summary, failed checks, or why it did not run."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    pending: str | None = None

    def check(self, condition: bool, failure: str) -> None:
        if not condition:
            self.failures.append(failure)

    @property
    def status(self) -> str:
        if self.pending:
            return "PENDING"
        return "FAILED" if self.failures else "passed"


def grant_counts(fleet: Fleet) -> dict[str, dict[str, int]]:
    """Refresh-grant answers per service at the emulator: ``ok`` and ``invalid_grant``."""
    assert fleet.emulator is not None
    stats = fleet.emulator.client.stats()
    return {
        service: {
            "ok": int(stats[service]["token"].get(GRANT_REFRESH, {}).get("ok", 0)),
            "invalid_grant": sum(
                int(outcomes.get("invalid_grant", 0)) for outcomes in stats[service]["token"].values()
            ),
        }
        for service in SERVICES
    }


def delta(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {s: {k: after[s][k] - before[s][k] for k in after[s]} for s in after}


def xcom_values(fleet: Fleet, run_id: str, task_id: str) -> list[Any]:
    """The return values of ``task_id``'s instances (mapped ones in map index order)."""
    rows = fleet.query(
        "SELECT value FROM xcom WHERE run_id = %s AND task_id = %s AND key = 'return_value' "
        "ORDER BY map_index",
        (run_id, task_id),
    )
    return [json.loads(v) if isinstance(v, str) else v for (v,) in rows]


def progress(message: str) -> None:
    print(f"      {message}", flush=True)


def explain(fleet: Fleet, outcome: Outcome, run_id: str) -> None:
    """On failure, the run's task instances and the tail of its task logs (stderr)."""
    if outcome.failures:
        print(f"--- {outcome.name}: {fleet.describe(run_id)}", file=sys.stderr)
        print(fleet.task_log_tail(run_id), file=sys.stderr)


# -- 1. refresh economy across workers -------------------------------------------------------------


def refresh_economy(fleet: Fleet, size: Size) -> Outcome:
    """Mapped tasks on both queues use 2 s tokens (margin 0, Box grace off): 0 invalid_grant, 0 failed
    tasks, at most 1.05 refresh grants per token lifetime over the window in which tasks called."""
    outcome = Outcome("1. refresh economy across workers")
    assert fleet.emulator is not None
    fleet.emulator.client.configure(access_token_ttl=SHORT_TTL, box_refresh_grace=False)
    before = grant_counts(fleet)
    run_id = fleet.trigger("fleet_refresh_economy", {"per_queue": size.per_queue, "seconds": size.seconds})
    progress(f"triggered fleet_refresh_economy ({2 * size.per_queue} mapped tasks)")
    state = fleet.wait_for_run("fleet_refresh_economy", run_id, size.run_timeout)
    grants = delta(grant_counts(fleet), before)
    tasks = fleet.current(run_id)
    mapped = [t for t in tasks if t.task_id in ("on_worker_a", "on_worker_b")]
    outcome.check(state == "success", f"the run ended {state}")
    outcome.check(len(mapped) == 2 * size.per_queue, f"{len(mapped)} mapped tasks, not {2 * size.per_queue}")
    failed = [t for t in tasks if t.state != "success"]
    outcome.check(not failed, f"{len(failed)} task instances did not succeed")
    for t in mapped:
        expected = fleet.workers[t.task_id.removeprefix("on_")].hostname
        outcome.check(
            t.hostname == expected, f"{t.task_id}[{t.map_index}] ran on {t.hostname}, not {expected}"
        )
    results = xcom_values(fleet, run_id, "on_worker_a") + xcom_values(fleet, run_id, "on_worker_b")
    window = max(r["last_call"] for r in results) - min(r["first_call"] for r in results) if results else 0.0
    lifetimes = window / SHORT_TTL
    per_worker: dict[str, int] = {}
    for t in tasks:
        per_worker[str(t.hostname)] = per_worker.get(str(t.hostname), 0) + 1
    ratios = {s: (grants[s]["ok"] / lifetimes if lifetimes else float("inf")) for s in SERVICES}
    for service in SERVICES:
        outcome.check(
            ratios[service] <= MAX_GRANTS_PER_LIFETIME,
            f"{service}: {ratios[service]:.2f} refresh grants per token lifetime "
            f"(> {MAX_GRANTS_PER_LIFETIME})",
        )
        outcome.check(
            grants[service]["invalid_grant"] == 0,
            f"{service}: {grants[service]['invalid_grant']} invalid_grant",
        )
    outcome.figures = {
        "tasks per worker": per_worker,
        "mapped tasks": len(mapped),
        "authorized calls": sum(int(r["calls"]) for r in results),
        "window s": round(window, 1),
        "lifetimes": round(lifetimes, 1),
        "refresh grants": {s: grants[s]["ok"] for s in SERVICES},
        "grants per lifetime": {s: round(ratios[s], 2) for s in SERVICES},
        "invalid_grant": sum(grants[s]["invalid_grant"] for s in SERVICES),
        "failed tasks": len(failed),
    }
    explain(fleet, outcome, run_id)
    return outcome


# -- 4. a token refreshed on worker A is used by worker B ------------------------------------------


def handoff(fleet: Fleet, size: Size) -> Outcome:
    """Worker A forces one refresh per connection; worker B uses those tokens without refreshing: exactly one
    refresh grant per service during the run, and the store's record versions unchanged on B."""
    outcome = Outcome("4. token refreshed on A used by B")
    assert fleet.emulator is not None
    fleet.emulator.client.configure(access_token_ttl=LONG_TTL)
    before = grant_counts(fleet)
    run_id = fleet.trigger("fleet_handoff", {"calls": 5})
    progress("triggered fleet_handoff")
    state = fleet.wait_for_run("fleet_handoff", run_id, 300)
    grants = delta(grant_counts(fleet), before)
    tasks = {t.task_id: t for t in fleet.current(run_id)}
    outcome.check(state == "success", f"the run ended {state}")
    for task_id, worker in (("refresh_on_worker_a", "worker_a"), ("use_on_worker_b", "worker_b")):
        host = tasks[task_id].hostname if task_id in tasks else None
        outcome.check(host == fleet.workers[worker].hostname, f"{task_id} ran on {host}")
    for service in SERVICES:
        outcome.check(
            grants[service]["ok"] == 1,
            f"{service}: {grants[service]['ok']} refresh grants, expected exactly 1 (worker A's)",
        )
    used = xcom_values(fleet, run_id, "use_on_worker_b")
    refreshed = xcom_values(fleet, run_id, "refresh_on_worker_a")
    outcome.check(
        bool(used) and bool(refreshed) and used[0]["versions"] == refreshed[0]["versions"],
        "worker B did not use the record versions worker A stored",
    )
    outcome.figures = {
        "refresh grants": {s: grants[s]["ok"] for s in SERVICES},
        "refresh grants on B": {s: grants[s]["ok"] - 1 for s in SERVICES},
        "calls on B": used[0]["calls"] if used else 0,
    }
    explain(fleet, outcome, run_id)
    return outcome


# -- 3. files move exactly once across workers (harness; needs issue 18's DAG) ---------------------

SYNC_DAG_ID = "dropbox_to_box_sync"
SYNC_SOURCE = "/fleet-sync-in"
SYNC_TARGET = "/fleet-sync-out"


def files_pending_reason() -> str | None:
    """Why scenario 3 cannot run: the example DAG still stages files on the local disk between tasks."""
    example = (REPO / "dags_examples" / "dropbox_to_box_sync.py").read_text()
    if "staging_dir" in example:
        return "needs the rewritten dropbox_to_box_sync (no local staging between tasks)"
    return None


def file_sizes(size: Size) -> list[int]:
    """Mixed sizes from 1 byte to ``max_file_mib`` MiB (the largest included, so chunked uploads run)."""
    top = size.max_file_mib * MiB
    steps = [1, 1000, 64 * 1024, MiB, 3 * MiB + 17, 8 * MiB, top]
    return [steps[n % len(steps)] if n % len(steps) != len(steps) - 1 else top for n in range(size.files)]


def run_in_fleet(fleet: Fleet, code: str) -> Any:
    """Run Python in a process with the fleet's Airflow environment; the JSON it prints last."""
    output = fleet.run(f"python-{int(time.time() * 1000)}", [sys.executable, "-c", code], timeout=900)
    return json.loads(output.strip().splitlines()[-1])


def files_move_once(fleet: Fleet, size: Size) -> Outcome:
    """The rewritten dropbox_to_box_sync, tasks pinned to both workers, moves files of mixed sizes: Box then
    holds exactly those files with matching SHA-1, and a second run uploads nothing new."""
    outcome = Outcome("3. files move exactly once across workers")
    outcome.pending = files_pending_reason()
    if outcome.pending:
        return outcome
    sizes = file_sizes(size)
    expected = run_in_fleet(
        fleet,
        "import json; from tests.fleet.work import put_files; "
        f"print(json.dumps(put_files({SYNC_SOURCE!r}, {sizes!r}, 20)))",
    )
    conf = {
        "dropbox_conn_id": DROPBOX_CONN,
        "dropbox_folder": SYNC_SOURCE,
        "box_conn_id": BOX_CONN,
        "box_folder": SYNC_TARGET,
    }
    listing_code = (
        "import json; from tests.fleet.work import box_listing; "
        f"print(json.dumps(box_listing({SYNC_TARGET!r})))"
    )
    states = []
    listings = []
    hosts: set[str] = set()
    worker_a, worker_b = fleet.workers["worker_a"], fleet.workers["worker_b"]
    for run in range(2):
        if run == 1:  # the policy pins the sync to queue worker_a: hand that queue to worker B
            fleet.serve_queue(worker_b, "worker_a")
            fleet.stop_serving_queue(worker_a, "worker_a")
        run_id = fleet.trigger(SYNC_DAG_ID, conf)
        states.append(fleet.wait_for_run(SYNC_DAG_ID, run_id, 900))
        hosts |= {str(t.hostname) for t in fleet.current(run_id)}
        listings.append(run_in_fleet(fleet, listing_code))
    fleet.serve_queue(worker_a, "worker_a")
    fleet.stop_serving_queue(worker_b, "worker_a")
    outcome.check(states == ["success", "success"], f"the runs ended {states}")
    outcome.check(len(hosts) >= 2, f"the sync's tasks ran on {sorted(hosts)} only")
    first, second = listings
    got = {name: entry["sha1"] for name, entry in first.items()}
    outcome.check(got == expected, f"Box holds {len(got)} files, {len(expected)} expected, or SHA-1s differ")
    outcome.check(second == first, "the second run changed Box (a file was uploaded again)")
    outcome.figures = {
        "files": len(expected),
        "bytes": sum(sizes),
        "re-uploaded": 0 if second == first else "?",
    }
    return outcome


# -- 2. a worker dies mid-run ----------------------------------------------------------------------


def worker_dies(fleet: Fleet, size: Size) -> Outcome:
    """SIGKILL worker A while its tasks refresh and transfer; the heartbeat timeout fails them, worker B is
    given A's queue, and their retries (try 2) succeed there. Then the store reads and refreshes."""
    outcome = Outcome("2. a worker dies mid-run")
    assert fleet.emulator is not None
    worker_a, worker_b = fleet.workers["worker_a"], fleet.workers["worker_b"]
    # Grace on: a kill between Box's answer and the store write is otherwise an unavoidable lockout
    # (README, Reliability); this scenario is about Airflow's recovery, scenario 1 runs with grace off.
    fleet.emulator.client.configure(access_token_ttl=SHORT_TTL, box_refresh_grace=True)
    fleet.emulator.client.expire_access_tokens()
    before = grant_counts(fleet)
    conf = {"per_queue": 4, "seconds_a": 300.0, "seconds_b": 15.0, "retry_seconds": 5.0}
    run_id = fleet.trigger("fleet_worker_dies", conf)
    progress("triggered fleet_worker_dies; waiting until worker A runs its 4 tasks")
    deadline = time.monotonic() + 240
    running: list[Any] = []
    while time.monotonic() < deadline:
        fleet.check_alive()
        running = [
            t for t in fleet.current(run_id)
            if t.task_id == "on_worker_a" and t.state == "running" and t.hostname == worker_a.hostname
        ]  # fmt: skip
        if len(running) == conf["per_queue"]:
            break
        time.sleep(1)
    outcome.check(
        len(running) == conf["per_queue"], f"only {len(running)} tasks ran on worker A before the kill"
    )
    time.sleep(4)  # well into their refresh/transfer loops
    killed_at = time.time()
    pids = fleet.kill_worker(worker_a)
    progress(f"SIGKILLed worker A ({len(pids)} processes); worker B now also serves queue worker_a")
    fleet.serve_queue(worker_b, worker_a.queue)
    state = fleet.wait_for_run("fleet_worker_dies", run_id, 600, skip=(worker_a.name,))
    grants = delta(grant_counts(fleet), before)
    tries = fleet.tries(run_id)
    killed = {t.key for t in running}
    rerun_starts = []
    for key in sorted(killed):
        attempts = sorted((t for t in tries if t.key == key), key=lambda t: t.try_number)
        first, last = attempts[0], attempts[-1]
        outcome.check(
            first.hostname == worker_a.hostname and first.state != "success",
            f"{key}: first try {first.state} on {first.hostname}",
        )
        outcome.check(
            last.try_number >= 2 and last.state == "success" and last.hostname == worker_b.hostname,
            f"{key}: last try {last.try_number} {last.state} on {last.hostname}, "
            "expected a success on worker B",
        )
        rerun_on_b = last.try_number >= 2 and last.state == "success" and last.hostname == worker_b.hostname
        if rerun_on_b and last.start is not None:
            rerun_starts.append(last.start)
    outcome.check(state == "success", f"the run ended {state}")
    for service in SERVICES:
        outcome.check(
            grants[service]["invalid_grant"] == 0,
            f"{service}: {grants[service]['invalid_grant']} invalid_grant",
        )
    store_ok = store_readable(fleet, outcome)
    refresh_ok = next_refresh_works(fleet, outcome)
    outcome.figures = {
        "killed tasks": len(killed),
        "re-run on worker B": len(rerun_starts),
        "recovery s": round(min(rerun_starts) - killed_at, 1) if rerun_starts else None,
        "store readable": store_ok,
        "next refresh": "ok" if refresh_ok else "failed",
        "invalid_grant": sum(grants[s]["invalid_grant"] for s in SERVICES),
    }
    explain(fleet, outcome, run_id)
    return outcome


def store_readable(fleet: Fleet, outcome: Outcome) -> bool:
    """Every fleet connection's record decrypts with the fleet's key."""
    from dropbox_box_provider.store.factory import open_store

    try:
        store = open_store(fleet.store_url, fleet.store_key)
        records = {conn: store.read(conn) for conn in SERVICES.values()}
    except Exception as exc:
        outcome.failures.append(f"the token store is not readable: {type(exc).__name__}: {exc}")
        return False
    unreadable = [conn for conn, record in records.items() if record is None or record.payload is None]
    outcome.check(not unreadable, f"no readable tokens for {unreadable}")
    return not unreadable


def next_refresh_works(fleet: Fleet, outcome: Outcome) -> bool:
    """``dropbox-box-auth refresh`` succeeds for each connection (a real refresh through the store)."""
    try:
        for conn in SERVICES.values():
            fleet.run(f"refresh-{conn}", ["dropbox-box-auth", "refresh", conn], timeout=180)
    except Exception as exc:
        outcome.failures.append(f"the next refresh failed: {exc}")
        return False
    return True
