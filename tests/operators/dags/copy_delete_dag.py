"""Test DAG ``box_copy_delete`` on the Box connection ``OPERATORS_TEST_CONN_ID``: a task writes two files
under ``/Incoming/{{ ds }}``, ``BoxCopyOperator`` copies them (templated glob) into ``/Published/{{ ds }}/``,
``BoxDeleteOperator`` removes the incoming folder, and a last task checks both operators' XComs and the
files; it prints ``COPY_DELETE_OK`` when all holds."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from dropbox_box_provider.operators.box import BoxCopyOperator, BoxDeleteOperator

CONN_ID = os.environ.get("OPERATORS_TEST_CONN_ID", "box_default")

with DAG(dag_id="box_copy_delete", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

    @task
    def make_inputs(ds: str | None = None) -> None:
        from dropbox_box_provider.hooks.box import BoxHook

        hook = BoxHook(CONN_ID)
        hook.write_bytes(f"/Incoming/{ds}/ä.csv", b"a")
        hook.write_bytes(f"/Incoming/{ds}/b.csv", b"b")

    copy = BoxCopyOperator(
        task_id="copy",
        conn_id=CONN_ID,
        source_path="/Incoming/{{ ds }}/*.csv",
        destination_path="/Published/{{ ds }}/",
    )
    delete = BoxDeleteOperator(
        task_id="delete", conn_id=CONN_ID, remote_path="/Incoming/{{ ds }}", recursive=True
    )

    @task
    def check(copied: list[dict[str, Any]], deleted: list[dict[str, Any]], ds: str | None = None) -> None:
        from dropbox_box_provider.hooks.box import BoxHook

        hook = BoxHook(CONN_ID)
        published = sorted(e.name for e in hook.list(f"/Published/{ds}"))
        assert published == ["b.csv", "ä.csv"], published
        assert not hook.exists(f"/Incoming/{ds}")
        assert sorted(c["path"] for c in copied) == [f"/Published/{ds}/b.csv", f"/Published/{ds}/ä.csv"]
        assert [d["path"] for d in deleted] == [f"/Incoming/{ds}"], deleted
        print("COPY_DELETE_OK", json.dumps(copied, ensure_ascii=True))

    make_inputs() >> copy >> delete
    check(copy.output, delete.output)
