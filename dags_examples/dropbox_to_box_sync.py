"""Copy new files from a Dropbox folder to a Box folder, correct on any number of workers.

One task moves each file from Dropbox to Box (``DropboxToBoxOperator``): the file passes through a temporary
file of that task only, both checksums are verified (Dropbox content_hash, Box SHA-1), and nothing is left on
a worker's disk for another task to find. Only files modified since the last successful run started are
taken (all files on the first run); a file whose Box copy already has the same content is skipped, so a
second run over the same files moves nothing. A changed file becomes a new Box version.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from dropbox_box_provider.operators.remote_transfer import DropboxToBoxOperator


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
    },
    tags=["dropbox", "box"],
)
def dropbox_to_box_sync() -> None:
    DropboxToBoxOperator(
        task_id="copy_new_files",
        dropbox_conn_id="{{ params.dropbox_conn_id }}",
        dropbox_path="{{ params.dropbox_folder }}/{{ params.pattern }}",
        box_conn_id="{{ params.box_conn_id }}",
        box_folder="{{ params.box_folder }}",
        modified_after="{{ prev_start_date_success or '' }}",
        overwrite=True,
        allow_empty=True,  # an hour without new files is not an error
    )


dropbox_to_box_sync()
