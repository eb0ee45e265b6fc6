"""Scenario 1: fleet refresh economy. P worker processes share one OAuth connection and make authorized
``users/me`` calls in a loop while access tokens live ``ttl`` seconds (Box refresh grace off).

Counted at the emulator: refresh grants (ok and refused) per repetition; counted in the workers: calls and
failed calls. The figure of merit is refresh grants per TTL window elapsed: 1.0 is the physical minimum for
one connection; each process refreshing on its own gives about P.

Clients: the provider's hooks with a sqlite and a PostgreSQL token store, box-sdk-gen with one
``FileTokenStorage`` file shared by the processes (what a user would do), the Dropbox SDK per process (it
keeps tokens in memory; its 300 s refresh-ahead buffer is scaled to 0 like the hooks' ``refresh_margin``).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import connections
from bench.report import summarize
from bench.settings import Settings

BARRIER_TIMEOUT = 600.0
PRELOAD = [
    "bench.fleet",
    "bench.sdks",
    "dropbox_box_provider.hooks.box",
    "dropbox_box_provider.hooks.dropbox",
    "dropbox_box_provider.store.sql",
    "psycopg",
    "dropbox",
    "box_sdk_gen",
]


@dataclass(frozen=True)
class Variant:
    """One client kind under test."""

    service: str
    client: str
    kind: str  # "provider" or "sdk"
    store: str | None = None  # "sqlite" / "postgres" for the provider


VARIANTS = (
    Variant("box", "provider, sqlite store", "provider", "sqlite"),
    Variant("box", "provider, PostgreSQL store", "provider", "postgres"),
    Variant("box", "box-sdk-gen, shared FileTokenStorage", "sdk"),
    Variant("dropbox", "provider, sqlite store", "provider", "sqlite"),
    Variant("dropbox", "provider, PostgreSQL store", "provider", "postgres"),
    Variant("dropbox", "dropbox SDK, per process", "sdk"),
)


@dataclass(frozen=True)
class Plan:
    """What every worker needs to know up front (rep ``r`` uses connection ``conn_ids[r]``)."""

    service: str
    kind: str
    emulator_url: str
    conn_ids: tuple[str, ...]
    conn_jsons: tuple[str, ...]
    token_files: tuple[str, ...]
    duration: float
    think: float


# ---------------------------------------------------------------------------------------------- worker side


def _client_call(plan: Plan, rep: int) -> Callable[[], Any]:
    """Build this worker's client for repetition ``rep``; return its one authorized call."""
    if plan.kind == "provider":
        connections.set_connection(plan.conn_ids[rep], plan.conn_jsons[rep])
        if plan.service == "box":
            from dropbox_box_provider.hooks.box import BoxHook

            box_hook = BoxHook(plan.conn_ids[rep])
            _ = box_hook.token_store  # parse the connection and open the store outside the timed loop
            box_call: Callable[[], Any] = box_hook.get_current_user
            return box_call
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        dropbox_hook = DropboxHook(plan.conn_ids[rep])
        _ = dropbox_hook.token_store
        dropbox_call: Callable[[], Any] = dropbox_hook.get_current_account
        return dropbox_call
    from bench import sdks

    if plan.service == "box":
        box = sdks.box_client(plan.emulator_url, token_file=plan.token_files[rep])
        sdk_box_call: Callable[[], Any] = box.users.get_user_me
        return sdk_box_call
    grant = json.loads(Path(plan.token_files[rep]).read_text())
    dbx = sdks.dropbox_client(plan.emulator_url, grant, refresh_buffer=0)
    sdk_dropbox_call: Callable[[], Any] = dbx.users_get_current_account
    return sdk_dropbox_call


def worker(plan: Plan, repetitions: int, barrier: Any, results: Any) -> None:
    """One fleet process: per repetition wait until all are ready, wait for the grant, call in a loop."""
    for rep in range(repetitions):
        outcome: dict[str, Any] = {"calls": 0, "failed": 0, "errors": [], "loop_s": 0.0}
        call: Callable[[], Any] | None = None
        try:
            if plan.kind == "provider" or plan.service == "box":
                call = _client_call(plan, rep)
            barrier.wait(BARRIER_TIMEOUT)  # everyone ready: the parent obtains and saves the grant
            barrier.wait(BARRIER_TIMEOUT)  # go
            if call is None:
                call = _client_call(plan, rep)
            started = time.monotonic()
            deadline = started + plan.duration
            while time.monotonic() < deadline:
                try:
                    call()
                except Exception as exc:
                    outcome["failed"] += 1
                    if len(outcome["errors"]) < 3:
                        outcome["errors"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
                outcome["calls"] += 1
                time.sleep(plan.think)
            outcome["loop_s"] = time.monotonic() - started
        except BaseException as exc:
            outcome["errors"].append(f"worker crashed: {type(exc).__name__}: {exc}")
            outcome["crashed"] = True
        results.put(outcome)


# ---------------------------------------------------------------------------------------------- parent side


def _refresh_counts(emulator: Any, service: str) -> dict[str, int]:
    counts: dict[str, int] = emulator.client.stats()[service]["token"].get("refresh_token", {})
    return {k: int(v) for k, v in counts.items()}


@contextlib.contextmanager
def _store_url(variant: Variant, workdir: Path, tag: str) -> Iterator[str | None]:
    if variant.store == "postgres":
        with connections.postgres_schema() as url:
            yield url
    elif variant.store == "sqlite":
        yield f"sqlite:///{workdir / f'fleet-{tag}.db'}"
    else:
        yield None


def run_variant(
    variant: Variant, processes: int, settings: Settings, emulator: Any, workdir: Path, context: Any
) -> dict[str, Any]:
    """All repetitions of one (client, P) with one set of P processes."""
    reps = settings.repetitions
    tag = f"{variant.service}-{variant.kind}-{variant.store}-{processes}"
    with _store_url(variant, workdir, tag) as store_url:
        conn_ids = tuple(f"fleet_{variant.service}_{processes}_{rep}" for rep in range(reps))
        conn_jsons = tuple(
            connections.connection_json(variant.service, emulator.url, store_url or "", refresh_margin=0)
            for _ in conn_ids
        )
        token_files = tuple(str(workdir / f"{tag}-tokens-{rep}") for rep in range(reps))
        plan = Plan(
            variant.service,
            variant.kind,
            emulator.url,
            conn_ids,
            conn_jsons,
            token_files,
            settings.fleet_duration,
            settings.fleet_think,
        )
        barrier = context.Barrier(processes + 1)
        queue = context.Queue()
        children = [
            context.Process(target=worker, args=(plan, reps, barrier, queue), daemon=True)
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        per_rep: list[dict[str, Any]] = []
        try:
            for rep in range(reps):
                barrier.wait(BARRIER_TIMEOUT)
                grant = connections.raw_grant(variant.service, emulator)
                issued = time.monotonic()
                if variant.kind == "provider":
                    connections.store_grant(variant.service, conn_ids[rep], conn_jsons[rep], grant)
                elif variant.service == "box":
                    from bench import sdks

                    sdks.box_file_storage(token_files[rep], grant)
                else:
                    Path(token_files[rep]).write_text(json.dumps(grant))
                before = _refresh_counts(emulator, variant.service)
                barrier.wait(BARRIER_TIMEOUT)
                go = time.monotonic()
                outcomes = [queue.get(timeout=BARRIER_TIMEOUT) for _ in children]
                loop = max(o["loop_s"] for o in outcomes)
                after = _refresh_counts(emulator, variant.service)
                diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                windows = (go + loop - issued) / settings.fleet_ttl
                per_rep.append(
                    {
                        "grants": diff.get("ok", 0),
                        "refused": {k: v for k, v in diff.items() if k != "ok" and v},
                        "windows": windows,
                        "calls": sum(o["calls"] for o in outcomes),
                        "failed": sum(o["failed"] for o in outcomes),
                        "errors": sorted({e for o in outcomes for e in o["errors"]})[:5],
                    }
                )
        finally:
            for child in children:
                child.join(30)
                if child.is_alive():
                    child.kill()
                    child.join(10)
    return {
        "service": variant.service,
        "client": variant.client,
        "kind": variant.kind,
        "store": variant.store,
        "processes": processes,
        "grants_per_window": summarize([r["grants"] / r["windows"] for r in per_rep], "grants/window"),
        "grants": summarize([r["grants"] for r in per_rep], "grants"),
        "invalid_grant": summarize([r["refused"].get("invalid_grant", 0) for r in per_rep], "count"),
        "refused_total": summarize([sum(r["refused"].values()) for r in per_rep], "count"),
        "failed_calls": summarize([r["failed"] for r in per_rep], "count"),
        "calls": summarize([r["calls"] for r in per_rep], "count"),
        "error_samples": sorted({e for r in per_rep for e in r["errors"]})[:5],
    }


def run(settings: Settings, *, emulator: Any, workdir: Path, **_: Any) -> dict[str, Any]:
    """Every client at every P; the emulator's tokens live ``fleet_ttl`` seconds, grace off."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    emulator.client.reset()
    emulator.client.configure(access_token_ttl=settings.fleet_ttl, box_refresh_grace=False)
    postgres_missing = connections.postgres_available()
    runs: list[dict[str, Any]] = []
    try:
        for processes in settings.fleet_processes:
            for variant in VARIANTS:
                label = f"{variant.service} / {variant.client} / P={processes}"
                if variant.store == "postgres" and postgres_missing:
                    runs.append(
                        {
                            "service": variant.service,
                            "client": variant.client,
                            "processes": processes,
                            "skipped": postgres_missing,
                        }
                    )
                    continue
                begun = time.monotonic()
                runs.append(run_variant(variant, processes, settings, emulator, workdir, context))
                print(f"[bench]   fleet {label}: {time.monotonic() - begun:.0f} s", flush=True)
    finally:
        emulator.client.reset()
    return {
        "duration_s": settings.fleet_duration,
        "ttl_s": settings.fleet_ttl,
        "think_s": settings.fleet_think,
        "refresh_margin_s": 0,
        "runs": runs,
    }
