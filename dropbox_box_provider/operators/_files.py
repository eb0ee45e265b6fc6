"""The upload and download operators' shared loop; each service module says how one file moves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from dropbox_box_provider.operators._transfer import (
    has_glob,
    local_sources,
    local_target,
    map_concurrently,
    parse_time,
    split_remote_pattern,
    summary,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


def transfer_limit(given: int | None) -> int:
    """Files moved at once: the operator's ``max_concurrent_transfers``, else ``[dropbox_box]``'s."""
    if given is not None:
        return max(1, int(given))
    from dropbox_box_provider.provider_config import max_concurrent_transfers

    return max_concurrent_transfers()


class RemoteUploadOperator(BaseOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path``; returns the files' metadata.
    ``max_concurrent_transfers`` (default ``[dropbox_box] max_concurrent_transfers``) files move at once."""

    template_fields: Sequence[str] = ("local_path", "remote_path", "conn_id")
    ui_color = "#cfe2ff"
    service_name: ClassVar[str]
    summary_keys: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        *,
        local_path: str,
        remote_path: str,
        conn_id: str,
        overwrite: bool = False,
        max_concurrent_transfers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_path = local_path
        self.remote_path = remote_path
        self.conn_id = conn_id
        self.overwrite = overwrite
        self.max_concurrent_transfers = max_concurrent_transfers
        self.remote_entries: list[dict[str, Any]] = []  # what moved, for the "Open in ..." link

    def get_hook(self) -> Any:
        """The service hook of ``conn_id`` (imported lazily: DAG parsing never pays for it)."""
        raise NotImplementedError

    def names_a_folder(self, remote: str) -> bool:
        """True when ``remote`` itself names the destination folder rather than the file."""
        return remote.endswith("/")

    def upload_one(self, hook: Any, source: Path, remote: str, into_folder: bool) -> dict[str, Any]:
        """Upload one file; returns the service's file object."""
        raise NotImplementedError

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Upload every matching file (the hook verifies each one's hash)."""
        hook = self.get_hook()
        remote = str(self.remote_path)
        sources = local_sources(self.local_path)
        into_folder = has_glob(os.fspath(self.local_path)) or self.names_a_folder(remote)

        def upload(source: Path) -> dict[str, Any]:
            entry = self.upload_one(hook, source, remote, into_folder)
            where = entry.get("path_display") or f"{entry.get('name')} (id {entry.get('id')})"
            self.log.info("Uploaded %s to %s %s", source, self.service_name, where)
            return entry

        entries = map_concurrently(upload, sources, transfer_limit(self.max_concurrent_transfers))
        self.remote_entries = entries
        uploaded = [summary(entry, self.summary_keys) for entry in entries]
        if not sources:
            self.log.info("No local file matches %r; nothing to upload", self.local_path)
        return uploaded


class RemoteDownloadOperator(BaseOperator):
    """Download ``remote_path`` (a file, or a glob in its last segment) to ``local_path`` (a folder for a
    glob). ``modified_after`` (datetime or ISO text, e.g. ``"{{ prev_start_date_success or '' }}"``) keeps
    only newer files; ``overwrite=False`` keeps existing local files. Returns the local paths written.
    ``max_concurrent_transfers`` (default ``[dropbox_box] max_concurrent_transfers``) files move at once.
    """

    template_fields: Sequence[str] = ("remote_path", "local_path", "conn_id", "modified_after")
    ui_color = "#cfe2ff"
    service_name: ClassVar[str]

    def __init__(
        self,
        *,
        remote_path: str,
        local_path: str,
        conn_id: str,
        overwrite: bool = True,
        modified_after: datetime | str | None = None,
        max_concurrent_transfers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.remote_path = remote_path
        self.local_path = local_path
        self.conn_id = conn_id
        self.overwrite = overwrite
        self.modified_after = modified_after
        self.max_concurrent_transfers = max_concurrent_transfers
        self.remote_entries: list[dict[str, Any]] = []  # what moved, for the "Open in ..." link

    def get_hook(self) -> Any:
        """The service hook of ``conn_id`` (imported lazily: DAG parsing never pays for it)."""
        raise NotImplementedError

    def find(self, hook: Any, remote: str, after: datetime | None) -> list[dict[str, Any]]:
        """The service's file objects ``remote`` names, modified after ``after``."""
        raise NotImplementedError

    def check_exists(self, hook: Any, remote: str) -> None:
        """Raise ItemNotFound for a missing single file: that is an error, not "nothing new"."""
        raise NotImplementedError

    def download_one(self, hook: Any, entry: dict[str, Any], target: Path) -> None:
        """Download one file object to ``target`` (atomically, hash checked by the hook)."""
        raise NotImplementedError

    def execute(self, context: Context) -> list[str]:
        """Download each matching file."""
        hook = self.get_hook()
        remote = str(self.remote_path)
        _, pattern = split_remote_pattern(remote)
        if pattern is None:
            self.check_exists(hook, remote)
        entries = self.find(hook, remote, parse_time(self.modified_after))

        def download(entry: dict[str, Any]) -> str | None:
            target = local_target(self.local_path, str(entry["name"]), into_folder=pattern is not None)
            if target.exists() and not self.overwrite:
                self.log.info("Keeping existing %s (overwrite=False)", target)
                return None
            self.download_one(hook, entry, target)
            where = entry.get("path_display") or f"{entry.get('name')} (id {entry.get('id')})"
            self.log.info("Downloaded %s %s to %s", self.service_name, where, target)
            return str(target)

        done = map_concurrently(download, entries, transfer_limit(self.max_concurrent_transfers))
        self.remote_entries = [entry for entry, path in zip(entries, done, strict=True) if path is not None]
        written = [path for path in done if path is not None]
        if not entries:
            self.log.info(
                "No %s file matches %r (modified after %s)", self.service_name, remote, self.modified_after
            )
        return written
