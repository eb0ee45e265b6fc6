"""The official SDKs read the emulator's change feeds: Dropbox cursors, ``reset`` and the notify host's
longpoll; Box events from ``now``, stream types, and ``OPTIONS /events`` (the real-time server)."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from tests.emulator.test_sdk_conformance import _box_oauth_client, _dropbox_sdk

dropbox = pytest.importorskip("dropbox")
box_sdk_gen = pytest.importorskip("box_sdk_gen")


def test_dropbox_sdk_cursor_continue_longpoll_and_reset(fresh_emulator: Any) -> None:
    fresh_emulator.client.configure(longpoll_time_scale=0.01, dropbox_longpoll_backoff=3)
    client = _dropbox_sdk(fresh_emulator)
    client.files_create_folder_v2("/feed")
    cursor = client.files_list_folder_get_latest_cursor("/feed", recursive=True).cursor
    quiet = client.files_list_folder_longpoll(cursor, timeout=30)
    assert quiet.changes is False and quiet.backoff == 3
    client.files_upload(b"a", "/feed/a.txt")
    assert client.files_list_folder_longpoll(cursor, timeout=30).changes is True
    page = client.files_list_folder_continue(cursor)
    assert [(type(e).__name__, e.path_display) for e in page.entries] == [("FileMetadata", "/feed/a.txt")]
    client.files_delete_v2("/feed/a.txt")
    page = client.files_list_folder_continue(page.cursor)
    assert [(type(e).__name__, e.path_lower) for e in page.entries] == [("DeletedMetadata", "/feed/a.txt")]
    assert fresh_emulator.client.stats()["dropbox"]["routes"]["/2/files/list_folder/longpoll"] == {"200": 2}
    fresh_emulator.client.configure(dropbox_cursor_max_age=0.1)
    time.sleep(0.2)
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.files_list_folder_continue(page.cursor)
    assert caught.value.error.is_reset()
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.files_list_folder_longpoll(page.cursor, timeout=30)
    assert caught.value.error.is_reset()


def test_box_sdk_events_and_realtime_server(fresh_emulator: Any) -> None:
    from box_sdk_gen import UploadFileAttributes, UploadFileAttributesParentField
    from box_sdk_gen.managers.events import GetEventsStreamType

    client = _box_oauth_client(fresh_emulator)
    now = client.events.get_events(stream_position="now", stream_type=GetEventsStreamType.CHANGES)
    assert now.entries == [] and now.next_stream_position
    client.uploads.upload_file(
        UploadFileAttributes(name="e.txt", parent=UploadFileAttributesParentField(id="0")), io.BytesIO(b"e")
    )
    for stream_type in (GetEventsStreamType.ALL, GetEventsStreamType.CHANGES):
        events = client.events.get_events(
            stream_position=str(now.next_stream_position), stream_type=stream_type
        )
        assert [(e.event_type.value, e.source.name) for e in events.entries] == [("ITEM_UPLOAD", "e.txt")]
        assert int(events.next_stream_position) > int(now.next_stream_position)
    servers = client.events.get_events_with_long_polling()
    server = servers.entries[0]
    assert server.type == "realtime_server" and "/subscribe?channel=" in server.url
    assert int(server.retry_timeout) == 610 and int(server.max_retries) == 10


def test_box_sdk_event_stream_long_polls_the_realtime_server(fresh_emulator: Any) -> None:
    """box-sdk-gen's EventStream: events from ``now``, OPTIONS, the real-time long-poll, the new event."""
    import threading

    from box_sdk_gen import UploadFileAttributes, UploadFileAttributesParentField

    fresh_emulator.client.configure(longpoll_time_scale=0.01, box_realtime_retry_timeout=100)  # 1 s polls
    client = _box_oauth_client(fresh_emulator)
    stream = client.events.get_event_stream()
    seen: list[Any] = []

    def consume() -> None:
        for event in stream:
            seen.append(event)
            stream.stop()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while (
        not fresh_emulator.client.stats()["box"]["routes"].get("/subscribe") and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    client.uploads.upload_file(
        UploadFileAttributes(name="s.txt", parent=UploadFileAttributesParentField(id="0")), io.BytesIO(b"s")
    )
    thread.join(timeout=30)
    assert [(e.event_type.value, e.source.name) for e in seen] == [("ITEM_UPLOAD", "s.txt")]
    routes = fresh_emulator.client.stats()["box"]["routes"]
    assert routes["/subscribe"].get("200", 0) >= 1
