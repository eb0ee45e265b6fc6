"""Dropbox file operators: upload local files (a path or a glob) and download remote ones (a path, or a glob
in the last segment, optionally only files modified after a time)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.errors import ItemExists, ItemNotFound
from dropbox_box_provider.operators._files import RemoteDownloadOperator, RemoteUploadOperator
from dropbox_box_provider.operators._transfer import modified_after, name_matches, split_remote_pattern
from dropbox_box_provider.operators.links import DropboxFileLink

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

SUMMARY_KEYS = ("name", "path_display", "id", "size", "server_modified", "content_hash")


def find_dropbox_files(hook: DropboxHook, path: str, after: datetime | None = None) -> list[dict[str, Any]]:
    """Files at ``path`` (or matching its last-segment glob) modified after ``after``; [] when none."""
    folder, pattern = split_remote_pattern(path)
    try:
        if pattern is None:
            entries = [hook.get_metadata(folder)]
        else:
            entries = [e for e in hook.list_folder(folder) if name_matches(str(e.get("name", "")), pattern)]
    except ItemNotFound:
        return []
    return [
        e
        for e in entries
        if e.get(".tag", "file") == "file" and modified_after(e.get("server_modified"), after)
    ]


def _hook(conn_id: str) -> DropboxHook:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    return DropboxHook(conn_id)


class DropboxUploadOperator(RemoteUploadOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path`` (the file's path; the folder when
    it ends with ``/`` or ``local_path`` is a glob). ``overwrite=False`` fails on an existing remote file.

    Returns the uploaded files' metadata (name, path, id, size, content_hash).
    """

    service_name = "Dropbox"
    operator_extra_links = (DropboxFileLink(),)
    summary_keys = SUMMARY_KEYS

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> DropboxHook:
        return _hook(self.conn_id)

    def upload_one(self, hook: DropboxHook, source: Path, remote: str, into_folder: bool) -> dict[str, Any]:
        path = f"{remote.rstrip('/')}/{source.name}" if into_folder else remote
        try:
            return hook.upload_file(source, path, mode="overwrite" if self.overwrite else "add")
        except ItemExists as exc:
            raise ItemExists(
                f"Dropbox already has a file at {path!r}; set overwrite=True to replace it",
                status=409,
                code=exc.code,
            ) from exc


class DropboxDownloadOperator(RemoteDownloadOperator):
    """Download from Dropbox: ``remote_path`` is a file path or a glob such as ``/inbox/*.csv``."""

    service_name = "Dropbox"
    operator_extra_links = (DropboxFileLink(),)

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> DropboxHook:
        return _hook(self.conn_id)

    def find(self, hook: DropboxHook, remote: str, after: datetime | None) -> list[dict[str, Any]]:
        return find_dropbox_files(hook, remote, after)

    def check_exists(self, hook: DropboxHook, remote: str) -> None:
        hook.get_metadata(remote)

    def download_one(self, hook: DropboxHook, entry: dict[str, Any], target: Path) -> None:
        hook.download_file(entry.get("path_display") or entry["path_lower"], target)
