"""The official Dropbox SDK's batch commit calls (finish_batch_v2, finish_batch + check) against the emulator,
and the emulator's per-request latency and write-contention settings."""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import dropbox_tokens
from tests.emulator.test_sdk_conformance import EmulatorSession
from tests.fixtures.emulator import RunningEmulator

dropbox = pytest.importorskip("dropbox")


def _client(emulator: RunningEmulator) -> Any:
    tokens = dropbox_tokens(emulator.url, emulator.client)
    return dropbox.Dropbox(
        oauth2_refresh_token=tokens["refresh_token"],
        app_key=seed.DEMO_DROPBOX_CLIENT_ID,
        app_secret=seed.DEMO_DROPBOX_CLIENT_SECRET,
        session=EmulatorSession(emulator.url),
    )


def _entry(client: Any, data: bytes, path: str, *, close: bool = True, offset: int | None = None) -> Any:
    started = client.files_upload_session_start(data, close=close)
    cursor = dropbox.files.UploadSessionCursor(
        session_id=started.session_id, offset=len(data) if offset is None else offset
    )
    return dropbox.files.UploadSessionFinishArg(cursor=cursor, commit=dropbox.files.CommitInfo(path=path))


def test_finish_batch_v2_commits_closed_sessions_and_reports_each_failure(
    fresh_emulator: RunningEmulator,
) -> None:
    client = _client(fresh_emulator)
    one, two = os.urandom(70_000), b""
    entries = [
        _entry(client, one, "/Batch/one.bin"),
        _entry(client, two, "/Batch/empty.bin"),
        _entry(client, b"open", "/Batch/open.bin", close=False),
        _entry(client, b"offset", "/Batch/offset.bin", offset=2),
    ]
    result = client.files_upload_session_finish_batch_v2(entries)
    assert [e.is_success() for e in result.entries] == [True, True, False, False]
    first = result.entries[0].get_success()
    assert (first.path_display, first.size, first.content_hash) == (
        "/Batch/one.bin",
        len(one),
        dropbox_content_hash(one),
    )
    assert result.entries[1].get_success().size == 0
    not_closed = result.entries[2].get_failure()
    assert not_closed.is_lookup_failed() and not_closed.get_lookup_failed().is_not_closed()
    wrong = result.entries[3].get_failure().get_lookup_failed()
    assert wrong.is_incorrect_offset() and wrong.get_incorrect_offset().correct_offset == len(b"offset")
    _, response = client.files_download("/batch/ONE.bin")
    assert response.content == one

    # The same batch again: its committed sessions are used up (what a client sees after a lost answer).
    again = client.files_upload_session_finish_batch_v2(entries[:1])
    gone = again.entries[0].get_failure()
    assert gone.is_lookup_failed() and gone.get_lookup_failed().is_not_found()


def test_finish_batch_v2_conflicts_and_the_deprecated_async_batch(fresh_emulator: RunningEmulator) -> None:
    client = _client(fresh_emulator)
    client.files_upload(b"old", "/Batch/taken.bin")
    result = client.files_upload_session_finish_batch_v2(
        [_entry(client, b"new", "/Batch/taken.bin"), _entry(client, b"old", "/Batch/taken.bin")]
    )
    failure = result.entries[0].get_failure()
    assert failure.is_path() and failure.get_path().is_conflict()
    assert result.entries[1].is_success()  # mode add with identical content is no conflict

    with pytest.warns(DeprecationWarning):
        launch = client.files_upload_session_finish_batch([_entry(client, b"v1", "/Batch/v1.bin")])
    assert launch.is_async_job_id()
    status = client.files_upload_session_finish_batch_check(launch.get_async_job_id())
    assert status.is_complete()
    assert status.get_complete().entries[0].get_success().path_display == "/Batch/v1.bin"


def test_batch_over_1000_entries_is_refused_as_bad_input(fresh_emulator: RunningEmulator) -> None:
    """The SDK checks the 1,000 limit itself; a raw client gets Dropbox's plain-text 400."""
    token = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    entry = {"cursor": {"session_id": "x", "offset": 0}, "commit": {"path": "/a"}}
    answered = httpx.post(
        f"{fresh_emulator.url}/api.dropboxapi.com/2/files/upload_session/finish_batch_v2",
        json={"entries": [entry] * 1001},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answered.status_code == 400 and "more than 1000" in answered.text


def test_write_contention_refuses_concurrent_writes_but_not_a_batch(fresh_emulator: RunningEmulator) -> None:
    """``dropbox_write_concurrency`` (PROTOCOL: concurrent writers get too_many_write_operations): a second
    write while one is running is refused; a batch is one write."""
    fresh_emulator.client.configure(latency_ms=300, dropbox_write_concurrency=1)
    client = _client(fresh_emulator)
    token = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    fresh_emulator.client.clear_stats()

    def upload(index: int) -> httpx.Response:
        return httpx.post(
            f"{fresh_emulator.url}/content.dropboxapi.com/2/files/upload",
            content=b"x%d" % index,
            headers={
                "Authorization": f"Bearer {token}",
                "Dropbox-API-Arg": json.dumps({"path": f"/W/{index}.txt"}),
                "Content-Type": "application/octet-stream",
            },
            timeout=30,
        )

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(upload, range(3)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["error"] == {
            ".tag": "path",
            "reason": {".tag": "too_many_write_operations"},
            "upload_session_id": "",
        }
    assert fresh_emulator.client.stats()["dropbox"]["max_in_flight"] == 3
    batch = client.files_upload_session_finish_batch_v2(
        [_entry(client, b"%d" % i, f"/W/batch-{i}.txt") for i in range(5)]
    )
    assert all(e.is_success() for e in batch.entries)


def test_latency_setting_delays_every_api_request(fresh_emulator: RunningEmulator) -> None:
    fresh_emulator.client.configure(latency_ms=1000)
    url = f"{fresh_emulator.url}/api.dropboxapi.com/2/users/get_current_account"
    started = time.monotonic()
    answered = httpx.post(url, timeout=10)  # no token: the 400 comes after the latency all the same
    assert answered.status_code == 400
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    fresh_emulator.client.stats()  # the control plane is not delayed
    assert time.monotonic() - started < 1.0


def test_latency_from_the_command_line_survives_a_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dropbox_box_provider.emulator.client import EmulatorClient
    from tests.fixtures.emulator import start_emulator_process, stop_process

    monkeypatch.setenv("DBX_EMULATOR_LATENCY_MS", "12")  # the flag wins over the environment
    process, url = start_emulator_process(tmp_path, ["--latency-ms", "25"])
    try:
        with EmulatorClient(url) as client:
            assert client.configure()["latency_ms"] == 25.0
            client.configure(latency_ms=0)
            client.reset()
            assert client.configure()["latency_ms"] == 25.0
    finally:
        stop_process(process)
    process, url = start_emulator_process(tmp_path)  # no flag: the environment's value
    try:
        with EmulatorClient(url) as client:
            assert client.configure()["latency_ms"] == 12.0
    finally:
        stop_process(process)
