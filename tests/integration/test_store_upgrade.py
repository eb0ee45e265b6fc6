"""Upgrading a token store written by schema-version-1 code (the frozen copy in tests/fixtures) to leases.

Existing sqlite files and PostgreSQL tables keep their tokens and saved connections; several processes
upgrading at once are serialised; a worker still running the old code refuses the upgraded store with a
clear error (fresh) or fails before any token request (already open), never refreshing under the old
protocol.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from dropbox_box_provider.errors import TokenStoreError
from dropbox_box_provider.store import open_store
from dropbox_box_provider.store.crypto import TokenCipher
from dropbox_box_provider.store.factory import forget_open_stores, normalize_store_url
from dropbox_box_provider.store.lease import Lease
from tests.fixtures.legacy_store_v1 import LegacySqlTokenStore

PAYLOAD = {"access_token": "AT-v1", "refresh_token": "RT-v1", "expires_at": 4102444800.0}
CONNECTION = {"conn_type": "box_oauth", "login": "cid", "password": "secret"}


def write_v1_store(url: str, key: str) -> LegacySqlTokenStore:
    legacy = LegacySqlTokenStore(normalize_store_url(url), TokenCipher(key))
    legacy.write(
        "c1",
        "box",
        PAYLOAD,
        expected_version=None,
        expires_at=PAYLOAD["expires_at"],
        refresh_issued_at=1.0,
        seed_fingerprint="fp",
    )
    legacy.save_connection("c1", CONNECTION)
    legacy.save_connection("only-connection", {"conn_type": "dropbox"})
    return legacy


def upgrade_in_child(url: str, key: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        record = open_store(url, key).read("c1")
        results.put(("ok", None if record is None else record.payload))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_v1_store_upgrades_in_place_and_old_workers_refuse_it(
    kind: str, request: pytest.FixtureRequest, store_key: str
) -> None:
    url = str(request.getfixturevalue(f"{kind}_store_url"))
    legacy = write_v1_store(url, store_key)
    with legacy.locked("c1") as locked:  # the old code works on its own store
        assert locked.record is not None
    # Four processes of the new code open the old store at the same moment.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    children = [
        context.Process(target=upgrade_in_child, args=(url, store_key, barrier, results)) for _ in range(4)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
    assert outcomes == [("ok", PAYLOAD)] * 4, outcomes

    forget_open_stores()
    store = open_store(url, store_key)
    record = store.read("c1")
    assert record is not None and record.payload == PAYLOAD and record.version == 1
    assert record.seed_fingerprint == "fp" and record.refresh_issued_at == 1.0
    assert store.get_connection("c1") == CONNECTION
    assert {meta.conn_id for meta in store.list_meta()} == {"c1", "only-connection"}
    with Lease(store, "c1", service="box") as lease:  # the upgraded store takes leases
        assert lease.acquire() is None
        written = lease.write(
            {**PAYLOAD, "access_token": "AT-v2"},
            expires_at=None,
            refresh_issued_at=1.0,
            seed_fingerprint="fp",
        )
    assert written.version == 2

    # A worker that opened the store before the upgrade fails before any token request...
    with pytest.raises(TokenStoreError), legacy.locked("c1"):
        pytest.fail("old code entered its lock on an upgraded store")
    # ...and one started afterwards is told to upgrade.
    with pytest.raises(TokenStoreError, match=r"newer than this provider understands.*upgrade"):
        LegacySqlTokenStore(normalize_store_url(url), TokenCipher(store_key)).read("c1")
    legacy.close()
