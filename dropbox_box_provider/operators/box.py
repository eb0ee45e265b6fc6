"""Box file operators: upload local files (a path or a glob) and download remote ones (a path or id, or a
glob in the last path segment, optionally only files modified after a time)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from dropbox_box_provider.errors import ItemNotFound
from dropbox_box_provider.operators._transfer import (
    has_glob,
    local_sources,
    local_target,
    modified_after,
    name_matches,
    parse_time,
    split_remote_pattern,
    summary,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from dropbox_box_provider.hooks.box import BoxHook

SUMMARY_KEYS = ("id", "name", "size", "sha1", "modified_at")


def find_box_files(hook: BoxHook, path: str, after: datetime | None = None) -> list[dict[str, Any]]:
    """Box file objects at ``path`` (a path or id, or a last-segment glob) modified after ``after``."""
    folder, pattern = split_remote_pattern(str(path))
    try:
        if pattern is None:
            candidates = [hook.get_file_info(folder)]
        else:
            candidates = [
                e
                for e in hook.list_folder(folder)
                if e.get("type") == "file" and name_matches(str(e.get("name", "")), pattern)
            ]
            if after is not None:  # listings carry mini objects: modified_at needs the full object
                candidates = [hook.get_file_info(str(e["id"])) for e in candidates]
    except ItemNotFound:
        return []
    return [e for e in candidates if e.get("type") == "file" and modified_after(e.get("modified_at"), after)]


def _get_hook(conn_id: str) -> BoxHook:
    from dropbox_box_provider.hooks.box import BoxHook

    return BoxHook(conn_id)


class BoxUploadOperator(BaseOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path``: a folder id, a folder path
    (missing folders are created; always a folder when ``local_path`` is a glob or it ends with ``/``), or
    the file's full path. ``overwrite=True`` uploads a new version of an existing file, otherwise it fails.

    Returns the uploaded files' metadata (id, name, size, sha1).
    """

    template_fields: Sequence[str] = ("local_path", "remote_path", "conn_id")
    ui_color = "#cfe2ff"

    def __init__(
        self,
        *,
        local_path: str,
        remote_path: str,
        conn_id: str = "box_default",
        overwrite: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_path = local_path
        self.remote_path = remote_path
        self.conn_id = conn_id
        self.overwrite = overwrite

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Upload each file (SHA-1 checked by the hook)."""
        hook = _get_hook(self.conn_id)
        remote = str(self.remote_path)
        sources = local_sources(self.local_path)
        into_folder = has_glob(os.fspath(self.local_path)) or remote.endswith("/") or remote.isdigit()
        uploaded = []
        for source in sources:
            name = source.name if into_folder else None
            entry = hook.upload_file(source, remote.rstrip("/") or "/", name=name, overwrite=self.overwrite)
            self.log.info("Uploaded %s to Box file %s (%s)", source, entry.get("id"), entry.get("name"))
            uploaded.append(summary(entry, SUMMARY_KEYS))
        if not sources:
            self.log.info("No local file matches %r; nothing to upload", self.local_path)
        return uploaded


class BoxDownloadOperator(BaseOperator):
    """Download ``remote_path`` (a file path or id, or a glob in its last segment such as
    ``/reports/*.csv``) to ``local_path`` (the file's path; a folder for a glob). ``modified_after``
    (datetime or ISO text) keeps only newer files; ``overwrite=False`` keeps existing local files.
    Returns the local paths written.
    """

    template_fields: Sequence[str] = ("remote_path", "local_path", "conn_id", "modified_after")
    ui_color = "#cfe2ff"

    def __init__(
        self,
        *,
        remote_path: str,
        local_path: str,
        conn_id: str = "box_default",
        overwrite: bool = True,
        modified_after: datetime | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.remote_path = remote_path
        self.local_path = local_path
        self.conn_id = conn_id
        self.overwrite = overwrite
        self.modified_after = modified_after

    def execute(self, context: Context) -> list[str]:
        """Download each matching file atomically (SHA-1 checked by the hook)."""
        hook = _get_hook(self.conn_id)
        _, pattern = split_remote_pattern(str(self.remote_path))
        if pattern is None:
            hook.get_file_info(str(self.remote_path))  # a missing single file is an error, not "nothing new"
        entries = find_box_files(hook, str(self.remote_path), parse_time(self.modified_after))
        written = []
        for entry in entries:
            target = local_target(self.local_path, str(entry["name"]), into_folder=pattern is not None)
            if target.exists() and not self.overwrite:
                self.log.info("Keeping existing %s (overwrite=False)", target)
                continue
            hook.download_file(str(entry["id"]), target)
            self.log.info("Downloaded Box file %s (%s) to %s", entry["id"], entry.get("name"), target)
            written.append(str(target))
        if not entries:
            self.log.info("No Box file matches %r (modified after %s)", self.remote_path, self.modified_after)
        return written
