"""``dropbox://CONN_ID@/path``: the Dropbox filesystem, and the ``get_fs`` Airflow binds connections with."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.fs.base import RemoteFile, RemoteFileSystem, StreamedFile

schemes = ["dropbox"]


class DropboxFileSystem(RemoteFileSystem):
    """Files of one Dropbox connection (``DropboxHook``: tokens refreshed through the token store)."""

    protocol: ClassVar[tuple[str, ...]] = ("dropbox",)
    default_conn_id: ClassVar[str] = "dropbox_default"
    file_class: ClassVar[type[RemoteFile]] = StreamedFile

    def make_hook(self, conn_id: str) -> Any:
        """A ``DropboxHook`` for ``conn_id``."""
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        return DropboxHook(conn_id)


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> DropboxFileSystem:
    """The filesystem of ``conn_id`` (``dropbox_default`` when None), as Airflow's ``attach`` asks for it."""
    return DropboxFileSystem(conn_id=conn_id, **(storage_options or {}))
