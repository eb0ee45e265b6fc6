"""Test DAGs: an upload whose local glob (``OPERATORS_TEST_LOCAL_GLOB``) matches nothing, to the Dropbox
connection ``OPERATORS_TEST_CONN_ID``: ``upload_no_match`` must fail, ``upload_no_match_allowed``
(``allow_empty=True``) must succeed."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from dropbox_box_provider.operators.dropbox import DropboxUploadOperator

CONN_ID = os.environ.get("OPERATORS_TEST_CONN_ID", "dropbox_default")
LOCAL_GLOB = os.environ.get("OPERATORS_TEST_LOCAL_GLOB", "/nonexistent/*.csv")

for dag_id, allow_empty in (("upload_no_match", False), ("upload_no_match_allowed", True)):
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
        DropboxUploadOperator(
            task_id="upload",
            conn_id=CONN_ID,
            local_path=LOCAL_GLOB,
            remote_path="/uploads/",
            allow_empty=allow_empty,
        )
