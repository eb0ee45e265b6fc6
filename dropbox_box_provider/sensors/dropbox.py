"""DropboxFileSensor: waits for a Dropbox file (path or last-segment glob), optionally modified after
a time."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.operators._transfer import parse_time
from dropbox_box_provider.operators.dropbox import find_dropbox_files
from dropbox_box_provider.sensors._files import RemoteFileSensor
from dropbox_box_provider.triggers.files import FileService


class DropboxFileSensor(RemoteFileSensor):
    """Succeeds once a file exists at ``path`` in Dropbox (e.g. ``/inbox/*.csv``); see RemoteFileSensor."""

    service: ClassVar[FileService] = "dropbox"

    def __init__(self, *, path: str, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(path=path, conn_id=conn_id, **kwargs)

    def find(self) -> list[dict[str, Any]]:
        """Dropbox metadata of the matching files."""
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        return find_dropbox_files(DropboxHook(self.conn_id), self.path, parse_time(self.modified_after))
