"""Scenario 5: refresh under contention. P processes share C Box connections in one token store; each process
loops over the C connections calling ``TokenManager.get_valid_token`` (what ``hook.get_access_token()`` does)
while access tokens live ``ttl`` seconds with Box refresh grace off, so a second refresh with a used token is
an ``invalid_grant``.

Figures per repetition: refresh grants (counted at the emulator) per *effective* token lifetime per
connection, the effective lifetime being ``ttl`` minus the effective margin ``min(refresh_margin, ttl / 2)``
(1.0 is one refresh per lifetime; each process refreshing on its own would give about P); ``invalid_grant``
answers; failed calls; and the wait of the calls that found no valid token in the in-process cache or the
store read, so waited for a refresh lease or made the token request (those holding the lease and those
waiting for another process's refresh), beside the token endpoint's own latency: the duration of every
refresh request the workers made, timed around the token call in the same run. Waits and latencies are
taken after a warm-up (the first lifetime, when every connection's grant falls due at once, is start-up,
not contention); grants are counted over the whole run.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench import connections
from bench.report import summarize
from bench.settings import Settings

if TYPE_CHECKING:
    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.store.base import LeaseState, TokenStore

BARRIER_TIMEOUT = 600.0
PRELOAD = [
    "bench.contention",
    "dropbox_box_provider.auth.flows",
    "dropbox_box_provider.auth.manager",
    "dropbox_box_provider.store.sql",
    "psycopg",
]
STORES = ("sqlite", "postgres")
STORE_LABELS = {"sqlite": "sqlite", "postgres": "PostgreSQL"}


@dataclass(frozen=True)
class Plan:
    """What every worker needs up front (repetition ``r`` uses the connections ``conn_ids[r]``)."""

    store_url: str
    fernet_key: str
    conn_ids: tuple[tuple[str, ...], ...]
    conn_jsons: tuple[tuple[str, ...], ...]
    warmup: float
    duration: float
    think: float


# ---------------------------------------------------------------------------------------------- worker side


class TimedFlows:
    """The real token-endpoint flows, with every refresh request timed (the endpoint's own latency)."""

    def __init__(self) -> None:
        from dropbox_box_provider.auth import flows

        self._flows = flows
        self.refreshes = 0
        self.latencies: list[tuple[float, float]] = []  # (monotonic start, ms)

    def refresh(self, config: AuthConfig, refresh_token: str) -> TokenSet:
        """``flows.refresh``, timed."""
        self.refreshes += 1
        at, started = time.monotonic(), time.perf_counter()
        try:
            return self._flows.refresh(config, refresh_token)
        finally:
            self.latencies.append((at, (time.perf_counter() - started) * 1000))

    def exchange_code(
        self, config: AuthConfig, code: str, callback_url: str | None = None, code_verifier: str | None = None
    ) -> TokenSet:
        """``flows.exchange_code`` (not used by this scenario)."""
        return self._flows.exchange_code(config, code, callback_url=callback_url, code_verifier=code_verifier)

    def fetch_service_token(self, config: AuthConfig) -> TokenSet:
        """``flows.fetch_service_token`` (not used by this scenario)."""
        return self._flows.fetch_service_token(config)


class ClaimCounter:
    """The process's token store, counting lease claims: a call that claimed (or waited for) the lease is
    one that found no valid token in the cache or the store read, i.e. one that met a refresh."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store
        self.url = store.url
        self.claims = 0
        self.acquired = 0

    def claim_lease(self, conn_id: str, owner: str, seconds: float, *, service: str) -> LeaseState:
        """``TokenStore.claim_lease``, counted (all claims, and those that took the lease)."""
        self.claims += 1
        state = self._store.claim_lease(conn_id, owner, seconds, service=service)
        self.acquired += state.acquired
        return state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _run_repetition(plan: Plan, rep: int, barrier: Any) -> dict[str, Any]:
    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.store import open_store
    from dropbox_box_provider.store.lease import LeaseSettings

    store = ClaimCounter(open_store(plan.store_url, plan.fernet_key))
    flows = TimedFlows()
    manager = TokenManager(cast("TokenStore", store), flows=flows, lease=LeaseSettings())
    work = [
        (conn_id, connections.auth_config("box", conn_id, conn_json))
        for conn_id, conn_json in zip(plan.conn_ids[rep], plan.conn_jsons[rep], strict=True)
    ]
    outcome: dict[str, Any] = {"errors": []}
    idle_leases = 0  # calls that took the lease, then found another process's new tokens and made no request
    holder_ms: list[float] = []  # calls that made the token request themselves
    waiter_ms: list[float] = []  # calls that waited for (or re-checked after) another process's refresh
    barrier.wait(BARRIER_TIMEOUT)  # everyone ready: the parent obtains and stores the grants
    barrier.wait(BARRIER_TIMEOUT)  # go
    clock = time.perf_counter
    measure_from = time.monotonic() + plan.warmup  # the start-up herd (every grant due) is not measured
    deadline = measure_from + plan.duration
    calls = failed = 0
    while (now := time.monotonic()) < deadline:
        measuring = now >= measure_from
        for conn_id, config in work:
            claims, acquired, refreshes = store.claims, store.acquired, flows.refreshes
            begun = clock()
            try:
                manager.get_valid_token(conn_id, config)
            except Exception as exc:
                failed += 1
                if len(outcome["errors"]) < 3:
                    outcome["errors"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
            elapsed = clock() - begun
            if not measuring:
                continue
            calls += 1
            if store.claims != claims:
                if flows.refreshes != refreshes:
                    holder_ms.append(elapsed * 1000)
                else:
                    waiter_ms.append(elapsed * 1000)
                    idle_leases += store.acquired != acquired
        time.sleep(plan.think)
    outcome.update(
        calls=calls,
        failed=failed,
        measure_from=measure_from,
        ended=time.monotonic(),
        holder_ms=holder_ms,
        waiter_ms=waiter_ms,
        idle_leases=idle_leases,
        token_ms=[ms for at, ms in flows.latencies if at >= measure_from],
    )
    return outcome


def worker(plan: Plan, repetitions: int, barrier: Any, results: Any) -> None:
    """One process: per repetition build its configs, wait for the grants, then sweep the connections."""
    for rep in range(repetitions):
        try:
            outcome = _run_repetition(plan, rep, barrier)
        except BaseException as exc:
            barrier.abort()  # the parent and the other workers stop waiting for this one
            outcome = {"errors": [f"worker crashed: {type(exc).__name__}: {exc}"], "crashed": True}
        results.put(outcome)
        if outcome.get("crashed"):
            return


# ---------------------------------------------------------------------------------------------- parent side


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def effective_margin(margin: float, ttl: float) -> float:
    """The margin the TokenManager applies: capped at half the token's lifetime."""
    return min(margin, ttl / 2)


def _refresh_counts(emulator: Any) -> dict[str, int]:
    counts: dict[str, int] = emulator.client.stats()["box"]["token"].get("refresh_token", {})
    return {k: int(v) for k, v in counts.items()}


@contextlib.contextmanager
def _store_url(store: str, workdir: Path, tag: str) -> Iterator[str]:
    if store == "postgres":
        with connections.postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{workdir / f'contention-{tag}.db'}"


def _figures(values: list[float | None], unit: str) -> dict[str, Any]:
    return summarize([v for v in values if v is not None], unit)


def run_variant(
    store: str, margin: int, settings: Settings, emulator: Any, workdir: Path, context: Any
) -> dict[str, Any]:
    """All repetitions of one (store, margin) with one set of P processes."""
    reps = settings.repetitions
    processes = settings.contention_processes
    count = settings.contention_connections
    ttl = settings.contention_ttl
    lifetime = ttl - effective_margin(margin, ttl)
    tag = f"{store}-{margin}"
    with _store_url(store, workdir, tag) as store_url:
        conn_ids = tuple(
            tuple(f"contention_{store}_{margin}_{rep}_{i}" for i in range(count)) for rep in range(reps)
        )
        conn_json = connections.connection_json("box", emulator.url, store_url, refresh_margin=margin)
        conn_jsons = tuple(tuple(conn_json for _ in range(count)) for _ in range(reps))
        plan = Plan(
            store_url,
            connections.fernet_key(),
            conn_ids,
            conn_jsons,
            settings.contention_warmup,
            settings.contention_duration,
            settings.contention_think,
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
                issued: list[float] = []
                for conn_id in conn_ids[rep]:
                    grant = connections.raw_grant("box", emulator)
                    issued.append(time.monotonic())
                    connections.store_grant("box", conn_id, conn_json, grant)
                before = _refresh_counts(emulator)
                barrier.wait(BARRIER_TIMEOUT)
                outcomes = [queue.get(timeout=BARRIER_TIMEOUT) for _ in children]
                crashed = [e for o in outcomes if o.get("crashed") for e in o["errors"]]
                if crashed:
                    raise RuntimeError(f"contention workers crashed: {crashed[:3]}")
                after = _refresh_counts(emulator)
                end = max(o["ended"] for o in outcomes)
                # Grants over the whole run (warm-up included) against every connection's lifetimes since
                # its grant: the figure cannot exceed 1.0 without an early or an extra refresh.
                diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                windows = sum(end - at for at in issued) / lifetime
                waits = [ms for o in outcomes for ms in o["holder_ms"] + o["waiter_ms"]]
                holders = [ms for o in outcomes for ms in o["holder_ms"]]
                waiters = [ms for o in outcomes for ms in o["waiter_ms"]]
                token = [ms for o in outcomes for ms in o["token_ms"]]
                per_rep.append(
                    {
                        "grants": diff.get("ok", 0),
                        "refused": {k: v for k, v in diff.items() if k != "ok" and v},
                        "windows": windows,
                        "calls": sum(o["calls"] for o in outcomes),
                        "failed": sum(o["failed"] for o in outcomes),
                        "errors": sorted({e for o in outcomes for e in o["errors"]})[:5],
                        "waiting_calls": len(waits),
                        "waiter_calls": len(waiters),
                        "idle_leases": sum(o["idle_leases"] for o in outcomes),
                        "wait_p50": percentile(waits, 50),
                        "wait_p99": percentile(waits, 99),
                        "holder_p50": percentile(holders, 50),
                        "holder_p99": percentile(holders, 99),
                        "waiter_p50": percentile(waiters, 50),
                        "waiter_p99": percentile(waiters, 99),
                        "token_p50": percentile(token, 50),
                        "token_p99": percentile(token, 99),
                    }
                )
        except BaseException:
            barrier.abort()  # release the workers still waiting at the barrier
            raise
        finally:
            for child in children:
                child.join(30)
                if child.is_alive():
                    child.kill()
                    child.join(10)

    def ratio(r: dict[str, Any], key: str) -> float | None:
        return r[key] / r["token_p50"] if r[key] is not None and r["token_p50"] else None

    return {
        "store": store,
        "client": f"provider, {STORE_LABELS[store]} store",
        "processes": processes,
        "connections": count,
        "refresh_margin_s": margin,
        "effective_margin_s": effective_margin(margin, ttl),
        "effective_lifetime_s": lifetime,
        "grants_per_lifetime": summarize([r["grants"] / r["windows"] for r in per_rep], "grants/lifetime"),
        "grants": summarize([r["grants"] for r in per_rep], "grants"),
        "invalid_grant": summarize([r["refused"].get("invalid_grant", 0) for r in per_rep], "count"),
        "refused_total": summarize([sum(r["refused"].values()) for r in per_rep], "count"),
        "failed_calls": summarize([r["failed"] for r in per_rep], "count"),
        "calls": summarize([r["calls"] for r in per_rep], "count"),
        "waiting_calls": summarize([r["waiting_calls"] for r in per_rep], "count"),
        "waiter_calls": summarize([r["waiter_calls"] for r in per_rep], "count"),
        "idle_leases": summarize([r["idle_leases"] for r in per_rep], "count"),
        "wait_p50_ms": _figures([r["wait_p50"] for r in per_rep], "ms"),
        "wait_p99_ms": _figures([r["wait_p99"] for r in per_rep], "ms"),
        "waiter_p50_ms": _figures([r["waiter_p50"] for r in per_rep], "ms"),
        "waiter_p99_ms": _figures([r["waiter_p99"] for r in per_rep], "ms"),
        "holder_p50_ms": _figures([r["holder_p50"] for r in per_rep], "ms"),
        "holder_p99_ms": _figures([r["holder_p99"] for r in per_rep], "ms"),
        "token_p50_ms": _figures([r["token_p50"] for r in per_rep], "ms"),
        "token_p99_ms": _figures([r["token_p99"] for r in per_rep], "ms"),
        "wait_p50_to_token_p50": _figures([ratio(r, "wait_p50") for r in per_rep], "x"),
        "wait_p99_to_token_p50": _figures([ratio(r, "wait_p99") for r in per_rep], "x"),
        "error_samples": sorted({e for r in per_rep for e in r["errors"]})[:5],
    }


def run(settings: Settings, *, emulator: Any, workdir: Path, **_: Any) -> dict[str, Any]:
    """Every store at every margin; the emulator's tokens live ``contention_ttl`` seconds, grace off."""
    from dropbox_box_provider.store.lease import LeaseSettings

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    emulator.client.reset()
    emulator.client.configure(access_token_ttl=settings.contention_ttl, box_refresh_grace=False)
    postgres_missing = connections.postgres_available()
    runs: list[dict[str, Any]] = []
    try:
        for margin in settings.contention_margins:
            for store in STORES:
                label = f"{store} / refresh_margin {margin}"
                if store == "postgres" and postgres_missing:
                    runs.append(
                        {
                            "store": store,
                            "client": f"provider, {STORE_LABELS[store]} store",
                            "refresh_margin_s": margin,
                            "skipped": postgres_missing,
                        }
                    )
                    continue
                begun = time.monotonic()
                runs.append(run_variant(store, margin, settings, emulator, workdir, context))
                print(f"[bench]   contention {label}: {time.monotonic() - begun:.0f} s", flush=True)
    finally:
        emulator.client.reset()
    lease = LeaseSettings()
    return {
        "started_at": started_at,
        "load_average_at_start": load,
        "processes": settings.contention_processes,
        "connections": settings.contention_connections,
        "warmup_s": settings.contention_warmup,
        "duration_s": settings.contention_duration,
        "ttl_s": settings.contention_ttl,
        "think_s": settings.contention_think,
        "lease_s": lease.seconds,
        "poll_s": [lease.poll_min, lease.poll_max],
        "runs": runs,
    }
