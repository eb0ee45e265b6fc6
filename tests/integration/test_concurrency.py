"""Single-flight refresh under load: many processes (and threads) share one Box OAuth connection whose
access token lives 1 s, with Box's refresh grace OFF (a refresh token used twice is invalid_grant).

Every caller must get a token, the emulator must never see invalid_grant, and the token endpoint must be
called about once per expiry: grants <= elapsed / ttl + 2.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.emulator.seed import DEMO_BOX_CLIENT_ID, DEMO_BOX_CLIENT_SECRET
from dropbox_box_provider.store import open_store
from tests.fixtures.emulator import RunningEmulator

WORKERS = 16
CALLS = 200
TTL = 1.0
CONN_ID = "box_concurrency"
REDIRECT_URI = "http://127.0.0.1:33333"
MAX_PAUSE = 0.05  # between calls: spreads each worker's 200 calls over a few token lifetimes

pytestmark = pytest.mark.slow


def box_fields(emulator_url: str) -> dict[str, Any]:
    return {
        "client_id": DEMO_BOX_CLIENT_ID,
        "client_secret": DEMO_BOX_CLIENT_SECRET,
        "endpoint": emulator_url,
        "callback_url": REDIRECT_URI,
        "initiate_oauth": "REFRESH",
        "refresh_margin": 0,
    }


def make_manager(store_url: str, key: str, fields: dict[str, Any]) -> tuple[TokenManager, AuthConfig]:
    """What each worker builds for itself: a config, its own store handle and its own manager."""
    config = AuthConfig.from_mapping("box", fields, conn_id=CONN_ID)
    return TokenManager(open_store(store_url, key)), config


def hammer(manager: TokenManager, config: AuthConfig, seed: int) -> dict[str, Any]:
    """CALLS get_valid_token calls with short random pauses; every failure is recorded, none raised."""
    rng = random.Random(seed)
    calls = 0
    errors: list[str] = []
    tokens: set[str] = set()
    while calls < CALLS:
        try:
            token = manager.get_valid_token(CONN_ID, config)
            tokens.add(hashlib.sha256(token.access_token.encode()).hexdigest())
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        calls += 1
        time.sleep(rng.uniform(0, MAX_PAUSE))
    return {"calls": calls, "errors": errors, "tokens": sorted(tokens)}


def process_worker(
    store_url: str, key: str, fields: dict[str, Any], seed: int, barrier: Any, results: Any
) -> None:
    """Entry point of a child process: set up, wait for every sibling, hammer, report."""
    try:
        manager, config = make_manager(store_url, key, fields)
        manager.store.list_meta()  # open the database now, not in the timed part
        barrier.wait(120)
        results.put(hammer(manager, config, seed))
    except BaseException as exc:
        results.put({"calls": 0, "errors": [f"worker crashed: {type(exc).__name__}: {exc}"], "tokens": []})


@pytest.fixture
def box_connection(fresh_emulator: RunningEmulator) -> Iterator[dict[str, Any]]:
    """Emulator with 1 s Box access tokens and grace off; yields the connection fields (no seed tokens)."""
    fresh_emulator.client.configure(access_token_ttl=TTL, box_refresh_grace=False)
    yield box_fields(fresh_emulator.url)


def authorize_into_store(emulator: RunningEmulator, store_url: str, key: str, fields: dict[str, Any]) -> None:
    """What the CLI does once: exchange a fresh authorization code and save the tokens."""
    config = AuthConfig.from_mapping("box", fields, conn_id=CONN_ID)
    code = emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    tokens = flows.exchange_code(config, code, callback_url=REDIRECT_URI)
    TokenManager(open_store(store_url, key)).store_tokens(CONN_ID, config, tokens)


def check_outcome(emulator: RunningEmulator, results: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    stats = emulator.client.stats()["box"]["token"]
    refresh = stats.get("refresh_token", {})
    grants = int(refresh.get("ok", 0))
    failures = {outcome: n for outcome, n in refresh.items() if outcome != "ok" and n}
    errors = [e for r in results for e in r["errors"]]
    calls = sum(r["calls"] for r in results)
    distinct = len({t for r in results for t in r["tokens"]})
    figures = {
        "grants": grants,
        "elapsed": round(elapsed, 2),
        "errors": len(errors),
        "calls": calls,
        "distinct_tokens": distinct,
    }
    print(f"concurrency figures: {figures}")
    assert len(results) == WORKERS
    assert errors == [], errors[:5]
    assert calls == WORKERS * CALLS
    assert failures == {}, f"the token endpoint refused refreshes: {failures}"
    assert grants >= 1, "the test never outlived a token: it proves nothing"
    assert grants <= elapsed / TTL + 2, figures
    # Each refresh produced one access token and every worker saw only those (plus the authorized one).
    assert distinct <= grants + 1, figures
    return figures


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_processes_share_one_box_connection(
    kind: str,
    request: pytest.FixtureRequest,
    fresh_emulator: RunningEmulator,
    box_connection: dict[str, Any],
    store_key: str,
) -> None:
    store_url = str(request.getfixturevalue(f"{kind}_store_url"))
    context = multiprocessing.get_context("forkserver")
    # Children fork from a server that already imported the provider and SQLAlchemy: fast, clean starts.
    context.set_forkserver_preload([__name__, "dropbox_box_provider.store.sql", "psycopg"])
    barrier = context.Barrier(WORKERS + 1)
    results_queue = context.Queue()
    children = [
        context.Process(
            target=process_worker,
            args=(store_url, store_key, box_connection, seed, barrier, results_queue),
            daemon=True,
        )
        for seed in range(WORKERS)
    ]
    for child in children:
        child.start()
    try:
        authorize_into_store(fresh_emulator, store_url, store_key, box_connection)
        barrier.wait(120)  # every child is up: the clock starts now, as the refreshes can only start now
        started = time.monotonic()
        results = [results_queue.get(timeout=120) for _ in children]
        elapsed = time.monotonic() - started
        for child in children:
            child.join(10)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join(5)
    figures = check_outcome(fresh_emulator, results, elapsed)
    assert figures["grants"] >= 2, "every worker finished within one token lifetime"


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_threads_share_one_box_connection(
    kind: str,
    request: pytest.FixtureRequest,
    fresh_emulator: RunningEmulator,
    box_connection: dict[str, Any],
    store_key: str,
) -> None:
    store_url = str(request.getfixturevalue(f"{kind}_store_url"))
    authorize_into_store(fresh_emulator, store_url, store_key, box_connection)
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(WORKERS + 1)

    def run(seed: int) -> None:
        manager, config = make_manager(store_url, store_key, box_connection)
        barrier.wait(30)
        results.append(hammer(manager, config, seed))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(WORKERS)]
    for thread in threads:
        thread.start()
    barrier.wait(30)
    started = time.monotonic()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    figures = check_outcome(fresh_emulator, results, elapsed)
    assert figures["grants"] >= 2, "every worker finished within one token lifetime"
