"""``ObjectStoragePath`` with TaskFlow: count the rows of every CSV in a Dropbox folder, one mapped task per
file (each streams its file straight from Dropbox), and write the summary to Box.

Paths are ``dropbox://CONN_ID@/folder`` and ``box://CONN_ID@/folder``; the connections' tokens come from the
provider's token store, so any worker can run any task and nothing is kept on local disk.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import ObjectStoragePath, dag, task


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={
        "dropbox_conn_id": "dropbox_default",
        "dropbox_folder": "/inbox",
        "box_conn_id": "box_default",
        "box_folder": "/summaries",
    },
    tags=["dropbox", "box", "object-storage"],
)
def object_storage_csv_summary() -> None:
    @task
    def list_csvs(conn_id: str, folder: str) -> list[str]:
        inbox = ObjectStoragePath(f"dropbox://{conn_id}@/{folder.strip('/')}")
        return sorted(str(path) for path in inbox.glob("*.csv"))

    @task
    def count_rows(uri: str) -> dict[str, int | str]:
        with ObjectStoragePath(uri).open("r", encoding="utf-8") as handle:
            return {"file": uri, "rows": sum(1 for line in handle if line.strip())}

    @task
    def write_summary(counts: list[dict[str, int | str]], conn_id: str, folder: str) -> str:
        target = ObjectStoragePath(f"box://{conn_id}@/{folder.strip('/')}/summary.csv")
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = ["file,rows", *(f"{c['file']},{c['rows']}" for c in counts)]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(target)

    counts = count_rows.expand(uri=list_csvs("{{ params.dropbox_conn_id }}", "{{ params.dropbox_folder }}"))
    write_summary(counts, "{{ params.box_conn_id }}", "{{ params.box_folder }}")


object_storage_csv_summary()
