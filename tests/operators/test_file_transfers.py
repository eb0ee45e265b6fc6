"""Dropbox and Box upload/download operators, file sensors and RemoteFileTrigger against the emulator:
glob patterns, overwrite flags, "modified after" filters, and a trigger that fires when a file appears."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.serde import deserialize, serialize

from dropbox_box_provider.errors import (
    InvalidArgument,
    InvalidRemotePath,
    ItemExists,
    ItemNotFound,
    UnsafePath,
)
from dropbox_box_provider.hooks.matching import aware_time as parse_time
from dropbox_box_provider.hooks.matching import split_remote_pattern
from dropbox_box_provider.operators.box import BoxDownloadOperator, BoxUploadOperator
from dropbox_box_provider.operators.dropbox import DropboxDownloadOperator, DropboxUploadOperator
from dropbox_box_provider.sensors.box import BoxFileSensor
from dropbox_box_provider.sensors.dropbox import DropboxFileSensor
from dropbox_box_provider.testing import EmulatedServices
from dropbox_box_provider.triggers.files import RemoteFileTrigger
from tests.operators.conftest import (
    Connections,
    box_jwt_connection,
    dropbox_connection,
    dropbox_tokens,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def local_files(tmp_path: Path) -> Path:
    source = tmp_path / "out"
    source.mkdir()
    (source / "a.csv").write_text("id\n1\n")
    (source / "b.csv").write_text("id\n2\n")
    (source / "notes.txt").write_text("skip me")
    return source


def run(operator: Any) -> Any:
    return operator.execute({})


def test_remote_patterns_and_times() -> None:
    assert split_remote_pattern("/in/*.csv") == ("/in", "*.csv")
    assert split_remote_pattern("/*.csv") == ("/", "*.csv")
    assert split_remote_pattern("/in/a.csv") == ("/in/a.csv", None)
    with pytest.raises(InvalidRemotePath, match="last segment"):
        split_remote_pattern("/in*/a.csv")
    assert parse_time("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_time("") is None and parse_time(None) is None
    with pytest.raises(InvalidArgument, match="ISO-8601"):  # a bad time is a bad argument, not a bad path
        parse_time("yesterday")


def test_dropbox_upload_glob_overwrite_and_download(
    dropbox_conn: str, local_files: Path, tmp_path: Path
) -> None:
    uploaded = run(
        DropboxUploadOperator(
            task_id="up", conn_id=dropbox_conn, local_path=f"{local_files}/*.csv", remote_path="/inbox"
        )
    )
    assert [u["path_display"] for u in uploaded] == ["/inbox/a.csv", "/inbox/b.csv"]
    json.dumps(uploaded)  # XCom-able
    (local_files / "a.csv").write_text("id\n11\n")  # same name, new content: Dropbox "add" conflicts
    single = DropboxUploadOperator(
        task_id="one", conn_id=dropbox_conn, local_path=str(local_files / "a.csv"), remote_path="/inbox/a.csv"
    )
    with pytest.raises(ItemExists, match="overwrite=True"):
        run(single)
    single.overwrite = True
    assert run(single)[0]["size"] == 6

    target = tmp_path / "in"
    got = run(
        DropboxDownloadOperator(
            task_id="down", conn_id=dropbox_conn, remote_path="/inbox/*.CSV", local_path=str(target)
        )
    )
    assert sorted(Path(p).name for p in got) == ["a.csv", "b.csv"]
    assert (target / "a.csv").read_text() == "id\n11\n"

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    newer = DropboxDownloadOperator(
        task_id="newer",
        conn_id=dropbox_conn,
        remote_path="/inbox/*",
        local_path=str(target),
        modified_after=future,
    )
    with pytest.raises(InvalidArgument, match="allow_empty=True"):
        run(newer)
    newer.allow_empty = True
    assert run(newer) == []
    (target / "a.csv").write_text("local edit")
    keep = DropboxDownloadOperator(
        task_id="keep",
        conn_id=dropbox_conn,
        remote_path="/inbox/a.csv",
        local_path=str(target / "a.csv"),
        overwrite=False,
    )
    assert run(keep) == [] and (target / "a.csv").read_text() == "local edit"


def test_an_upload_matching_no_local_file_fails_unless_allowed(
    dropbox_conn: str, box_conn: str, tmp_path: Path
) -> None:
    """The multi-worker trap: files written by another task on another machine are not here."""
    for operator, conn in ((DropboxUploadOperator, dropbox_conn), (BoxUploadOperator, box_conn)):
        upload = operator(task_id="up", conn_id=conn, local_path=f"{tmp_path}/staging/*", remote_path="/to/")
        with pytest.raises(InvalidArgument, match=r"no local file matches .*allow_empty=True"):
            run(upload)
        upload.allow_empty = True
        assert run(upload) == []


def test_a_missing_single_file_fails_and_an_empty_glob_only_when_allowed(
    dropbox_conn: str, box_conn: str, tmp_path: Path
) -> None:
    target = tmp_path / "downloads"
    for operator, conn in ((DropboxDownloadOperator, dropbox_conn), (BoxDownloadOperator, box_conn)):
        with pytest.raises(ItemNotFound):
            run(operator(task_id="gone", conn_id=conn, remote_path="/nowhere/x.csv", local_path=str(target)))
        empty = operator(task_id="none", conn_id=conn, remote_path="/nowhere/*.csv", local_path=str(target))
        with pytest.raises(InvalidArgument, match=r"no .* file matches '/nowhere/\*.csv'"):
            run(empty)
        empty.allow_empty = True
        assert run(empty) == []
    assert not target.exists() or list(target.iterdir()) == []


def test_box_upload_glob_overwrite_and_download(box_conn: str, local_files: Path, tmp_path: Path) -> None:
    uploaded = run(
        BoxUploadOperator(
            task_id="up", conn_id=box_conn, local_path=f"{local_files}/*.csv", remote_path="/reports"
        )
    )
    assert [u["name"] for u in uploaded] == ["a.csv", "b.csv"] and all(u["sha1"] for u in uploaded)
    again = BoxUploadOperator(
        task_id="again", conn_id=box_conn, local_path=f"{local_files}/a.csv", remote_path="/reports/"
    )
    assert run(again)[0]["id"] == uploaded[0]["id"]  # the same bytes again: already there, no conflict
    (local_files / "a.csv").write_text("id\n9\n")
    with pytest.raises(ItemExists):
        run(again)
    again.overwrite = True
    assert run(again)[0]["id"] == uploaded[0]["id"]  # a new version of the same file

    target = tmp_path / "in"
    got = run(
        BoxDownloadOperator(
            task_id="down", conn_id=box_conn, remote_path="/reports/*.csv", local_path=str(target)
        )
    )
    assert sorted(Path(p).name for p in got) == ["a.csv", "b.csv"]
    assert (target / "a.csv").read_text() == "id\n9\n"  # the new version
    by_id = run(
        BoxDownloadOperator(
            task_id="id", conn_id=box_conn, remote_path=uploaded[1]["id"], local_path=str(tmp_path / "b.csv")
        )
    )
    assert Path(by_id[0]).read_text() == "id\n2\n"

    past = datetime.now(UTC) - timedelta(hours=1)
    assert (
        len(
            run(
                BoxDownloadOperator(
                    task_id="p",
                    conn_id=box_conn,
                    remote_path="/reports/*",
                    local_path=str(target),
                    modified_after=past,
                )
            )
        )
        == 2
    )
    future = past + timedelta(hours=2)
    assert (
        run(
            BoxDownloadOperator(
                task_id="f",
                conn_id=box_conn,
                remote_path="/reports/*",
                local_path=str(target),
                modified_after=future,
                allow_empty=True,
            )
        )
        == []
    )


def test_file_sensors_poke(dropbox_conn: str, box_conn: str, local_files: Path) -> None:
    dbx = DropboxFileSensor(task_id="d", conn_id=dropbox_conn, path="/inbox/*.csv", deferrable=False)
    box = BoxFileSensor(task_id="b", conn_id=box_conn, path="/reports/a.csv", deferrable=False)
    assert not dbx.poke({}).is_done and not box.poke({}).is_done  # missing folders count as "not yet"
    run(
        DropboxUploadOperator(
            task_id="u1", conn_id=dropbox_conn, local_path=str(local_files / "a.csv"), remote_path="/inbox/"
        )
    )
    run(
        BoxUploadOperator(
            task_id="u2", conn_id=box_conn, local_path=str(local_files / "a.csv"), remote_path="/reports/"
        )
    )
    assert dbx.poke({}).xcom_value == ["/inbox/a.csv"]
    assert box.poke({}).xcom_value == ["a.csv"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert (
        not BoxFileSensor(
            task_id="b2", conn_id=box_conn, path="/reports/a.csv", modified_after=future, deferrable=False
        )
        .poke({})
        .is_done
    )


def test_file_trigger_serializes_round_trip() -> None:
    trigger = RemoteFileTrigger(
        "box", "box_files", "/reports/*.csv", modified_after="2024-05-01T12:00:00Z", poll_interval=5
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "dropbox_box_provider.triggers.files.RemoteFileTrigger"
    restored = deserialize(serialize(kwargs))
    assert restored == kwargs and RemoteFileTrigger(**restored).serialize() == (classpath, kwargs)
    assert kwargs["modified_after"] == "2024-05-01T12:00:00+00:00"


@pytest.mark.parametrize("service", ["dropbox", "box"])
def test_file_trigger_fires_when_the_file_appears(
    service: str, emulated_services: EmulatedServices, connections: Connections, local_files: Path
) -> None:
    if service == "dropbox":
        conn_id = connections.add(
            "dbx_t", dropbox_connection(emulated_services, dropbox_tokens(emulated_services).refresh_token)
        )
        upload: Any = DropboxUploadOperator(
            task_id="u", conn_id=conn_id, local_path=str(local_files / "b.csv"), remote_path="/drop/"
        )
    else:
        conn_id = connections.add("box_t", box_jwt_connection(emulated_services))
        upload = BoxUploadOperator(
            task_id="u", conn_id=conn_id, local_path=str(local_files / "b.csv"), remote_path="/drop/"
        )
    started = datetime.now(UTC) - timedelta(seconds=2)
    trigger = RemoteFileTrigger(
        "dropbox" if service == "dropbox" else "box",
        conn_id,
        "/drop/*.csv",
        modified_after=started.isoformat(),
        poll_interval=0.2,
    )

    async def scenario() -> dict[str, Any]:
        async def producer() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(upload.execute, {})

        task = asyncio.create_task(producer())
        async for event in trigger.run():
            await task
            return dict(event.payload)
        raise AssertionError("no event")

    payload = asyncio.run(scenario())
    assert payload["status"] == "success"
    assert [Path(f).name for f in payload["files"]] == ["b.csv"]


def test_a_remote_name_that_would_escape_the_local_folder_is_refused_before_anything_is_written(
    dropbox_conn: str, tmp_path: Path
) -> None:
    """Dropbox allows a backslash in a name; on a download into a folder ``..\\evil`` must not land outside
    it (Windows reads it as a parent step), and nothing of the listing is written once one name is unsafe."""
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    hook = DropboxHook(dropbox_conn)
    hook.write_bytes("/hostile/a.txt", b"fine")
    hook.write_bytes("/hostile/..\\evil.txt", b"escape")
    assert sorted(e.name for e in hook.list("/hostile")) == ["..\\evil.txt", "a.txt"]
    target = tmp_path / "in"
    with pytest.raises(UnsafePath, match="rename the remote file"):
        run(
            DropboxDownloadOperator(
                task_id="down", conn_id=dropbox_conn, remote_path="/hostile/*", local_path=str(target)
            )
        )
    assert not target.exists() or list(target.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()
