"""The child side of the fault storm: one worker fetching tokens, uploading and downloading through BoxHook.

Every operation is timed and classified: ``ok``, or the error it raised. The parent decides which errors
are documented; the child only records (one JSON file per worker, written at the end).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

from dropbox_box_provider.auth import flows, transport
from dropbox_box_provider.hooks.box import CHUNKED_THRESHOLD, BoxHook

# Tight bounds so a storm finishes in seconds: each HTTP call gives up within STORM_POLICY.total_budget.
STORM_POLICY = transport.RetryPolicy(
    max_attempts=4, base_delay=0.05, max_delay=0.5, max_retry_after=2.0, total_budget=6.0
)
STORM_TIMEOUT = httpx.Timeout(5.0)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _operation(
    hook: BoxHook,
    rng: random.Random,
    worker: int,
    index: int,
    uploaded: list[dict[str, Any]],
    downloads: Path,
    record: dict[str, Any],
    big: bool = False,
) -> None:
    """One random operation; ``record`` gets what it intends before it runs (kept when it fails)."""
    choice = rng.choice(["token", "upload", "download"])
    if choice == "download" and not uploaded:
        choice = "upload"
    if big and index == 0:
        choice = "big_upload"
    record["op"] = "upload" if choice == "big_upload" else choice
    if choice == "big_upload":  # an upload session (parts, commit): meets parts_mismatch
        data = rng.randbytes(CHUNKED_THRESHOLD + rng.randint(1, 1024))
        record.update(remote=f"/storm/w{worker}/big{index}.bin", sha1=sha1(data))
        source = downloads.parent / f"big-{worker}.bin"
        source.write_bytes(data)
        try:
            hook.upload_file(source, record["remote"])
        finally:
            source.unlink()
        uploaded.append(dict(record))
    elif choice == "token":
        hook.token_manager.forget(hook.conn_id)  # read the store again, as a fresh task process would
        hook.get_access_token()
    elif choice == "upload":
        data = rng.randbytes(rng.randint(1, 64 * 1024))
        record.update(remote=f"/storm/w{worker}/f{index}.bin", sha1=sha1(data))
        hook.write_bytes(data, record["remote"])
        uploaded.append(dict(record))
    else:
        source = rng.choice(uploaded)
        record.update(
            remote=source["remote"], sha1=source["sha1"], dest=str(downloads / f"w{worker}-{index}.bin")
        )
        hook.download_file(source["remote"], record["dest"])


def run(
    env: dict[str, str],
    conn_id: str,
    seed: int,
    ops: int,
    downloads: str,
    results: str,
    barrier: Any,
    big: bool = False,
) -> None:
    """Child entry point: ``ops`` random operations (the first a chunked upload when ``big``); results
    (never raised) go to the ``results`` file."""
    os.environ.update(env)
    flows.RETRY_POLICY = STORM_POLICY
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    uploaded: list[dict[str, Any]] = []
    try:
        hook = BoxHook(conn_id, retry_policy=STORM_POLICY, timeout=STORM_TIMEOUT)
        hook.get_auth_config()
        barrier.wait(120)
        for index in range(ops):
            started = time.monotonic()
            record: dict[str, Any] = {}
            try:
                _operation(hook, rng, seed, index, uploaded, Path(downloads), record, big)
                record["ok"] = True
            except Exception as exc:
                record |= {
                    "ok": False,
                    "error": type(exc).__name__,
                    "module": type(exc).__module__,
                    "message": str(exc)[:300],
                    "where": traceback.format_exc(limit=-2)[-600:],
                }
            record["seconds"] = time.monotonic() - started
            records.append(record)
    except BaseException as exc:
        records.append({"ok": False, "error": f"worker crashed: {type(exc).__name__}: {exc}", "seconds": 0.0})
    Path(results).write_text(json.dumps({"records": records, "uploads": uploaded}))
