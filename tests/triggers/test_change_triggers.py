"""DropboxChangeTrigger and BoxEventTrigger against the emulator: one event per change, deletes and moves,
a restart from the stored position, faults during long-poll, and Airflow's shared-stream ack mode."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import SharedStreamManager

from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.triggers._feed import ChangeTrigger
from dropbox_box_provider.triggers.box_events import BoxEventTrigger
from dropbox_box_provider.triggers.dropbox_changes import DropboxChangeTrigger
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.box import box_oauth_connection
from tests.helpers.dropbox import dropbox_connection

WAIT = 20.0


class MemoryAssetStore:
    """Stands in for one watched asset's ``asset_state_store`` accessor (``aget``/``aset``)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.writes += 1

    def position(self) -> str | None:
        return next((v["position"] for v in self.values.values()), None)


@pytest.fixture
def dropbox(monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path) -> DropboxHook:
    fresh_emulator.client.configure(longpoll_time_scale=0.01)
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_watch")
    return DropboxHook("dbx_watch")


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path) -> BoxHook:
    fresh_emulator.client.configure(longpoll_time_scale=0.01)
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_watch")
    return BoxHook("box_watch")


class Running:
    """A trigger's ``run()`` in a task, its events collected as they come."""

    def __init__(self, trigger: ChangeTrigger, store: MemoryAssetStore) -> None:
        trigger.asset_state_store = store  # type: ignore[assignment]
        self.trigger, self.store = trigger, store
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._collect(trigger.run()))

    async def _collect(self, stream: AsyncIterator[TriggerEvent]) -> None:
        async for event in stream:
            self.events.append(dict(event.payload))

    async def started(self) -> None:
        await until(lambda: self.store.position() is not None or self.task.done())
        if self.task.done():
            self.task.result()  # the trigger's own error

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def write(hook: DropboxHook | BoxHook, path: str, data: bytes = b"x") -> Any:
    return asyncio.to_thread(hook.write_bytes, path, data, overwrite=True)


def test_triggers_are_event_triggers_with_time_free_kwargs() -> None:
    dbx = DropboxChangeTrigger(conn_id="d", folder="/in/", pattern="*.csv")
    box = BoxEventTrigger(conn_id="b", folder="in", kinds=["added", "moved"], stream_type="all")
    for trigger in (dbx, box):
        assert isinstance(trigger, BaseEventTrigger)
        classpath, kwargs = trigger.serialize()
        again = type(trigger)(**kwargs)
        assert again.serialize() == (classpath, kwargs)
        assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())
        Asset("dropbox://d/in", watchers=[AssetWatcher(name="w", trigger=trigger)])  # accepted
    assert dbx.serialize()[1]["folder"] == "/in" and box.serialize()[1]["folder"] == "/in"
    assert dbx.shared_stream_key() == DropboxChangeTrigger(conn_id="d", folder="/other").shared_stream_key()
    assert dbx.shared_stream_key() != box.shared_stream_key()


def test_bad_arguments_are_typed_errors() -> None:
    from dropbox_box_provider.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="change kinds"):
        DropboxChangeTrigger(conn_id="d", kinds=["created"])
    with pytest.raises(InvalidArgument, match="30 to 480"):
        DropboxChangeTrigger(conn_id="d", longpoll_timeout=5)
    with pytest.raises(InvalidArgument, match="stream_type"):
        BoxEventTrigger(conn_id="b", stream_type="admin_logs")


def test_dropbox_one_event_per_file_then_modified_moved_and_deleted(dropbox: DropboxHook) -> None:
    async def scenario() -> list[dict[str, Any]]:
        running = Running(
            DropboxChangeTrigger(
                conn_id="dbx_watch", folder="/in", pattern="**/*.csv", kinds=["added", "modified", "deleted"]
            ),
            MemoryAssetStore(),
        )
        await running.started()
        await write(dropbox, "/in/a.csv", b"1")
        await write(dropbox, "/in/ignored.txt")
        await write(dropbox, "/elsewhere/b.csv")
        await until(lambda: len(running.events) >= 1)
        await asyncio.sleep(0.5)  # nothing else arrives for that one file
        assert [(e["kind"], e["path"]) for e in running.events] == [("added", "/in/a.csv")]
        # Dropbox reports the latest state of each path, so each step is awaited before the next one.
        await write(dropbox, "/in/a.csv", b"2")
        await until(lambda: len(running.events) >= 2)
        await asyncio.to_thread(dropbox.move, "/in/a.csv", "/in/sub/c.csv")
        await until(lambda: len(running.events) >= 4)
        await asyncio.to_thread(dropbox.delete, "/in/sub/c.csv")
        await until(lambda: len(running.events) >= 5)
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert [(e["kind"], e["path"]) for e in events] == [
        ("added", "/in/a.csv"),
        ("modified", "/in/a.csv"),
        ("deleted", "/in/a.csv"),
        ("added", "/in/sub/c.csv"),
        ("deleted", "/in/sub/c.csv"),
    ]
    first = events[0]
    assert first["entry"]["size"] == 1 and first["service"] == "dropbox" and first["conn_id"] == "dbx_watch"
    assert "token" not in repr(events).lower()


def test_box_one_event_per_file_then_moved_and_deleted(box: BoxHook) -> None:
    async def scenario() -> list[dict[str, Any]]:
        running = Running(
            BoxEventTrigger(conn_id="box_watch", folder="/in", kinds=["added", "moved", "deleted"]),
            MemoryAssetStore(),
        )
        await running.started()
        await asyncio.to_thread(box.mkdir, "/in")
        await write(box, "/in/a.csv")
        await until(lambda: len(running.events) >= 1)
        await asyncio.sleep(0.5)
        assert [(e["kind"], e["path"]) for e in running.events] == [("added", "/in/a.csv")]
        await asyncio.to_thread(box.mkdir, "/in/sub")
        await asyncio.to_thread(box.move, "/in/a.csv", "/in/sub/b.csv")
        await asyncio.to_thread(box.delete, "/in/sub/b.csv")
        await until(lambda: len(running.events) >= 3)
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert [(e["kind"], e["path"]) for e in events] == [
        ("added", "/in/a.csv"),
        ("moved", "/in/sub/b.csv"),
        ("deleted", "/in/sub/b.csv"),
    ]
    assert events[2]["entry"] is None and events[0]["entry"]["content_hash"]


@pytest.mark.parametrize("service", ["dropbox", "box"])
def test_restart_from_the_stored_position_reports_every_file_once(
    service: str, request: pytest.FixtureRequest
) -> None:
    hook: DropboxHook | BoxHook = request.getfixturevalue(service)

    def make() -> ChangeTrigger:
        if service == "dropbox":
            return DropboxChangeTrigger(conn_id="dbx_watch", folder="/bulk")
        return BoxEventTrigger(conn_id="box_watch", folder="/bulk")

    async def scenario() -> tuple[list[str], int]:
        store = MemoryAssetStore()
        first = Running(make(), store)
        await first.started()
        await asyncio.to_thread(hook.mkdir, "/bulk")
        await first.stop()
        start = store.position()
        for index in range(100):
            await write(hook, f"/bulk/f{index:03}.csv")
        assert store.position() == start  # nobody advanced it while stopped
        # The restarted watcher reads from the stored position, then (a redelivery) from it again.
        trigger = make()
        second = Running(trigger, store)
        await until(lambda: len(second.events) >= 100)
        await second.stop()
        store.values = {k: {**v, "position": start} for k, v in store.values.items()}
        third = Running(trigger, store)  # same watcher: its window drops the repeats
        await until(lambda: store.position() != start)
        await asyncio.sleep(0.3)
        await third.stop()
        return [e["path"] for e in second.events + third.events], len(second.events)

    paths, delivered = asyncio.run(scenario())
    assert delivered == 100
    assert sorted(paths) == [f"/bulk/f{i:03}.csv" for i in range(100)]


@pytest.mark.parametrize("service", ["dropbox", "box"])
def test_faults_during_long_poll_are_survived(
    service: str, request: pytest.FixtureRequest, fresh_emulator: RunningEmulator
) -> None:
    hook: DropboxHook | BoxHook = request.getfixturevalue(service)
    if service == "dropbox":
        trigger: ChangeTrigger = DropboxChangeTrigger(
            conn_id="dbx_watch", reconnect_max=0.2, longpoll_timeout=30
        )
        route = "/notify.dropboxapi.com/*"
    else:
        trigger = BoxEventTrigger(conn_id="box_watch", reconnect_max=0.2)
        route = "/2.realtime.services.box.net/*"
        fresh_emulator.client.configure(box_realtime_retry_timeout=30)

    async def scenario() -> list[dict[str, Any]]:
        running = Running(trigger, MemoryAssetStore())
        await running.started()
        for fault in ({"status": 500, "count": 2}, {"drop": True, "count": 1}, {"status": 503, "count": 1}):
            await asyncio.to_thread(fresh_emulator.client.fault, route, **fault)
        await until(lambda: not _armed(fresh_emulator, route))  # every fault hit a long-poll
        await write(hook, "/after-faults.txt")
        await until(lambda: len(running.events) >= 1)
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert [e["path"] for e in events] == ["/after-faults.txt"]
    statuses = fresh_emulator.client.stats()[service]["routes"]
    polled = {k: v for k, v in statuses.items() if "longpoll" in k or "subscribe" in k}
    seen = {status for counts in polled.values() for status in counts}
    assert {"500", "0"} <= seen, polled


def _armed(emulator: RunningEmulator, route: str) -> bool:
    """True while faults on ``route`` are still waiting for requests (long-polls are 0.3 s here)."""
    polled = {
        k: v
        for k, v in emulator.client.stats()["dropbox" if "notify" in route else "box"]["routes"].items()
        if "longpoll" in k or "subscribe" in k
    }
    failed = sum(n for counts in polled.values() for status, n in counts.items() if status != "200")
    return failed < 4


def test_shared_stream_ack_mode_advances_only_after_persistence(dropbox: DropboxHook) -> None:
    """Two watchers on one connection share one feed in Airflow's SharedStreamManager; the stored cursor
    moves only once the runner confirms their events persisted."""

    async def scenario() -> None:
        manager = SharedStreamManager(ack_timeout=60)
        stores = {1: MemoryAssetStore(), 2: MemoryAssetStore()}
        triggers = {
            1: DropboxChangeTrigger(conn_id="dbx_watch", folder="/a"),
            2: DropboxChangeTrigger(conn_id="dbx_watch", folder="/b"),
        }
        events: dict[int, list[tuple[dict[str, Any], int | None]]] = {1: [], 2: []}
        keys = set()
        for trigger_id, trigger in triggers.items():
            trigger.asset_state_store = stores[trigger_id]  # type: ignore[assignment]
            keys.add(trigger.shared_stream_key())
        (key,) = keys

        async def consume(trigger_id: int) -> None:
            stream = manager.subscribe(trigger_id=trigger_id, trigger=triggers[trigger_id], key=key)
            async for event in triggers[trigger_id].filter_shared_stream(stream):
                seq = manager.bind_pending_event(trigger_id=trigger_id, key=key)
                events[trigger_id].append((dict(event.payload), seq))

        tasks = [asyncio.create_task(consume(1)), asyncio.create_task(consume(2))]
        await until(lambda: all(s.position() for s in stores.values()))
        # The first read after "now" may store a newer cursor (nothing to persist): wait until it settles.
        start = stores[1].position()
        while True:
            await asyncio.sleep(1.0)
            if stores[1].position() == start:
                break
            start = stores[1].position()
        assert stores[2].position() == start
        await write(dropbox, "/a/one.csv")
        await write(dropbox, "/b/two.csv")
        await until(lambda: bool(events[1]) and bool(events[2]))
        await asyncio.sleep(0.5)
        assert [e["path"] for e, _ in events[1]] == ["/a/one.csv"]
        assert [e["path"] for e, _ in events[2]] == ["/b/two.csv"]
        assert stores[1].position() == start, "advanced before the events were persisted"
        seqs = [seq for items in events.values() for _, seq in items]
        assert all(seq is not None for seq in seqs)
        manager.confirm_persisted([s for s in seqs if s is not None])
        await until(lambda: stores[1].position() != start)
        assert stores[2].position() == stores[1].position()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for trigger_id, trigger in triggers.items():
            await manager.unsubscribe(trigger_id, key)
            await trigger.cleanup()

    asyncio.run(scenario())


def test_importing_on_airflow_before_3_3_raises_a_clear_error() -> None:
    code = (
        "import sys; sys.modules['airflow.triggers.shared_stream'] = None\n"
        "try:\n    import dropbox_box_provider.triggers.dropbox_changes\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
        "import dropbox_box_provider.triggers.files, dropbox_box_provider.hooks.dropbox\nprint('rest ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "EventTriggerUnavailable" in result.stdout and "Airflow 3.3" in result.stdout
    assert "rest ok" in result.stdout


def test_replay_reports_what_is_there_then_follows(dropbox: DropboxHook) -> None:
    dropbox.write_bytes("/old/one.csv", b"1")

    async def scenario() -> list[dict[str, Any]]:
        running = Running(
            DropboxChangeTrigger(conn_id="dbx_watch", folder="/old", replay=True), MemoryAssetStore()
        )
        await until(lambda: len(running.events) >= 1)
        await write(dropbox, "/old/two.csv")
        await until(lambda: len(running.events) >= 2)
        await running.stop()
        return running.events

    assert [(e["kind"], e["path"]) for e in asyncio.run(scenario())] == [
        ("added", "/old/one.csv"),
        ("added", "/old/two.csv"),
    ]


def test_a_cursor_dropbox_forgot_restarts_from_now(
    dropbox: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], str | None, str | None]:
        store = MemoryAssetStore()
        running = Running(DropboxChangeTrigger(conn_id="dbx_watch", longpoll_timeout=30), store)
        await running.started()
        first = store.position()
        await asyncio.to_thread(fresh_emulator.client.configure, dropbox_cursor_max_age=0.5)
        await until(lambda: store.position() != first)  # the long-poll said reset: a new cursor was stored
        await asyncio.to_thread(fresh_emulator.client.configure, dropbox_cursor_max_age=0)
        await write(dropbox, "/after-reset.txt")
        await until(lambda: len(running.events) >= 1)
        await running.stop()
        return running.events, first, store.position()

    events, first, last = asyncio.run(scenario())
    assert [e["path"] for e in events] == ["/after-reset.txt"] and first != last


def test_box_watcher_refreshes_tokens_through_the_token_manager(
    box: BoxHook, fresh_emulator: RunningEmulator
) -> None:
    """Tokens living 2 s expire while the watcher long-polls; its OPTIONS and events calls refresh them
    (single-use Box refresh tokens rotate through the store), and uploads are still reported."""
    fresh_emulator.client.configure(access_token_ttl=2, box_realtime_retry_timeout=50)  # 0.5 s polls

    async def scenario() -> list[dict[str, Any]]:
        running = Running(BoxEventTrigger(conn_id="box_watch"), MemoryAssetStore())
        await running.started()
        for index in range(2):
            await asyncio.sleep(2.5)
            await write(box, f"/t{index}.txt")
            await until(lambda index=index: len(running.events) >= index + 1)
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert [e["path"] for e in events] == ["/t0.txt", "/t1.txt"]
    grants = fresh_emulator.client.stats()["box"]["token"]["refresh_token"]
    assert grants["ok"] >= 1 and grants["invalid_grant"] == 0
    assert "access_token" not in repr(events)


def test_dropbox_watcher_refreshes_tokens_through_the_token_manager(
    dropbox: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    """Tokens living 2 s expire while the watcher long-polls (the notify host takes none); its
    ``list_folder/continue`` calls get fresh ones from the TokenManager, and uploads are still reported."""
    fresh_emulator.client.configure(access_token_ttl=2)

    async def scenario() -> list[dict[str, Any]]:
        running = Running(DropboxChangeTrigger(conn_id="dbx_watch", longpoll_timeout=30), MemoryAssetStore())
        await running.started()
        for index in range(2):
            await asyncio.sleep(2.5)
            await write(dropbox, f"/t{index}.txt")
            await until(lambda index=index: len(running.events) >= index + 1)
        await running.stop()
        return running.events

    events = asyncio.run(scenario())
    assert [e["path"] for e in events] == ["/t0.txt", "/t1.txt"]
    stats = fresh_emulator.client.stats()["dropbox"]
    grants = stats["token"]["refresh_token"]
    assert grants["ok"] >= 1 and grants.get("invalid_grant", 0) == 0
    assert "401" not in stats["routes"]["/2/files/list_folder/continue"]
    assert "access_token" not in repr(events)


def test_dropbox_watcher_waits_the_backoff_dropbox_asks_for(
    dropbox: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    """A long-poll answer with ``backoff`` delays the next long-poll by that many seconds."""

    async def polls_in(seconds: float) -> int:
        before = fresh_emulator.client.stats()["dropbox"]["routes"].get("/2/files/list_folder/longpoll", {})
        await asyncio.sleep(seconds)
        after = fresh_emulator.client.stats()["dropbox"]["routes"].get("/2/files/list_folder/longpoll", {})
        return sum(after.values()) - sum(before.values())

    async def scenario() -> tuple[int, int]:
        running = Running(DropboxChangeTrigger(conn_id="dbx_watch", longpoll_timeout=30), MemoryAssetStore())
        await running.started()
        quick = await polls_in(2.0)  # long-polls last 0.3 s here
        await asyncio.to_thread(fresh_emulator.client.configure, dropbox_longpoll_backoff=1)
        await asyncio.sleep(1.5)  # the poll under way when backoff was set ends, then one pause
        slow = await polls_in(3.0)
        await running.stop()
        return quick, slow

    quick, slow = asyncio.run(scenario())
    assert quick >= 4, quick
    assert 1 <= slow <= 3, (quick, slow)  # one poll per 1.3 s (pause + poll) instead of one per 0.3 s


def test_box_replay_reports_what_the_stream_still_holds_then_follows(box: BoxHook) -> None:
    box.events("now")  # the emulator's journal of this user starts here (Box keeps weeks of events)
    box.write_bytes("/old/one.csv", b"1")

    async def scenario() -> list[dict[str, Any]]:
        running = Running(
            BoxEventTrigger(conn_id="box_watch", folder="/old", replay=True), MemoryAssetStore()
        )
        await until(lambda: len(running.events) >= 1)
        await write(box, "/old/two.csv")
        await until(lambda: len(running.events) >= 2)
        await asyncio.sleep(0.3)
        await running.stop()
        return running.events

    assert [(e["kind"], e["path"]) for e in asyncio.run(scenario())] == [
        ("added", "/old/one.csv"),
        ("added", "/old/two.csv"),
    ]


def test_reconnect_delays_are_jittered_and_capped() -> None:
    from dropbox_box_provider.triggers.feeds.base import Reconnect

    reconnect = Reconnect(base=1.0, ceiling=8.0)
    delays = [reconnect.next_delay() for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert delays[0] <= 1.0 and delays[1] <= 2.0 and delays[2] <= 4.0
    assert len({round(d, 6) for d in delays[5:]}) > 150  # drawn, not fixed
    assert max(delays[5:]) > 4.0  # the cap is reached, not exceeded
    reconnect.reset()
    assert reconnect.next_delay() <= 1.0


def test_repeats_are_dropped_within_a_bounded_window() -> None:
    """De-duplication keeps the last ``dedup_window`` identities: a repeat inside it is dropped, one older
    than the window is delivered again (at least once), and memory stays bounded."""
    from dropbox_box_provider.hooks.changes import RecentIdentities

    window = RecentIdentities(3)
    assert [window.first_time(i) for i in "abca"] == [True, True, True, False]
    assert window.first_time("d") and len(window) == 3 and "b" not in window
    assert window.first_time("b")  # fell out of the window: news again

    trigger = BoxEventTrigger(conn_id="b", dedup_window=2)
    raw = [{"kind": "added", "path": f"/f{i}", "identity": f"e{i}", "entry": None} for i in range(3)]
    delivered = [trigger.event_for(r) is not None for r in (raw[0], raw[0], raw[1], raw[2], raw[0])]
    assert delivered == [True, False, True, True, True]
    assert len(trigger._seen) == 2


_LATEST = "/2/files/list_folder/get_latest_cursor"


def test_a_fault_while_taking_a_new_cursor_after_a_reset_is_survived(
    dropbox: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    """Dropbox forgot the cursor (reset) and the first attempts at a new one fail past the hook's own retries:
    the feed backs off and tries again instead of ending the watcher."""
    route = "/api.dropboxapi.com" + _LATEST

    async def scenario() -> tuple[list[dict[str, Any]], str | None, str | None]:
        store = MemoryAssetStore()
        running = Running(
            DropboxChangeTrigger(conn_id="dbx_watch", longpoll_timeout=30, reconnect_max=0.2), store
        )
        await running.started()
        await asyncio.sleep(1.0)  # the first read after "now" may store a newer cursor: let it settle
        first = store.position()
        await asyncio.to_thread(fresh_emulator.client.fault, route, status=500, count=5)
        await asyncio.to_thread(fresh_emulator.client.configure, dropbox_cursor_max_age=0.5)

        def new_cursor_taken() -> bool:
            calls = fresh_emulator.client.stats()["dropbox"]["routes"][_LATEST]
            return calls.get("500", 0) == 5 and calls.get("200", 0) >= 2

        await until(lambda: running.task.done() or new_cursor_taken(), timeout=60)
        assert not running.task.done(), running.task.exception()
        await asyncio.to_thread(fresh_emulator.client.configure, dropbox_cursor_max_age=0)
        await write(dropbox, "/after-reset-fault.txt")
        await until(lambda: len(running.events) >= 1 or running.task.done())
        assert not running.task.done(), running.task.exception()
        await running.stop()
        return running.events, first, store.position()

    events, first, last = asyncio.run(scenario())
    assert [e["path"] for e in events] == ["/after-reset-fault.txt"] and first != last
    assert fresh_emulator.client.stats()["dropbox"]["routes"][_LATEST].get("500") == 5
