"""Event-driven DAGs (Airflow 3.3+): a run starts when a CSV lands in a Dropbox folder, or in a Box folder.

No sensor polls: each asset has an ``AssetWatcher`` whose trigger long-polls the service's change feed in the
triggerer (Dropbox ``list_folder/longpoll``, Box's real-time server). The feed position is kept in the
asset's state store and moves only after the asset event was stored, so no upload is missed across
triggerer restarts; an upload may be reported twice after a crash (at least once), so the task is written
to be safe to repeat. The task reads the new file through ``ObjectStoragePath`` (no local copy).

Set the three names below; the connections are ordinary Dropbox and Box connections.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, ObjectStoragePath, task

from dropbox_box_provider.triggers.box_events import BoxEventTrigger
from dropbox_box_provider.triggers.dropbox_changes import DropboxChangeTrigger

DROPBOX_CONN_ID = "dropbox_default"
BOX_CONN_ID = "box_default"
INBOX = "/inbox"

dropbox_inbox = Asset(
    name="dropbox_inbox",
    uri=f"dropbox://{DROPBOX_CONN_ID}@{INBOX}",
    watchers=[
        AssetWatcher(
            name="dropbox_inbox_csv",
            trigger=DropboxChangeTrigger(conn_id=DROPBOX_CONN_ID, folder=INBOX, pattern="*.csv"),
        )
    ],
)
box_inbox = Asset(
    name="box_inbox",
    uri=f"box://{BOX_CONN_ID}@{INBOX}",
    watchers=[
        AssetWatcher(
            name="box_inbox_csv",
            trigger=BoxEventTrigger(conn_id=BOX_CONN_ID, folder=INBOX, pattern="*.csv"),
        )
    ],
)


@task
def summarize_new_files(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
    """Read each file that started this run (one asset event per file) and count its rows."""
    summaries = []
    for asset, events in (triggering_asset_events or {}).items():
        for event in events:
            change = (event.extra or {}).get("payload") or {}
            if change.get("kind") == "deleted":
                continue
            path = ObjectStoragePath(f"{change['service']}://{change['conn_id']}@{change['path']}")
            text = path.read_text(encoding="utf-8")
            summaries.append(
                {"asset": asset.name, "path": change["path"], "rows": len(text.splitlines()), "text": text}
            )
    return summaries


for inbox in (dropbox_inbox, box_inbox):
    with DAG(
        dag_id=f"{inbox.name}_new_csv", schedule=[inbox], catchup=False, tags=["dropbox", "box", "events"]
    ):
        summarize_new_files()
