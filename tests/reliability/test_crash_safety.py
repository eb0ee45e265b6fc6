"""Crash safety of the Box refresh: a child process refreshing the token is SIGKILLed at a random point.

Kill points, all while the child holds the connection's refresh lease: before the token request, in the
middle of it (the token endpoint delayed), after the token response, before the fenced store write, after
the commit; each trial picks one (shuffled, every point equally often) plus a random delay before the kill.
After each kill the store must be readable, the next caller must wait at most one lease time for the dead
holder's lease, and get a token Box accepts or -- only where it is unavoidable -- need re-authorization.

- Grace on: every crash after Box acted is recovered: the next caller refreshes with the old refresh
  token and gets the very pair the killed child received. Zero lockouts.
- Grace off: a kill between Box's answer and the fenced write loses the rotated pair (the old refresh token
  is spent): every such trial is a lockout, counted and reported; every other kill point loses nothing.
  That window's length (response received to write committed) is measured on the after-commit trials.

Quick size (default): 4 trials per kill point per grace mode (8 per kill point per store).
Full (``--full``): 200 trials per grace mode per store (400 per store).
"""

from __future__ import annotations

import json
import random
import signal
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.errors import ReauthorizationRequired
from dropbox_box_provider.store import open_store
from dropbox_box_provider.store.lease import LeaseSettings
from tests.fixtures.emulator import RunningEmulator
from tests.reliability import crash_child, figures
from tests.reliability.crash_child import CONN_ID, KILL_POINTS, WINDOW_POINTS, digest
from tests.reliability.helpers import (
    authorize_into_store,
    box_fields,
    forkserver,
    refresh_counts,
    token_works,
)

QUICK_PER_POINT = 4  # per grace mode: 8 per kill point per store
FULL_TRIALS = 200
CHILD_TIMEOUT = 60
LEASE_SECONDS = 1.0
TOKEN_ROUTE = "/api.box.com/oauth2/token"

pytestmark = pytest.mark.slow


def trial_plan(full: bool, rng: random.Random) -> list[str]:
    """Kill points in random order, each equally often (every point is exercised in both sizes)."""
    per_point = -(-FULL_TRIALS // len(KILL_POINTS)) if full else QUICK_PER_POINT
    plan = [point for point in KILL_POINTS for _ in range(per_point)]
    rng.shuffle(plan)
    return plan


def read_report(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage(events: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((event for event in events if event.get("stage") == name), None)


@pytest.mark.parametrize("grace", [True, False], ids=["grace_on", "grace_off"])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_refresh_killed_at_random_points(
    kind: str,
    grace: bool,
    request: pytest.FixtureRequest,
    fresh_emulator: RunningEmulator,
    store_key: str,
    full_size: bool,
    tmp_path: Path,
) -> None:
    store_url = str(request.getfixturevalue(f"{kind}_store_url"))
    fresh_emulator.client.configure(box_refresh_grace=grace)
    fields = box_fields(fresh_emulator.url)
    config = AuthConfig.from_mapping("box", fields, conn_id=CONN_ID)
    authorize_into_store(fresh_emulator, store_url, store_key, CONN_ID, fields)
    store = open_store(store_url, store_key)
    manager = TokenManager(store, lease=LeaseSettings(seconds=LEASE_SECONDS))
    context = forkserver()
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    plan = trial_plan(full_size, rng)
    lockouts: Counter[str] = Counter()
    outcomes: list[str] = []
    windows_ms: list[float] = []
    waits: list[float] = []
    window_trials = 0
    started = time.monotonic()
    for trial, point in enumerate(plan):
        where = f"trial {trial} (seed {seed}, {kind}, grace {'on' if grace else 'off'}, kill {point})"
        current = manager.get_valid_token(CONN_ID, config)
        assert manager.invalidate(CONN_ID, current.access_token, config), where
        before = store.read(CONN_ID)
        assert before is not None
        counts_before = refresh_counts(fresh_emulator)
        jitter = crash_child.random_plan(rng, point)
        if point == "mid_request":
            fresh_emulator.client.fault(TOKEN_ROUTE, delay=crash_child.MID_REQUEST_DELAY)
        report = tmp_path / f"trial-{trial}.jsonl"
        child = context.Process(
            target=crash_child.run,
            args=(store_url, store_key, fields, point, jitter, str(report), LEASE_SECONDS),
            daemon=True,
        )
        child.start()
        child.join(CHILD_TIMEOUT)
        if child.is_alive():
            child.kill()
            child.join(5)
        events = read_report(report)
        assert child.exitcode == -signal.SIGKILL, f"{where}: child exited {child.exitcode}: {events}"

        # The store is readable and holds either the old record untouched or the child's committed pair.
        after = store.read(CONN_ID)
        assert after is not None, where
        assert any(meta.conn_id == CONN_ID for meta in store.list_meta()), where
        response = stage(events, "response")
        if point == "mid_request":
            time.sleep(crash_child.MID_REQUEST_DELAY + 0.2)  # the emulator finishes the orphaned request
        counts_after_kill = refresh_counts(fresh_emulator)
        child_refreshes = counts_after_kill.get("ok", 0) - counts_before.get("ok", 0)
        if point == "before_request":
            assert child_refreshes == 0 and response is None, where
        elif point == "mid_request":
            # Whether the service finished the orphaned request decides whether Box rotated the token.
            assert child_refreshes in (0, 1) and response is None, where
        else:
            assert child_refreshes == 1 and response is not None, where
        in_window = point in WINDOW_POINTS and child_refreshes == 1
        window_trials += in_window
        if point == "after_commit":
            assert response is not None
            written = stage(events, "written")
            assert written is not None, where
            windows_ms.append((written["at"] - response["at"]) * 1000)
            assert after.version == before.version + 1, where
            assert digest(after.payload["access_token"]) == response["access"], where
            assert digest(after.payload["refresh_token"]) == response["refresh"], where
        else:
            assert after.version == before.version and after.payload == before.payload, where

        # The next caller: a token Box accepts, or a lockout (needs a person to authorize again).
        manager.forget(CONN_ID)
        asked = time.monotonic()
        try:
            recovered = manager.get_valid_token(CONN_ID, config)
        except ReauthorizationRequired:
            waits.append(time.monotonic() - asked)
            lockouts[point] += 1
            outcomes.append("lockout")
            authorize_into_store(fresh_emulator, store_url, store_key, CONN_ID, fields)
            continue
        waits.append(time.monotonic() - asked)
        outcomes.append("recovered")
        assert token_works(fresh_emulator.url, recovered.access_token), where
        recovery_refreshes = refresh_counts(fresh_emulator).get("ok", 0) - counts_after_kill.get("ok", 0)
        if point == "after_commit":
            assert recovery_refreshes == 0, f"{where}: the committed token was not reused"
        else:
            assert recovery_refreshes == 1, where
        if point in WINDOW_POINTS and response is not None:
            # Box's grace: the old refresh token, sent again, returns the pair the killed child received.
            assert digest(recovered.access_token) == response["access"], where
            assert digest(recovered.refresh_token) == response["refresh"], where

    elapsed = time.monotonic() - started
    invalid = refresh_counts(fresh_emulator).get("invalid_grant", 0)
    section = f"crash {kind} grace {'on' if grace else 'off'}"
    window_p50, window_max = statistics.median(windows_ms), max(windows_ms)
    figures.add(
        section,
        trials=len(plan),
        lockouts=sum(lockouts.values()),
        window_trials=window_trials,
        window_us_median=round(window_p50 * 1000),
        window_us_max=round(window_max * 1000),
        next_caller_wait_ms_max=round(max(waits) * 1000),
        **{f"kill_{point}": plan.count(point) for point in KILL_POINTS},
    )
    print(
        f"{section}: {len(plan)} trials in {elapsed:.1f} s, lockouts {dict(lockouts)}, seed {seed}; "
        f"response-to-commit window median {window_p50:.1f} ms, max {window_max:.1f} ms; "
        f"next caller waited at most {max(waits):.2f} s (lease {LEASE_SECONDS:g} s)"
    )
    # A dead holder's lease lapses within one lease time; the next caller adds one token request.
    assert max(waits) <= LEASE_SECONDS + 1.5, waits
    assert set(plan) == set(KILL_POINTS)
    if grace:
        assert sum(lockouts.values()) == 0, dict(lockouts)
        assert invalid == 0
    else:
        # The unavoidable window, and only it: each kill between response and commit is one lockout.
        assert {p: n for p, n in lockouts.items() if p not in WINDOW_POINTS} == {}, dict(lockouts)
        # (a mid-request kill is in the window only when the service finished the orphaned request)
        assert sum(lockouts.values()) == window_trials, (dict(lockouts), window_trials)
        assert invalid == window_trials
