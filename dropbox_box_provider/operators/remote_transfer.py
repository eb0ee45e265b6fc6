"""Remote-to-remote transfers inside one task: ``DropboxToBoxOperator`` and ``BoxToDropboxOperator``.

Each matching file is downloaded (checksum verified) into a temporary file of this task, uploaded (checksum
verified), and the temporary file removed at once: nothing is left on a worker's disk between tasks, so the
transfer is correct on any number of workers. ``max_active_transfers`` files (default 4) move at once, and a
429 from either service pauses them all. A destination file whose content hash already
equals the source's is skipped, so a run repeated over the same files moves nothing.
"""

from __future__ import annotations

import abc
import hashlib
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow.sdk import BaseOperator

from dropbox_box_provider.content_hash import DropboxContentHasher
from dropbox_box_provider.errors import InvalidArgument, NotFound
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles
from dropbox_box_provider.hooks.matching import aware_time, find_files, split_remote_pattern
from dropbox_box_provider.lineage import report_transfer, reported_elsewhere
from dropbox_box_provider.operators._transfer import map_concurrently, transfer_limit
from dropbox_box_provider.uris import canonical_uri

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, Context

_READ = 1024 * 1024
_NAMES = {"dropbox": "Dropbox", "box": "Box"}


def file_hash(path: Path, algorithm: str | None) -> str | None:
    """The hash of a local file in a service's algorithm (``dropbox-content-hash`` or ``sha1``)."""
    hasher: Any
    if algorithm == "dropbox-content-hash":
        hasher = DropboxContentHasher()
    elif algorithm == "sha1":
        hasher = hashlib.sha1(usedforsecurity=False)
    else:
        return None
    with path.open("rb") as handle:
        while block := handle.read(_READ):
            hasher.update(block)
    return str(hasher.hexdigest())


class RemoteToRemoteOperator(BaseOperator, abc.ABC):
    """Copy ``source_path`` (a file, or a glob in its last segment) of one service into ``dest_folder`` of
    another within this task, ``max_active_transfers`` files at once (default ``[dropbox_box]
    max_active_transfers``, 4). ``modified_after`` keeps only newer files; an existing
    destination with the same content is skipped, one with different content is replaced when
    ``overwrite`` (a new Box version / Dropbox revision) and fails otherwise. No match fails the task
    unless ``allow_empty``. Returns one summary per file: source, destination, size, hash, ``action``.
    ``verify_checksums`` (default: each connection's extra, true) False skips the checksum work neither
    service requires, on both sides (sizes are still checked)."""

    template_fields: Sequence[str] = (
        "source_path",
        "dest_folder",
        "source_conn_id",
        "dest_conn_id",
        "modified_after",
    )
    ui_color = "#d7f5e1"
    source_scheme: ClassVar[str]
    dest_scheme: ClassVar[str]

    def __init__(
        self,
        *,
        source_path: str,
        dest_folder: str,
        source_conn_id: str,
        dest_conn_id: str,
        modified_after: datetime | str | None = None,
        overwrite: bool = True,
        allow_empty: bool = False,
        max_active_transfers: int | None = None,
        verify_checksums: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_active_transfers = max_active_transfers
        self.verify_checksums = verify_checksums
        self.source_path = source_path
        self.dest_folder = dest_folder
        self.source_conn_id = source_conn_id
        self.dest_conn_id = dest_conn_id
        self.modified_after = modified_after
        self.overwrite = overwrite
        self.allow_empty = allow_empty

    @abc.abstractmethod
    def source_hook(self) -> RemoteFiles:
        """The source service's hook (imported lazily)."""

    @abc.abstractmethod
    def dest_hook(self) -> RemoteFiles:
        """The destination service's hook (imported lazily)."""

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Transfer every matching file; see the class docstring."""
        source, dest = self.source_hook(), self.dest_hook()
        remote = str(self.source_path)
        _, pattern = split_remote_pattern(remote)
        if pattern is None:
            source.info(remote)  # NotFound for a missing single file
        entries = find_files(source, remote, aware_time(self.modified_after))
        if not entries:
            message = f"no {self.source_scheme} file matches {remote!r}" + (
                f" modified after {self.modified_after}" if self.modified_after else ""
            )
            if not self.allow_empty:
                raise InvalidArgument(f"{message}; check the path and pattern, or pass allow_empty=True")
            self.log.info("%s; nothing to transfer", message.capitalize())
            return []
        folder = str(self.dest_folder).rstrip("/") or ""
        dest.mkdir(folder or "/", parents=True, exist_ok=True)
        return map_concurrently(
            lambda entry: self._transfer(source, dest, entry, f"{folder}/{entry.name}"),
            entries,
            transfer_limit(self.max_active_transfers),
        )

    def _transfer(
        self, source: RemoteFiles, dest: RemoteFiles, entry: RemoteEntry, target: str
    ) -> dict[str, Any]:
        try:
            existing: RemoteEntry | None = dest.info(target)
        except NotFound:
            existing = None
        # The temporary file is no asset: the transfer is reported once, below, remote to remote.
        with tempfile.TemporaryDirectory(prefix="remote-transfer-") as spool, reported_elsewhere():
            local = source.download_file(entry, Path(spool) / "content")
            if existing is not None and file_hash(local, existing.hash_algorithm) == existing.content_hash:
                action, written = "unchanged", existing
            else:
                action = "copied" if existing is None else "replaced"
                written = dest.upload_file(local, target, self.overwrite)
        report_transfer(
            cast("BaseHook", source),
            canonical_uri(self.source_scheme, self.source_conn_id, entry.path),
            cast("BaseHook", dest),
            canonical_uri(self.dest_scheme, self.dest_conn_id, written.path),
        )
        source_name, dest_name = _NAMES[self.source_scheme], _NAMES[self.dest_scheme]
        if action == "unchanged":
            self.log.info(
                "Kept %s %s: %s %s has the same content", source_name, entry.path, dest_name, target
            )
        else:
            self.log.info("Copied %s %s to %s %s", source_name, entry.path, dest_name, written.path)
        return {
            "source": entry.path,
            "destination": written.path,
            "size": entry.size,
            "source_hash": entry.content_hash,
            "dest_hash": written.content_hash,
            "action": action,
        }


class DropboxToBoxOperator(RemoteToRemoteOperator):
    """Copy Dropbox files (``dropbox_path``: a file or a glob) into the Box folder ``box_folder``."""

    source_scheme = "dropbox"
    dest_scheme = "box"

    def __init__(
        self,
        *,
        dropbox_path: str,
        box_folder: str,
        dropbox_conn_id: str = "dropbox_default",
        box_conn_id: str = "box_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            source_path=dropbox_path,
            dest_folder=box_folder,
            source_conn_id=dropbox_conn_id,
            dest_conn_id=box_conn_id,
            **kwargs,
        )

    def source_hook(self) -> RemoteFiles:
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        return DropboxHook(self.source_conn_id, verify_checksums=self.verify_checksums)

    def dest_hook(self) -> RemoteFiles:
        from dropbox_box_provider.hooks.box import BoxHook

        return BoxHook(self.dest_conn_id, verify_checksums=self.verify_checksums)


class BoxToDropboxOperator(RemoteToRemoteOperator):
    """Copy Box files (``box_path``: a file or a glob) into the Dropbox folder ``dropbox_folder``."""

    source_scheme = "box"
    dest_scheme = "dropbox"

    def __init__(
        self,
        *,
        box_path: str,
        dropbox_folder: str,
        box_conn_id: str = "box_default",
        dropbox_conn_id: str = "dropbox_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            source_path=box_path,
            dest_folder=dropbox_folder,
            source_conn_id=box_conn_id,
            dest_conn_id=dropbox_conn_id,
            **kwargs,
        )

    def source_hook(self) -> RemoteFiles:
        from dropbox_box_provider.hooks.box import BoxHook

        return BoxHook(self.source_conn_id, verify_checksums=self.verify_checksums)

    def dest_hook(self) -> RemoteFiles:
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        return DropboxHook(self.dest_conn_id, verify_checksums=self.verify_checksums)


__all__ = ["BoxToDropboxOperator", "DropboxToBoxOperator", "RemoteToRemoteOperator"]
