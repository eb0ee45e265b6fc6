"""Fault storm: while 16 processes fetch Box tokens, upload and download files through BoxHook (two of them
also a chunked upload session) and threads write files through DropboxHook, the emulator injects 429 +
Retry-After, 500, 503, slow responses, dropped connections, Dropbox 409 ``too_many_write_operations``, Box
400 ``parts_mismatch`` on commits and download links that expire before they are used, at a set rate.

Every operation must succeed or raise a documented error (ServiceError and its subclasses RateLimited and
TransportError) within OP_BOUND seconds; never a lockout (Box refresh is single-use, so the transport only
resends what certainly was not processed: the emulator must see zero invalid_grant). Afterwards no download
destination holds a partial file (and no temp file is left), every remote file that exists has exactly the
uploaded bytes, and the token store is readable and its refresh token still works.

Quick size: 16 workers x 6 operations per store; full (``--full``): 16 x 40.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.emulator.client import EmulatorClient
from dropbox_box_provider.emulator.seed import DEMO_BOX_CLIENT_ID, DEMO_BOX_CLIENT_SECRET
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.store import open_store
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.dropbox import dropbox_connection
from tests.reliability import figures, storm_child
from tests.reliability.helpers import authorize_into_store, box_fields, forkserver, token_works

WORKERS = 16
QUICK_OPS = 6
FULL_OPS = 40
FAULT_INTERVAL = 0.08  # one fault armed every 80 ms for the whole storm
ACCESS_TTL = 3.0  # tokens expire during the storm, so refreshes meet the faults too
OP_BOUND = 40.0  # seconds: a few HTTP calls, each bounded by STORM_POLICY's 6 s budget and a 5 s timeout
CONN_ID = "box_storm"
DROPBOX_CONN_ID = "dropbox_storm"
DOCUMENTED = {"ServiceError", "RateLimited", "TransportError"}
FAULT_ROUTES = (
    "/api.box.com/oauth2/token",
    "/api.box.com/2.0/folders/*",
    "/api.box.com/2.0/files/*",
    "/upload.box.com/api/2.0/files/content",
    "/dl.boxcloud.com/*",
)
FAULT_KINDS = (
    "429",
    "500",
    "503",
    "slow",
    "drop",
    "too_many_write_operations",
    "parts_mismatch",
    "expired_link",
)
DROPBOX_WRITE_ROUTE = "/content.dropboxapi.com/2/files/upload"
COMMIT_ROUTE = "/upload.box.com/api/2.0/files/upload_sessions/*/commit"
LINK_TTL = 0.5  # seconds a Box download link lives; an "expired_link" fault holds its use past that
BIG_WORKERS = 2  # workers whose first operation is a chunked upload (meets parts_mismatch)
# parts_mismatch is transient at Box (a commit right after the last part); armed faults wait for a matching
# request, so the few commits of a storm would otherwise meet a pile of them.
PARTS_MISMATCH_CAP = 2
DROPBOX_WRITERS = 4

pytestmark = pytest.mark.slow


def arm_random_fault(
    client: EmulatorClient, rng: random.Random, armed: Counter[str], kind: str | None = None
) -> str:
    kind = kind or rng.choice(FAULT_KINDS)
    route = rng.choice(FAULT_ROUTES)
    if kind == "parts_mismatch" and armed[kind] >= PARTS_MISMATCH_CAP:
        kind = "slow"
    if kind == "too_many_write_operations":
        client.fault(DROPBOX_WRITE_ROUTE, error=kind)
    elif kind == "parts_mismatch":
        client.fault(COMMIT_ROUTE, error=kind)
    elif kind == "expired_link":
        client.fault("/dl.boxcloud.com/*", delay=LINK_TTL + 0.3)
    elif kind == "429":
        client.fault(route, status=429, retry_after=1)
    elif kind in ("500", "503"):
        client.fault(route, status=int(kind))
    elif kind == "slow":
        client.fault(route, delay=rng.uniform(0.2, 1.0))
    else:
        client.fault(route, drop=True)
    return kind


class FaultInjector(threading.Thread):
    """Arms one random fault every FAULT_INTERVAL until stopped; counts what it armed per kind."""

    def __init__(self, url: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.client = EmulatorClient(url)
        self.rng = random.Random(seed)
        self.armed: Counter[str] = Counter()
        self.stop = threading.Event()

    def arm_each_kind(self) -> None:
        """One fault of every kind, armed before the storm starts: a short storm on a fast machine (a quick
        run can be over in 2 s) still meets every kind, whatever the random schedule does afterwards."""
        for kind in self.rng.sample(FAULT_KINDS, len(FAULT_KINDS)):
            self.armed[arm_random_fault(self.client, self.rng, self.armed, kind)] += 1

    def run(self) -> None:
        while not self.stop.wait(FAULT_INTERVAL):
            self.armed[arm_random_fault(self.client, self.rng, self.armed)] += 1

    def pending(self) -> int:
        return len(self.client._http.get("/_emulator/faults").json()["faults"])


def box_connection(emulator_url: str, store_url: str) -> dict[str, Any]:
    return {
        "conn_type": "box_oauth",
        "host": emulator_url,
        "login": DEMO_BOX_CLIENT_ID,
        "password": DEMO_BOX_CLIENT_SECRET,
        "extra": {"initiate_oauth": "REFRESH", "oauth_settings_location": store_url, "refresh_margin": 1},
    }


def dropbox_writer(worker: int, ops: int, records: list[dict[str, Any]], done: threading.Event) -> None:
    """Writes small files through DropboxHook for as long as the storm lasts (at least ``ops``); records each
    outcome (never raises)."""
    rng = random.Random(worker)
    hook = DropboxHook(
        DROPBOX_CONN_ID, retry_policy=storm_child.STORM_POLICY, timeout=storm_child.STORM_TIMEOUT
    )
    index = 0
    while index < ops or not done.wait(0.05):
        index += 1
        data = rng.randbytes(rng.randint(1, 16 * 1024))
        record: dict[str, Any] = {"remote": f"/storm/d{worker}/f{index}.bin", "data": data}
        try:
            hook.write_bytes(record["remote"], data)
            record["ok"] = True
        except Exception as exc:
            record |= {"ok": False, "error": type(exc).__name__, "message": str(exc)[:300]}
        records.append(record)
    hook.close()


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_fault_storm(
    kind: str,
    request: pytest.FixtureRequest,
    fresh_emulator: RunningEmulator,
    full_size: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store_url = str(request.getfixturevalue(f"{kind}_store_url"))
    key = __import__("os").environ["AIRFLOW__CORE__FERNET_KEY"]  # the hooks' store key ([core] fernet_key)
    fresh_emulator.client.configure(
        access_token_ttl=ACCESS_TTL, box_refresh_grace=False, box_download_link_ttl=LINK_TTL
    )
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, DROPBOX_CONN_ID, refresh_margin=1)
    authorize_into_store(fresh_emulator, store_url, key, CONN_ID, box_fields(fresh_emulator.url))
    # The key goes with the connection: the forkserver (shared by every test of this process) may have
    # started under another test's environment.
    env = {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(box_connection(fresh_emulator.url, store_url)),
        "AIRFLOW__CORE__FERNET_KEY": key,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup = BoxHook(CONN_ID)
    for worker in range(WORKERS):
        setup.create_folder(f"/storm/w{worker}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    ops = FULL_OPS if full_size else QUICK_OPS
    seed = random.SystemRandom().randrange(2**32)
    context = forkserver()
    barrier = context.Barrier(WORKERS + 1)
    results = [tmp_path / f"worker-{n}.json" for n in range(WORKERS)]
    children = [
        context.Process(
            target=storm_child.run,
            args=(env, CONN_ID, seed + n, ops, str(downloads), str(results[n]), barrier, n < BIG_WORKERS),
            daemon=True,
        )
        for n in range(WORKERS)
    ]
    for child in children:
        child.start()
    injector = FaultInjector(fresh_emulator.url, seed)
    injector.arm_each_kind()
    dropbox_records: list[dict[str, Any]] = []
    storm_over = threading.Event()
    try:
        barrier.wait(180)
        started = time.monotonic()
        injector.start()
        writers = [
            threading.Thread(target=dropbox_writer, args=(n, ops, dropbox_records, storm_over), daemon=True)
            for n in range(DROPBOX_WRITERS)
        ]
        for writer in writers:
            writer.start()
        for child in children:
            child.join(ops * OP_BOUND)
        storm_over.set()
        for writer in writers:
            writer.join(ops * OP_BOUND)
        elapsed = time.monotonic() - started
    finally:
        injector.stop.set()
        injector.join(10)
        for child in children:
            if child.is_alive():
                child.kill()
                child.join(5)
    pending = injector.pending()
    fresh_emulator.client.clear_faults()
    injected = sum(injector.armed.values()) - pending
    injector.client.close()
    storm_over.set()

    records = [r for path in results for r in json.loads(path.read_text())["records"]]
    outcomes = Counter("ok" if r["ok"] else r["error"] for r in records)
    stats = fresh_emulator.client.stats()["box"]
    statuses: Counter[str] = Counter()
    for counts in stats["routes"].values():
        statuses.update({status: int(n) for status, n in counts.items()})
    refresh = stats["token"].get("refresh_token", {})
    section = f"fault storm {kind}"
    figures.add(
        section,
        operations=len(records),
        ok=outcomes["ok"],
        documented_errors=len(records) - outcomes["ok"],
        faults_injected=injected,
        refreshes=int(refresh.get("ok", 0)),
    )
    print(
        f"{section}: {len(records)} ops in {elapsed:.1f} s, outcomes {dict(outcomes)}, "
        f"faults armed {dict(injector.armed)} ({injected} hit), statuses {dict(statuses)}, seed {seed}; "
        f"dropbox writes {Counter('ok' if r['ok'] else r['error'] for r in dropbox_records)}"
    )

    # Every operation: success or a documented error, within its bound.
    assert len(records) == WORKERS * ops, outcomes
    undocumented = [r for r in records if not r["ok"] and r["error"] not in DOCUMENTED]
    assert undocumented == [], undocumented[:3]
    slow = [r for r in records if r["seconds"] > OP_BOUND]
    assert slow == [], slow[:3]
    assert outcomes["ok"] >= len(records) // 2, f"the storm drowned everything: {dict(outcomes)}"
    # Every fault kind reached the service, and refresh never hit invalid_grant (no lockout).
    assert injected > 0 and set(injector.armed) == set(FAULT_KINDS), dict(injector.armed)
    assert statuses["429"] and statuses["500"] and statuses["503"] and statuses["0"], dict(statuses)
    assert int(refresh.get("invalid_grant", 0)) == 0, refresh
    assert int(refresh.get("ok", 0)) >= 1, "no token expired during the storm: refreshes were not exercised"

    # No partial file at any download destination, no temp file left beside them.
    assert [p.name for p in downloads.iterdir() if p.name.startswith(".")] == []
    for record in records:
        if record.get("op") == "download":
            dest = Path(record["dest"])
            if record["ok"]:
                assert sha1_of(dest) == record["sha1"], record
            else:
                assert not dest.exists(), record
    # Remote files: each upload that succeeded is there with its bytes; a failed one is absent or complete.
    checker = BoxHook(CONN_ID)
    for record in records:
        if record.get("op") != "upload":
            continue
        if record["ok"] or checker.exists(record["remote"]):
            assert checker.get_file_info(record["remote"])["sha1"] == record["sha1"], record

    # Dropbox writers: contention was retried; every file written holds exactly its bytes, no lockout.
    assert len(dropbox_records) >= DROPBOX_WRITERS * ops
    bad = [r for r in dropbox_records if not r["ok"] and r["error"] not in DOCUMENTED]
    assert bad == [], bad[:3]
    dropbox_stats = fresh_emulator.client.stats()["dropbox"]
    assert int(dropbox_stats["token"].get("refresh_token", {}).get("invalid_grant", 0)) == 0
    dropbox_checker = DropboxHook(DROPBOX_CONN_ID)
    for record in dropbox_records:
        if record["ok"] or dropbox_checker.exists(record["remote"]):
            assert dropbox_checker.read_bytes(record["remote"]) == record["data"], record["remote"]
    dropbox_checker.close()
    if injector.armed["too_many_write_operations"]:
        assert dropbox_stats["routes"]["/2/files/upload"].get("409"), dropbox_stats["routes"]

    # The store is readable and its (rotated) refresh token still works.
    config = AuthConfig.from_mapping("box", box_fields(fresh_emulator.url), conn_id=CONN_ID)
    store = open_store(store_url, key)
    assert store.read(CONN_ID) is not None
    tokens = TokenManager(store).force_refresh(CONN_ID, config)
    assert token_works(fresh_emulator.url, tokens.access_token)
