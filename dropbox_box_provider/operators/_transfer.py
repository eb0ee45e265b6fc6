"""The upload and download operators' one transfer loop, written against ``RemoteFiles``: each service
module only names its hook and the fields its XCom summary keeps."""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.sdk import BaseOperator

from dropbox_box_provider.deprecation import warn_deprecated
from dropbox_box_provider.errors import InvalidArgument, NotFound
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles
from dropbox_box_provider.hooks.matching import aware_time, find_files, has_glob, split_remote_pattern
from dropbox_box_provider.hooks.parallel import map_bounded
from dropbox_box_provider.lineage import report_download, reported_elsewhere
from dropbox_box_provider.operators._local import local_sources, local_target

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")
R = TypeVar("R")


def transfer_limit(given: int | None) -> int:
    """Files moved at once: the operator's ``max_active_transfers``, else ``[dropbox_box]``'s (default 4)."""
    if given is not None:
        return max(1, int(given))
    from dropbox_box_provider.provider_config import max_active_transfers

    return max_active_transfers()


def active_transfers(owner: str, given: int | None, old: int | None) -> int | None:
    """``max_active_transfers``, also from its deprecated name ``max_concurrent_transfers`` (warning once)."""
    if old is None:
        return given
    if given is not None and given != old:
        raise InvalidArgument(
            f"{owner} got max_active_transfers={given!r} and max_concurrent_transfers={old!r}; pass only "
            "max_active_transfers= (max_concurrent_transfers= is its old name)"
        )
    warn_deprecated(f"{owner}(max_concurrent_transfers=...)", f"{owner}(max_active_transfers=...)")
    return old


def map_concurrently(func: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    """``[func(i) for i in items]`` with up to ``limit`` calls at once sharing one back-off, results in
    ``items`` order (``hooks.parallel.map_bounded``)."""
    return map_bounded(func, items, limit)


def summary(entry: RemoteEntry, keys: tuple[str, ...]) -> dict[str, Any]:
    """The XCom-sized part of a service's file object (the service's own field names, as before)."""
    return {key: entry.raw.get(key) for key in keys if key in entry.raw}


class _RemoteFilesOperator(BaseOperator, abc.ABC):
    """What both transfer operators share: the connection and how its hook is made."""

    service_name: ClassVar[str]

    @abc.abstractmethod
    def get_hook(self) -> RemoteFiles:
        """The service hook of ``conn_id`` (imported lazily: DAG parsing never pays for it)."""

    def names_a_folder(self, remote: str) -> bool:
        """True when ``remote`` itself names the destination folder rather than the file."""
        return remote.endswith("/")


class RemoteUploadOperator(_RemoteFilesOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path``; returns the files' metadata.
    ``max_active_transfers`` (default ``[dropbox_box] max_active_transfers``, 4) files move at once, and a
    429 pauses them all; Dropbox commits many small files in batches. No matching local file fails the task
    unless ``allow_empty`` (on another worker the files are not there: an empty success would hide it).
    ``max_concurrent_transfers`` is the deprecated name of ``max_active_transfers``. ``verify_checksums``
    (default: the connection's ``verify_checksums`` extra, true) False skips the checksum the service does
    not require (faster; corruption that keeps the size goes unnoticed)."""

    template_fields: Sequence[str] = ("local_path", "remote_path", "conn_id")
    ui_color = "#cfe2ff"
    summary_keys: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        *,
        local_path: str,
        remote_path: str,
        conn_id: str,
        overwrite: bool = False,
        max_active_transfers: int | None = None,
        allow_empty: bool = False,
        max_concurrent_transfers: int | None = None,
        verify_checksums: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.verify_checksums = verify_checksums
        self.local_path = local_path
        self.remote_path = remote_path
        self.conn_id = conn_id
        self.overwrite = overwrite
        self.max_active_transfers = active_transfers(
            type(self).__name__, max_active_transfers, max_concurrent_transfers
        )
        self.allow_empty = allow_empty
        self.remote_entries: list[dict[str, Any]] = []  # what moved, for the "Open in ..." link

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Upload every matching file (the hook verifies each one's hash unless told not to)."""
        files = self.get_hook()
        remote = str(self.remote_path)
        sources = local_sources(self.local_path)
        if not sources and not self.allow_empty:
            raise InvalidArgument(
                f"no local file matches {os.fspath(self.local_path)!r} on this worker; check the path (a "
                "file written by another task may be on another machine: pass data through remote "
                "storage), or pass allow_empty=True if nothing to upload is fine"
            )
        into_folder = has_glob(os.fspath(self.local_path)) or self.names_a_folder(remote)
        if not into_folder and sources:
            with contextlib.suppress(NotFound):  # an existing folder's path means "into it", '/' or not
                into_folder = files.info(remote).kind == "folder"
        target = remote.rstrip("/") + "/" if into_folder else remote

        entries = files.upload_files(
            [(source, target) for source in sources],
            self.overwrite,
            max_active_transfers=transfer_limit(self.max_active_transfers),
        )
        for source, entry in zip(sources, entries, strict=True):
            self.log.info("Uploaded %s to %s %s (id %s)", source, self.service_name, entry.path, entry.id)
        self.remote_entries = [dict(entry.raw) for entry in entries]
        uploaded = [summary(entry, self.summary_keys) for entry in entries]
        if not sources:
            self.log.info("No local file matches %r; nothing to upload", self.local_path)
        return uploaded


class RemoteDownloadOperator(_RemoteFilesOperator):
    """Download ``remote_path`` (a file, or a glob in its last segment) to ``local_path`` (a folder for a
    glob). ``modified_after`` (datetime or ISO text, e.g. ``"{{ prev_start_date_success or '' }}"``) keeps
    only newer files; ``overwrite=False`` keeps existing local files. No matching remote file fails the task
    unless ``allow_empty``. Returns the local paths written. ``max_active_transfers`` (default
    ``[dropbox_box] max_active_transfers``, 4) files move at once, and a 429 pauses them all
    (``max_concurrent_transfers`` is its deprecated name). ``verify_checksums`` (default: the connection's
    extra, true) False skips checking each download's checksum (sizes are still checked).
    """

    template_fields: Sequence[str] = ("remote_path", "local_path", "conn_id", "modified_after")
    ui_color = "#cfe2ff"

    def __init__(
        self,
        *,
        remote_path: str,
        local_path: str,
        conn_id: str,
        overwrite: bool = True,
        modified_after: datetime | str | None = None,
        max_active_transfers: int | None = None,
        allow_empty: bool = False,
        max_concurrent_transfers: int | None = None,
        verify_checksums: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.verify_checksums = verify_checksums
        self.remote_path = remote_path
        self.local_path = local_path
        self.conn_id = conn_id
        self.overwrite = overwrite
        self.modified_after = modified_after
        self.max_active_transfers = active_transfers(
            type(self).__name__, max_active_transfers, max_concurrent_transfers
        )
        self.allow_empty = allow_empty
        self.remote_entries: list[dict[str, Any]] = []  # what moved, for the "Open in ..." link

    def execute(self, context: Context) -> list[str]:
        """Download each matching file; a missing single file is an error, not "nothing new"."""
        files = self.get_hook()
        remote = str(self.remote_path)
        _, pattern = split_remote_pattern(remote)
        if pattern is None:
            files.info(remote)  # NotFound for a missing file
        entries = find_files(files, remote, aware_time(self.modified_after))
        if not entries and not self.allow_empty:
            after = f" modified after {self.modified_after}" if self.modified_after else ""
            raise InvalidArgument(
                f"no {self.service_name} file matches {remote!r}{after}; check the path and pattern, or pass "
                "allow_empty=True if nothing new is fine"
            )

        # Every target is checked (UnsafePath) before the first byte is written.
        targets = {
            id(entry): local_target(self.local_path, entry.name, into_folder=pattern is not None)
            for entry in entries
        }

        def download(entry: RemoteEntry) -> str | None:
            target = targets[id(entry)]
            if target.exists() and not self.overwrite:
                self.log.info("Keeping existing %s (overwrite=False)", target)
                return None
            # The listed entry spares the hook a metadata request (Box); lineage is reported here, once.
            with reported_elsewhere():
                files.download_file(entry, target)
            report_download(files, entry.path, target)
            self.log.info("Downloaded %s %s (id %s) to %s", self.service_name, entry.path, entry.id, target)
            return str(target)

        done = map_concurrently(download, entries, transfer_limit(self.max_active_transfers))
        moved = [entry for entry, path in zip(entries, done, strict=True) if path is not None]
        self.remote_entries = [dict(entry.raw) for entry in moved]
        written = [path for path in done if path is not None]
        if not entries:
            self.log.info(
                "No %s file matches %r (modified after %s)", self.service_name, remote, self.modified_after
            )
        return written


__all__ = ["RemoteDownloadOperator", "RemoteUploadOperator", "summary"]
