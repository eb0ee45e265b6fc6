"""Archive the monthly reports: copy every CSV of Dropbox's /reports to Box's /archive, write the list of
archived files back to Dropbox with ObjectStoragePath, then mark the archive done with BoxHook."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import ObjectStoragePath, dag, task

from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.operators.remote_transfer import DropboxToBoxOperator


@dag(schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False, tags=["reports"])
def archive_reports() -> None:
    copy = DropboxToBoxOperator(
        task_id="copy_reports",
        dropbox_path="/reports/*.csv",
        box_folder="/archive",
        overwrite=True,
    )

    @task
    def write_index() -> str:
        archive = ObjectStoragePath("box://box_default@/archive")
        names = sorted(path.name for path in archive.glob("*.csv"))
        index = ObjectStoragePath("dropbox://dropbox_default@/reports/archived.txt")
        index.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        return str(index)

    @task
    def mark_done() -> None:
        BoxHook().write_bytes("/archive/_SUCCESS", b"done\n", overwrite=True)

    copy >> write_index() >> mark_done()


archive_reports_dag = archive_reports()
