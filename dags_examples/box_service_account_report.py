"""A Box JWT service account at work: no person ever authorizes it.

The connection (``auth_scheme`` ``jwt``, the Box app's config JSON in ``jwt_cert``) gets a new access token
from a signed assertion whenever the stored one runs out. The DAG writes a small daily report, uploads it,
waits (deferred) until Box lists it, and downloads it again to check the round trip.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task

from dropbox_box_provider.operators.box import BoxDownloadOperator, BoxUploadOperator
from dropbox_box_provider.sensors.box import BoxFileSensor

REPORT = "report-{{ dag_run.run_after | ds_nodash }}.csv"


@dag(
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        "box_conn_id": "box_jwt",
        "folder": "/reports",
        "work_dir": os.path.join(tempfile.gettempdir(), "box_service_account_report"),
    },
    tags=["box", "jwt"],
)
def box_service_account_report() -> None:
    @task
    def write_report(work_dir: str, name: str, run_id: str | None = None) -> str:
        path = Path(work_dir) / "out" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"run_id,rows\n{run_id},42\n", encoding="utf-8")
        return str(path)

    report = write_report("{{ params.work_dir }}", REPORT)
    upload = BoxUploadOperator(
        task_id="upload_report",
        conn_id="{{ params.box_conn_id }}",
        local_path=report,
        remote_path="{{ params.folder }}/",
        overwrite=True,
    )
    visible = BoxFileSensor(
        task_id="report_listed",
        conn_id="{{ params.box_conn_id }}",
        path="{{ params.folder }}/" + REPORT,
        deferrable=True,
        poke_interval=30,
        timeout=600,
    )
    download = BoxDownloadOperator(
        task_id="download_report",
        conn_id="{{ params.box_conn_id }}",
        remote_path="{{ params.folder }}/" + REPORT,
        local_path="{{ params.work_dir }}/in/" + REPORT,
    )

    @task
    def check_round_trip(sent: str, received: list[str]) -> None:
        if Path(sent).read_bytes() != Path(received[0]).read_bytes():
            raise ValueError(f"{received[0]} differs from the uploaded {sent}")

    upload >> visible >> download
    check_round_trip(report, download.output)


box_service_account_report()
