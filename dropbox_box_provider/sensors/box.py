"""BoxFileSensor: waits for a Box file (path, id or last-segment glob), optionally modified after a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from dropbox_box_provider.operators._aliases import join_pattern, renamed
from dropbox_box_provider.sensors._files import RemoteFileSensor
from dropbox_box_provider.triggers.files import FileService


class BoxFileSensor(RemoteFileSensor):
    """Succeeds once a file exists at ``path`` in Box (e.g. ``/reports/*.csv`` or a file id); see
    RemoteFileSensor. The apache-airflow-providers-box ``BoxSensor`` names are accepted with a warning:
    ``box_conn_id`` (``conn_id``), ``newer_than`` (``modified_after``; note: strictly after here) and
    ``file_pattern`` (joined to ``path`` as its last segment)."""

    service: ClassVar[FileService] = "box"

    def __init__(
        self,
        *,
        path: str,
        conn_id: str = "box_default",
        modified_after: datetime | str | None = None,
        box_conn_id: str | None = None,
        newer_than: datetime | str | None = None,
        file_pattern: str | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        conn_id = renamed(owner, "box_conn_id", box_conn_id, "conn_id", conn_id, default="box_default")
        modified_after = renamed(owner, "newer_than", newer_than, "modified_after", modified_after)
        path = join_pattern(owner, path, file_pattern)
        super().__init__(path=path, conn_id=conn_id, modified_after=modified_after, **kwargs)
