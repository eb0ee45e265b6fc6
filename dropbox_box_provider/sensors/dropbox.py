"""DropboxFileSensor: waits for a Dropbox file (path or last-segment glob), optionally modified after
a time."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.sensors._files import RemoteFileSensor
from dropbox_box_provider.triggers.files import FileService


class DropboxFileSensor(RemoteFileSensor):
    """Succeeds once a file exists at ``path`` in Dropbox (e.g. ``/inbox/*.csv``); see RemoteFileSensor."""

    service: ClassVar[FileService] = "dropbox"

    def __init__(self, *, path: str, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(path=path, conn_id=conn_id, **kwargs)
