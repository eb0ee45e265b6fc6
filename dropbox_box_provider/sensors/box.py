"""BoxFileSensor: waits for a Box file (path, id or last-segment glob), optionally modified after a time."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.sensors._files import RemoteFileSensor
from dropbox_box_provider.triggers.files import FileService


class BoxFileSensor(RemoteFileSensor):
    """Succeeds once a file exists at ``path`` in Box (e.g. ``/reports/*.csv`` or a file id); see
    RemoteFileSensor."""

    service: ClassVar[FileService] = "box"

    def __init__(self, *, path: str, conn_id: str = "box_default", **kwargs: Any) -> None:
        super().__init__(path=path, conn_id=conn_id, **kwargs)
