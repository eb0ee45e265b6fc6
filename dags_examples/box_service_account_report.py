"""A Box JWT service account at work: no person ever authorizes it.

The connection (``auth_scheme`` ``jwt``, the Box app's config JSON in ``jwt_cert``) gets a new access token
from a signed assertion whenever the stored one runs out. The DAG writes a small daily report straight to
``box://`` (an ``ObjectStoragePath``: no local file, so any worker can run any task), waits (deferred) until
Box lists it, and reads it back to check the round trip.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import ObjectStoragePath, dag, task

from dropbox_box_provider.sensors.box import BoxFileSensor

REPORT = "report-{{ dag_run.run_after | ds_nodash }}.csv"


def report_path(conn_id: str, folder: str, name: str) -> ObjectStoragePath:
    """``box://CONN_ID@/folder/name``."""
    return ObjectStoragePath(f"box://{conn_id}@/{folder.strip('/')}/{name}")


@dag(
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"box_conn_id": "box_jwt", "folder": "/reports"},
    tags=["box", "jwt"],
)
def box_service_account_report() -> None:
    @task
    def write_report(conn_id: str, folder: str, name: str, run_id: str | None = None) -> str:
        path = report_path(conn_id, folder, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"run_id,rows\n{run_id},42\n", encoding="utf-8")
        return f"run_id,rows\n{run_id},42\n"

    sent = write_report("{{ params.box_conn_id }}", "{{ params.folder }}", REPORT)
    visible = BoxFileSensor(
        task_id="report_listed",
        conn_id="{{ params.box_conn_id }}",
        path="{{ params.folder }}/" + REPORT,
        deferrable=True,
        poke_interval=30,
        timeout=600,
    )

    @task
    def check_round_trip(conn_id: str, folder: str, name: str, expected: str) -> str:
        received = report_path(conn_id, folder, name).read_text(encoding="utf-8")
        if received != expected:
            raise ValueError(f"box://{folder}/{name} holds {received!r}, not the report written")
        return received

    checked = check_round_trip("{{ params.box_conn_id }}", "{{ params.folder }}", REPORT, sent)
    sent >> visible >> checked


box_service_account_report()
