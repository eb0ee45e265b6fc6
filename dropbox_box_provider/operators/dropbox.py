"""Dropbox file operators: upload local files (a path or a glob) and download remote ones (a path, or a glob
in the last segment, optionally only files modified after a time)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from dropbox_box_provider.errors import ItemExists, ServiceError
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

    from dropbox_box_provider.hooks.dropbox import DropboxHook

SUMMARY_KEYS = ("name", "path_display", "id", "size", "server_modified", "content_hash")


def is_not_found(exc: ServiceError) -> bool:
    """True for Dropbox's 409 ``…/not_found`` route errors."""
    return exc.status == 409 and "not_found" in str(exc.code or "").split("/")


def find_dropbox_files(hook: DropboxHook, path: str, after: datetime | None = None) -> list[dict[str, Any]]:
    """Files at ``path`` (or matching its last-segment glob) modified after ``after``; [] when none."""
    folder, pattern = split_remote_pattern(path)
    try:
        if pattern is None:
            entries = [hook.get_metadata(folder)]
        else:
            entries = [e for e in hook.list_folder(folder) if name_matches(str(e.get("name", "")), pattern)]
    except ServiceError as exc:
        if is_not_found(exc):
            return []
        raise
    return [
        e
        for e in entries
        if e.get(".tag", "file") == "file" and modified_after(e.get("server_modified"), after)
    ]


def _get_hook(conn_id: str) -> DropboxHook:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    return DropboxHook(conn_id)


class DropboxUploadOperator(BaseOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path`` (the file's path; the folder when
    it ends with ``/`` or ``local_path`` is a glob). ``overwrite=False`` fails on an existing remote file.

    Returns the uploaded files' metadata (name, path, id, size, content_hash).
    """

    template_fields: Sequence[str] = ("local_path", "remote_path", "conn_id")
    ui_color = "#cfe2ff"

    def __init__(
        self,
        *,
        local_path: str,
        remote_path: str,
        conn_id: str = "dropbox_default",
        overwrite: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_path = local_path
        self.remote_path = remote_path
        self.conn_id = conn_id
        self.overwrite = overwrite

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Upload each file (content_hash verified by the hook)."""
        hook = _get_hook(self.conn_id)
        sources = local_sources(self.local_path)
        into_folder = has_glob(os.fspath(self.local_path)) or self.remote_path.endswith("/")
        uploaded = []
        for source in sources:
            remote = f"{self.remote_path.rstrip('/')}/{source.name}" if into_folder else self.remote_path
            try:
                metadata = hook.upload_file(source, remote, mode="overwrite" if self.overwrite else "add")
            except ServiceError as exc:
                if exc.status == 409 and "conflict" in f"{exc.code} {exc}":
                    raise ItemExists(
                        f"Dropbox already has a file at {remote!r}; set overwrite=True to replace it",
                        status=409,
                        code="conflict",
                    ) from exc
                raise
            self.log.info("Uploaded %s to Dropbox %s", source, metadata.get("path_display", remote))
            uploaded.append(summary(metadata, SUMMARY_KEYS))
        if not sources:
            self.log.info("No local file matches %r; nothing to upload", self.local_path)
        return uploaded


class DropboxDownloadOperator(BaseOperator):
    """Download ``remote_path`` (a file, or a glob in its last segment such as ``/inbox/*.csv``) to
    ``local_path`` (the file's path; a folder for a glob). ``modified_after`` (datetime or ISO text, e.g.
    ``"{{ prev_start_date_success or '' }}"``) keeps only newer files; ``overwrite=False`` keeps existing
    local files. Returns the local paths written.
    """

    template_fields: Sequence[str] = ("remote_path", "local_path", "conn_id", "modified_after")
    ui_color = "#cfe2ff"

    def __init__(
        self,
        *,
        remote_path: str,
        local_path: str,
        conn_id: str = "dropbox_default",
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
        """Download each matching file atomically (content_hash verified by the hook)."""
        hook = _get_hook(self.conn_id)
        _, pattern = split_remote_pattern(self.remote_path)
        entries = find_dropbox_files(hook, self.remote_path, parse_time(self.modified_after))
        if pattern is None and not entries and not hook.exists(self.remote_path):
            raise ServiceError(
                f"Dropbox has no file at {self.remote_path!r}; check the path",
                status=409,
                code="path/not_found",
            )
        written = []
        for entry in entries:
            target = local_target(self.local_path, str(entry["name"]), into_folder=pattern is not None)
            if target.exists() and not self.overwrite:
                self.log.info("Keeping existing %s (overwrite=False)", target)
                continue
            hook.download_file(entry.get("path_display") or entry["path_lower"], target)
            self.log.info("Downloaded Dropbox %s to %s", entry.get("path_display"), target)
            written.append(str(target))
        if not entries:
            self.log.info(
                "No Dropbox file matches %r (modified after %s)", self.remote_path, self.modified_after
            )
        return written
