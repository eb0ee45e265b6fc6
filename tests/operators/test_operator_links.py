"""The file operators' "Open in Dropbox" / "Open in Box" links, and several files moved at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.operators.box import BoxDownloadOperator, BoxUploadOperator
from dropbox_box_provider.operators.dropbox import DropboxDownloadOperator, DropboxUploadOperator
from dropbox_box_provider.operators.links import BoxFileLink, DropboxFileLink, box_web_url, dropbox_web_url
from dropbox_box_provider.testing import EmulatedServices
from tests.operators.conftest import (
    Connections,
    box_connection,
    box_tokens,
    dropbox_connection,
    dropbox_tokens,
)

pytestmark = pytest.mark.timeout(60)


def link(operator: Any) -> str:
    [extra_link] = operator.operator_extra_links
    return str(extra_link.get_link(operator, ti_key=None))


def test_web_urls() -> None:
    assert dropbox_web_url([{"path_display": "/Team reports/q3.csv"}]) == (
        "https://www.dropbox.com/home/Team%20reports?preview=q3.csv"
    )
    assert dropbox_web_url([{"path_display": "/a.csv"}, {"path_display": "/b.csv"}]) == (
        "https://www.dropbox.com/home"
    )
    assert box_web_url([{"id": "7", "parent": {"id": "3"}}]) == "https://app.box.com/file/7"
    assert box_web_url([{"id": "7", "parent": {"id": "3"}}, {"id": "8"}]) == "https://app.box.com/folder/3"
    assert dropbox_web_url([]) == box_web_url([]) == ""


def test_links_name_the_service_and_are_empty_before_the_task_ran() -> None:
    up = DropboxUploadOperator(task_id="u", local_path="/x", remote_path="/in/")
    down = BoxDownloadOperator(task_id="d", local_path="/x", remote_path="/in/a.csv")
    assert [type(x) for x in up.operator_extra_links] == [DropboxFileLink]
    assert [type(x) for x in down.operator_extra_links] == [BoxFileLink]
    assert up.operator_extra_links[0].name == "Open in Dropbox"
    assert down.operator_extra_links[0].name == "Open in Box"
    assert link(up) == link(down) == ""


def test_globs_move_concurrently_and_link_to_what_moved(
    emulated_services: EmulatedServices, connections: Connections, tmp_path: Path
) -> None:
    source = tmp_path / "out"
    source.mkdir()
    for i in range(6):
        (source / f"f{i}.csv").write_text(f"id\n{i}\n")
    dbx = connections.add(
        "dbx_links", dropbox_connection(emulated_services, dropbox_tokens(emulated_services).refresh_token)
    )
    box = connections.add(
        "box_links", box_connection(emulated_services, box_tokens(emulated_services).refresh_token)
    )

    up = DropboxUploadOperator(
        task_id="u",
        conn_id=dbx,
        local_path=f"{source}/*.csv",
        remote_path="/Q3 reports/",
        max_active_transfers=3,
    )
    uploaded = up.execute({})
    assert [u["name"] for u in uploaded] == [f"f{i}.csv" for i in range(6)]  # in order, though concurrent
    assert link(up) == "https://www.dropbox.com/home/Q3%20reports"
    one = DropboxDownloadOperator(
        task_id="d", conn_id=dbx, remote_path="/Q3 reports/f1.csv", local_path=str(tmp_path / "f1")
    )
    one.execute({})
    assert link(one) == "https://www.dropbox.com/home/Q3%20reports?preview=f1.csv"

    box_up = BoxUploadOperator(task_id="bu", conn_id=box, local_path=f"{source}/*.csv", remote_path="/in/")
    entries = box_up.execute({})
    assert len(entries) == 6
    assert link(box_up).startswith("https://app.box.com/folder/")
    target = tmp_path / "back"
    box_down = BoxDownloadOperator(
        task_id="bd",
        conn_id=box,
        remote_path="/in/f*.csv",
        local_path=str(target),
        max_active_transfers=4,
    )
    assert len(box_down.execute({})) == 6
    assert sorted(p.read_text() for p in target.iterdir()) == [f"id\n{i}\n" for i in range(6)]
    single = BoxDownloadOperator(
        task_id="bs", conn_id=box, remote_path=entries[2]["id"], local_path=str(tmp_path / "x")
    )
    single.execute({})
    assert link(single) == f"https://app.box.com/file/{entries[2]['id']}"
