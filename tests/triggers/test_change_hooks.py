"""The hooks' change feeds against the emulator: Dropbox cursors and longpoll, Box events and long-poll."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from dropbox_box_provider.errors import CursorReset, InvalidArgument
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.box import box_oauth_connection
from tests.helpers.dropbox import dropbox_connection


@pytest.fixture
def dropbox(monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path) -> DropboxHook:
    fresh_emulator.client.configure(longpoll_time_scale=0.01)
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_changes")
    return DropboxHook("dbx_changes")


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path) -> BoxHook:
    fresh_emulator.client.configure(longpoll_time_scale=0.01)
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_events")
    return BoxHook("box_events")


def test_dropbox_cursor_reports_adds_modifications_moves_and_deletes(dropbox: DropboxHook) -> None:
    dropbox.mkdir("/in")
    cursor = dropbox.latest_cursor("/in", recursive=True)
    assert dropbox.changes(cursor).changes == []
    first = dropbox.write_bytes("/in/a.csv", b"1")
    page = dropbox.changes(cursor)
    assert [(c.kind, c.path) for c in page.changes] == [("added", "/in/a.csv")]
    assert page.changes[0].identity == f"/in/a.csv@{first.raw['rev']}"
    assert page.changes[0].entry is not None and page.changes[0].entry.size == 1
    dropbox.move("/in/a.csv", "/in/b.csv")
    dropbox.write_bytes("/in/c.csv", b"2")
    page = dropbox.changes(page.position)
    assert [(c.kind, c.path) for c in page.changes] == [
        ("deleted", "/in/a.csv"),
        ("added", "/in/b.csv"),
        ("added", "/in/c.csv"),
    ]
    dropbox.delete("/in/b.csv")
    page = dropbox.changes(page.position)
    assert [(c.kind, c.path, c.identity) for c in page.changes] == [
        ("deleted", "/in/b.csv", "deleted:/in/b.csv")
    ]
    assert page.changes[0].entry is None and not page.has_more


def test_dropbox_longpoll_answers_changes_and_backoff_without_a_token(
    dropbox: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    cursor = dropbox.latest_cursor("", recursive=True)
    quiet = dropbox.wait_for_changes(cursor, timeout=30)  # 0.3 s in the emulator
    assert quiet.changes is False and quiet.backoff is None
    fresh_emulator.client.configure(dropbox_longpoll_backoff=5)
    timer = threading.Timer(0.1, lambda: dropbox.write_bytes("/x.txt", b"x"))
    timer.start()
    answer = asyncio.run(dropbox.await_for_changes(cursor, timeout=480))
    timer.join()
    assert answer.changes is True and answer.backoff == 5
    routes = fresh_emulator.client.stats()["dropbox"]["routes"]
    assert routes["/2/files/list_folder/longpoll"] == {"200": 2}
    with pytest.raises(InvalidArgument, match="30 to 480"):
        dropbox.wait_for_changes(cursor, timeout=10)


def test_dropbox_too_old_cursor_is_a_reset(dropbox: DropboxHook, fresh_emulator: RunningEmulator) -> None:
    cursor = dropbox.latest_cursor("", recursive=True)
    fresh_emulator.client.configure(dropbox_cursor_max_age=0.2)
    time.sleep(0.3)
    with pytest.raises(CursorReset, match="latest_cursor"):
        dropbox.changes(cursor)
    with pytest.raises(CursorReset):
        asyncio.run(dropbox.achanges(cursor))
    with pytest.raises(CursorReset):
        dropbox.wait_for_changes(cursor)


def test_dropbox_listing_cursor_replays_then_follows(dropbox: DropboxHook) -> None:
    dropbox.write_bytes("/r/one.txt", b"1")
    page = dropbox.listing_cursor("/r")
    assert [(c.kind, c.path) for c in page.changes] == [("added", "/r/one.txt")]
    dropbox.write_bytes("/r/two.txt", b"2")
    assert [c.path for c in asyncio.run(dropbox.achanges(page.position)).changes] == ["/r/two.txt"]


def test_box_events_from_now_report_uploads_versions_moves_and_trash(box: BoxHook) -> None:
    start = box.events("now")
    assert start.changes == [] and start.position
    box.mkdir("/in")
    box.write_bytes("/in/a.csv", b"1")
    page = box.events(start.position)
    assert [(c.kind, c.path) for c in page.changes] == [("added", "/in"), ("added", "/in/a.csv")]
    assert page.has_more
    rest = box.events(page.position)
    assert rest.changes == [] and not rest.has_more and rest.position == page.position
    time.sleep(1.1)  # a new version is told apart by a later modified_at (whole seconds)
    box.write_bytes("/in/a.csv", b"22", overwrite=True)
    box.move("/in/a.csv", "/b.csv")
    box.delete("/b.csv")
    kinds = []
    position = page.position
    while True:
        page = asyncio.run(box.aevents(position, "all"))
        kinds += [(c.kind, c.path) for c in page.changes]
        if not page.has_more:
            break
        position = page.position
    assert kinds == [("modified", "/in/a.csv"), ("moved", "/b.csv"), ("deleted", "/b.csv")]
    identities = [c.identity for c in box.events("0").changes]
    assert len(identities) == len(set(identities)) == 5


def test_box_long_poll_says_new_change_or_reconnect(box: BoxHook, fresh_emulator: RunningEmulator) -> None:
    fresh_emulator.client.configure(box_realtime_retry_timeout=20)  # 0.2 s scaled
    position = box.events("now").position
    server = box.realtime_server()
    assert server.url.startswith("https://2.realtime.services.box.net/subscribe?")
    assert server.retry_timeout == 20 and server.max_retries == 10
    assert box.wait_for_events(position, server=server) is False  # reconnect
    timer = threading.Timer(0.05, lambda: box.write_bytes("/n.txt", b"n"))
    fresh_emulator.client.configure(box_realtime_retry_timeout=600)
    timer.start()
    assert asyncio.run(box.await_for_events(position)) is True
    timer.join()
    with pytest.raises(InvalidArgument, match="stream_type"):
        box.events("now", "admin_logs")  # type: ignore[arg-type]


def test_dropbox_async_twins_answer_like_the_sync_calls(dropbox: DropboxHook) -> None:
    dropbox.write_bytes("/tw/one.txt", b"1")

    async def scenario() -> tuple[list[str], list[str], bool]:
        cursor = await dropbox.alatest_cursor("/tw", recursive=True)
        listing = await dropbox.alisting_cursor("/tw")
        await asyncio.to_thread(dropbox.write_bytes, "/tw/two.txt", b"2")
        news = await dropbox.await_for_changes(cursor, timeout=30)
        page = await dropbox.achanges(cursor)
        return [c.path for c in listing.changes], [c.path for c in page.changes], news.changes

    listed, changed, news = asyncio.run(scenario())
    assert listed == ["/tw/one.txt"] and changed == ["/tw/two.txt"] and news is True
    sync_cursor = dropbox.latest_cursor("/tw", recursive=True)
    assert dropbox.changes(sync_cursor).changes == []


def test_box_async_twins_and_a_capped_wait(box: BoxHook, fresh_emulator: RunningEmulator) -> None:
    fresh_emulator.client.configure(longpoll_time_scale=1.0)  # a real 610 s poll: only the cap ends it

    async def scenario() -> tuple[str, bool, list[str]]:
        start = await box.aevents("now", "all")
        server = await box.arealtime_server()
        capped = await box.await_for_events(start.position, timeout=0.5, server=server)
        await asyncio.to_thread(box.write_bytes, "/tw.txt", b"t")
        page = await box.aevents(start.position, "changes")
        return server.url, capped, [c.path for c in page.changes]

    began = time.monotonic()
    url, capped, paths = asyncio.run(scenario())
    assert "/subscribe?" in url and capped is False and paths == ["/tw.txt"]
    position = box.events("now").position
    assert box.wait_for_events(position, timeout=0.5) is False
    assert time.monotonic() - began < 10
