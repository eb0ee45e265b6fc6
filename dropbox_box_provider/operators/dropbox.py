"""Dropbox file operators: upload local files (a path or a glob) and download remote ones (a path, or a glob
in the last segment, optionally only files modified after a time); copy, move and delete remote ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropbox_box_provider.operators._copy_delete import RemoteCopyOperator, RemoteDeleteOperator
from dropbox_box_provider.operators._transfer import RemoteDownloadOperator, RemoteUploadOperator
from dropbox_box_provider.operators.links import DropboxFileLink

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

SUMMARY_KEYS = ("name", "path_display", "id", "size", "server_modified", "content_hash")


def _hook(conn_id: str, verify_checksums: bool | None = None) -> DropboxHook:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    return DropboxHook(conn_id, verify_checksums=verify_checksums)


class DropboxUploadOperator(RemoteUploadOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path`` (the file's path; the folder when
    it ends with ``/`` or ``local_path`` is a glob). ``overwrite=False`` fails on an existing remote file
    with different content.

    Returns the uploaded files' metadata (name, path, id, size, content_hash).
    """

    service_name = "Dropbox"
    operator_extra_links = (DropboxFileLink(),)
    summary_keys = SUMMARY_KEYS

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> DropboxHook:
        return _hook(self.conn_id, self.verify_checksums)


class DropboxDownloadOperator(RemoteDownloadOperator):
    """Download from Dropbox: ``remote_path`` is a file path or a glob such as ``/inbox/*.csv``."""

    service_name = "Dropbox"
    operator_extra_links = (DropboxFileLink(),)

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> DropboxHook:
        return _hook(self.conn_id, self.verify_checksums)


class DropboxCopyOperator(RemoteCopyOperator):
    """Copy (``move=True``: move) Dropbox files or folders: ``source_path`` a path, glob or list;
    ``destination_path`` a folder (``.../``, existing, or for several sources) or the new full path.
    Returns each item's metadata at its destination."""

    service_name = "Dropbox"
    operator_extra_links = (DropboxFileLink(),)

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> DropboxHook:
        return _hook(self.conn_id)


class DropboxDeleteOperator(RemoteDeleteOperator):
    """Delete Dropbox files (a path, glob or list); folders only with ``recursive`` unless empty;
    ``missing_ok`` accepts nothing there. Returns the deleted items' metadata."""

    service_name = "Dropbox"

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> DropboxHook:
        return _hook(self.conn_id)
