"""Copy new files from a Dropbox folder to a Box folder.

Files modified since the last successful run started (all files on the first run) are downloaded to a
staging folder, uploaded to Box (a changed file becomes a new Box version), and the staging folder is
removed. Both hooks verify checksums (Dropbox content_hash, Box SHA-1) on every transfer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime

from airflow.sdk import dag, task

from dropbox_box_provider.operators.box import BoxUploadOperator
from dropbox_box_provider.operators.dropbox import DropboxDownloadOperator

STAGING = "{{ params.staging_dir }}/{{ run_id | replace(':', '_') | replace('+', '_') }}"


@dag(
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "dropbox_conn_id": "dropbox_default",
        "dropbox_folder": "/inbox",
        "pattern": "*",
        "box_conn_id": "box_default",
        "box_folder": "/from-dropbox",
        "staging_dir": os.path.join(tempfile.gettempdir(), "dropbox_to_box"),
    },
    tags=["dropbox", "box"],
)
def dropbox_to_box_sync() -> None:
    download = DropboxDownloadOperator(
        task_id="download_new_files",
        conn_id="{{ params.dropbox_conn_id }}",
        remote_path="{{ params.dropbox_folder }}/{{ params.pattern }}",
        local_path=STAGING + "/",
        modified_after="{{ prev_start_date_success or '' }}",
    )
    upload = BoxUploadOperator(
        task_id="upload_to_box",
        conn_id="{{ params.box_conn_id }}",
        local_path=STAGING + "/*",
        remote_path="{{ params.box_folder }}/",
        overwrite=True,
    )

    @task(trigger_rule="all_done")
    def remove_staging(path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    download >> upload >> remove_staging(STAGING)


dropbox_to_box_sync()
