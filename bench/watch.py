"""Scenario ``watch``: what the change-feed triggers cost while idle, and how soon they see an upload.

Idle: each service's trigger watches for ``watch_idle`` seconds with nothing changing. The emulator
compresses time by ``watch_idle / 600`` (long-poll timeouts: Dropbox 480 s, Box's real-time
``retry_timeout`` 610 s; access tokens live 240 s, so 120 s effectively with the half-lifetime margin), so the
window stands for 10 minutes of real watching. Counted from the emulator's stats: token-endpoint calls
against the effective lifetimes in the window, and API calls per route against one long-poll per timeout.

Latency: ``watch_uploads`` uploads at random moments, each timed from the upload's answer to the trigger's
event, beside a poke sensor (``find_files`` every ``watch_poke_interval`` s, what the file sensors do) on the
same folder. This is upload -> trigger event in the triggerer; the DAG run starts about a scheduler loop
later (``watch_dagrun`` times upload -> DAG run start in a real Airflow).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from bench import connections
from bench.settings import Settings

REAL_WINDOW = 600.0
TIMEOUTS = {"dropbox": 480.0, "box": 610.0}
TOKEN_TTL = 240.0
FOLDER = "/bench-watch"


class MemoryStore:
    """The watched asset's state store for a trigger run outside Airflow."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _figures(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "median_s": round(statistics.median(values), 3) if values else None,
        "p95_s": round(_percentile(values, 0.95) or 0.0, 3) if values else None,
        "values_s": [round(v, 3) for v in values],
    }


def _counts(emulator: Any, service: str) -> tuple[dict[str, int], int]:
    stats = emulator.client.stats()[service]
    routes = {route: sum(by_status.values()) for route, by_status in stats["routes"].items()}
    grants = stats["token"]["refresh_token"]
    return routes, int(sum(grants.values()))


class Watch:
    """One service's trigger, hook and poke-sensor stand-in on a connection of its own."""

    def __init__(self, service: str, emulator: Any, workdir: Path) -> None:
        from dropbox_box_provider.hooks.box import BoxHook
        from dropbox_box_provider.hooks.dropbox import DropboxHook
        from dropbox_box_provider.triggers.box_events import BoxEventTrigger
        from dropbox_box_provider.triggers.dropbox_changes import DropboxChangeTrigger

        self.service = service
        self.emulator = emulator
        conn_id = f"bench_watch_{service}_{uuid.uuid4().hex[:6]}"
        store_url = f"sqlite:///{workdir / f'{conn_id}.db'}"
        conn_json = connections.connection_json(service, emulator.url, store_url)
        connections.set_connection(conn_id, conn_json)
        connections.store_grant(service, conn_id, conn_json, connections.raw_grant(service, emulator))
        self.hook: Any = (DropboxHook if service == "dropbox" else BoxHook)(conn_id)
        trigger_class: Any = DropboxChangeTrigger if service == "dropbox" else BoxEventTrigger
        self.trigger = trigger_class(conn_id=conn_id, folder=FOLDER, pattern="*.csv")
        self.store = MemoryStore()
        self.trigger.asset_state_store = self.store
        self.seen: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.hook.mkdir, FOLDER)
        self.task = asyncio.create_task(self._collect())
        while not self.store.values:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.05)
        # The start's last calls (first read, Box's OPTIONS) land just after the position is stored:
        # idle counting begins once the counts stay still for a second (the first long-poll is waiting).
        last: Any = None
        for _ in range(100):
            now = await asyncio.to_thread(_counts, self.emulator, self.service)
            if now == last:
                break
            last = now
            await asyncio.sleep(1.0)

    async def _collect(self) -> None:
        async for event in self.trigger.run():
            self.seen.setdefault(str(event.payload["path"]).lower(), time.monotonic())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.hook.aclose()
        self.hook.close()

    async def idle(self, seconds: float, scale: float) -> dict[str, Any]:
        """Watch with nothing changing; what it cost."""
        routes_before, tokens_before = await asyncio.to_thread(_counts, self.emulator, self.service)
        await asyncio.sleep(seconds)
        routes_after, tokens_after = await asyncio.to_thread(_counts, self.emulator, self.service)
        calls = {
            r: n - routes_before.get(r, 0) for r, n in routes_after.items() if n - routes_before.get(r, 0)
        }
        calls.pop("/oauth2/token", None)
        timeout = TIMEOUTS[self.service] * scale
        effective = TOKEN_TTL * scale / 2
        long_polls = sum(n for r, n in calls.items() if "longpoll" in r or "subscribe" in r)
        return {
            "window_s": seconds,
            "stands_for_s": REAL_WINDOW,
            "token_calls": tokens_after - tokens_before,
            "effective_token_lifetimes": round(seconds / effective, 2),
            "api_calls": calls,
            "api_calls_total": sum(calls.values()),
            "long_polls": long_polls,
            "service_timeouts": round(seconds / timeout, 2),
            "long_polls_allowed": math.ceil(seconds / timeout),
        }

    async def latency(self, uploads: int, poke_interval: float) -> dict[str, Any]:
        """Uploads at random moments; seconds until the trigger and a poke sensor each saw them."""
        from dropbox_box_provider.hooks.matching import afind_files

        uploaded: dict[str, float] = {}
        poked: dict[str, float] = {}
        done = asyncio.Event()

        async def poke() -> None:
            while not done.is_set():
                for entry in await afind_files(self.hook, f"{FOLDER}/*.csv"):
                    poked.setdefault(entry.path.lower(), time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), poke_interval)

        sensor = asyncio.create_task(poke())
        await asyncio.sleep(0.1)  # the sensor's first poke sees the folder empty
        for index in range(uploads):
            await asyncio.sleep(random.uniform(0.1, poke_interval))
            path = f"{FOLDER}/upload-{index:03}.csv"
            await asyncio.to_thread(self.hook.write_bytes, path, b"id\n1\n")
            uploaded[path.lower()] = time.monotonic()
        deadline = time.monotonic() + poke_interval * 2 + 30
        while time.monotonic() < deadline and not (
            set(uploaded) <= set(poked) and set(uploaded) <= set(self.seen)
        ):
            await asyncio.sleep(0.05)
        done.set()
        await sensor
        trigger = [self.seen[p] - t for p, t in uploaded.items() if p in self.seen]
        sensor_values = [poked[p] - t for p, t in uploaded.items() if p in poked]
        return {
            "change_trigger": _figures(trigger),
            "poke_sensor": {**_figures(sensor_values), "poke_interval_s": poke_interval},
            "missed": {"trigger": len(uploaded) - len(trigger), "sensor": len(uploaded) - len(sensor_values)},
        }


async def _service(
    service: str, settings: Settings, emulator: Any, workdir: Path, scale: float
) -> dict[str, Any]:
    watch = Watch(service, emulator, workdir)
    try:
        await watch.start()
        idle = await watch.idle(settings.watch_idle, scale)
        latency = await watch.latency(settings.watch_uploads, settings.watch_poke_interval)
        return {"idle": idle, "latency": latency}
    finally:
        await watch.stop()


def run(settings: Settings, *, emulator: Any, workdir: Path) -> dict[str, Any]:
    """Both services side by side (each on its own connection)."""
    scale = settings.watch_idle / REAL_WINDOW
    emulator.client.configure(longpoll_time_scale=scale, access_token_ttl=TOKEN_TTL * scale)

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(_service(s, settings, emulator, workdir, scale) for s in ("dropbox", "box"))
        )

    try:
        dropbox, box = asyncio.run(both())
    finally:
        emulator.client.configure(
            longpoll_time_scale=1.0, dropbox_access_token_ttl=14400.0, box_access_token_ttl=3600.0
        )
    return {"time_scale": scale, "dropbox": dropbox, "box": box}


def targets(watch: dict[str, Any]) -> list[dict[str, Any]]:
    """Idle cost and latency targets per service."""
    out: list[dict[str, Any]] = []
    for service in ("dropbox", "box"):
        idle, latency = watch[service]["idle"], watch[service]["latency"]
        out.append(
            {
                "target": f"watch, {service}, idle 10 min: token calls ≤ 1 per effective token lifetime",
                "measured": f"{idle['token_calls']} calls in {idle['effective_token_lifetimes']} lifetimes",
                "met": idle["token_calls"] <= max(1, math.floor(idle["effective_token_lifetimes"])),
            }
        )
        out.append(
            {
                "target": f"watch, {service}, idle 10 min: one long-poll per service timeout, nothing else",
                "measured": f"{idle['long_polls']} long-polls / {idle['service_timeouts']} timeouts, "
                f"{idle['api_calls_total']} API calls",
                "met": idle["long_polls"] <= idle["long_polls_allowed"]
                and idle["api_calls_total"] <= 2 * idle["long_polls_allowed"],
            }
        )
        trigger, sensor = latency["change_trigger"], latency["poke_sensor"]
        out.append(
            {
                "target": f"watch, {service}: upload -> trigger event median below the poke sensor's",
                "measured": f"trigger {trigger['median_s']} s (p95 {trigger['p95_s']}), "
                f"sensor {sensor['median_s']} s (p95 {sensor['p95_s']})",
                "met": trigger["median_s"] is not None
                and sensor["median_s"] is not None
                and trigger["median_s"] < sensor["median_s"]
                and latency["missed"]["trigger"] == 0,
            }
        )
    return out


def markdown(watch: dict[str, Any] | None) -> list[str]:
    """The ``watch`` section of latest.md."""
    if not watch:
        return []
    lines = [
        "## 6. Change feeds (event triggers)",
        "",
        f"Idle watching compressed by {watch['time_scale']:g} (the window stands for 10 minutes; long-poll "
        "timeouts and token lifetimes scaled alike); latency is upload -> trigger event, beside a poke "
        "sensor on the same folder.",
        "",
        "| service | token calls / effective lifetimes | long-polls / timeouts | API calls (idle) | "
        "trigger median s | trigger p95 s | sensor median s | sensor p95 s | poke interval s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for service in ("dropbox", "box"):
        idle, latency = watch[service]["idle"], watch[service]["latency"]
        trigger, sensor = latency["change_trigger"], latency["poke_sensor"]
        lines.append(
            f"| {service} | {idle['token_calls']} / {idle['effective_token_lifetimes']} | "
            f"{idle['long_polls']} / {idle['service_timeouts']} | {idle['api_calls_total']} | "
            f"{trigger['median_s']} | {trigger['p95_s']} | {sensor['median_s']} | {sensor['p95_s']} | "
            f"{sensor['poke_interval_s']:g} |"
        )
    return [*lines, ""]
