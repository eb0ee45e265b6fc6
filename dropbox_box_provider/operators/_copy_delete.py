"""The copy and delete operators' one loop each, written against ``RemoteFiles``: each service module only
names its hook (``DropboxCopyOperator``, ``BoxDeleteOperator``, ...)."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.errors import InvalidArgument, NotFound
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles
from dropbox_box_provider.hooks.matching import aware_time, find_files, has_glob, split_remote_pattern
from dropbox_box_provider.operators._transfer import _RemoteFilesOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def path_list(value: str | Sequence[str], what: str) -> list[str]:
    """One path or a list of them, as a list of non-empty strings."""
    paths = [value] if isinstance(value, str) else list(value)
    if not paths or not all(isinstance(p, str) and p.strip() for p in paths):
        raise InvalidArgument(f"{what} must be a remote path or a list of them, got {value!r}")
    return [p.strip() for p in paths]


def record(entry: RemoteEntry, action: str, source: str | None = None) -> dict[str, Any]:
    """The XCom of one item: its metadata (never a token or a link) and what was done."""
    data = entry.to_dict()
    if source is not None:
        data["source"] = source
    data["action"] = action
    return data


class RemoteCopyOperator(_RemoteFilesOperator):
    """Copy (or, with ``move=True``, move) remote files within one connection, as ``GCSToGCSOperator`` does.

    ``source_path`` is a path or ``id:``, a glob in its last segment (``/inbox/*.csv``: files only), or a list
    of those. ``destination_path`` is a folder when it ends with ``/``, when it is an existing folder, or
    when there are several sources or a glob: each item keeps its name there (missing folders are created);
    otherwise it is the single source's new full path. Identical content already at the destination is a
    success (a retry); different content needs ``overwrite``. ``modified_after`` keeps only newer files of a
    glob. A glob matching nothing fails unless ``allow_empty``. Returns one metadata dict per item
    (destination ``path``, ``id``, ``size``, ``content_hash``, ..., ``source``, ``action``).
    """

    template_fields: Sequence[str] = ("source_path", "destination_path", "conn_id", "modified_after")
    ui_color = "#fde2c8"

    def __init__(
        self,
        *,
        source_path: str | list[str],
        destination_path: str,
        conn_id: str,
        move: bool = False,
        overwrite: bool = False,
        modified_after: datetime | str | None = None,
        allow_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path
        self.destination_path = destination_path
        self.conn_id = conn_id
        self.move = move
        self.overwrite = overwrite
        self.modified_after = modified_after
        self.allow_empty = allow_empty
        self.remote_entries: list[dict[str, Any]] = []  # the destinations, for the "Open in ..." link

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Copy or move every source; a move resent or retried after it happened is a success."""
        files = self.get_hook()
        sources = path_list(self.source_path, "source_path")
        destination = str(self.destination_path).strip()
        if not destination:
            raise InvalidArgument("destination_path is empty: give a folder ending with '/' or a full path")
        many = len(sources) > 1 or any(has_glob(s) for s in sources)
        folder = self._destination_folder(files, destination, many)
        if folder is None and self.move:
            already = self._moved_before(files, sources[0], destination)
            if already is not None:
                return [already]
        items = self._items(files, sources)
        results: list[dict[str, Any]] = []
        entries: list[RemoteEntry] = []
        for entry in items:
            target = destination if folder is None else posixpath.join(folder, entry.name)
            done = self._relocate(files, entry, target)
            self.log.info(
                "%s %s %s to %s (id %s)",
                "Moved" if self.move else "Copied",
                self.service_name,
                entry.path,
                done.path,
                done.id,
            )
            entries.append(done)
            results.append(record(done, "moved" if self.move else "copied", entry.path))
        self.remote_entries = [dict(e.raw) for e in entries]
        return results

    def _destination_folder(self, files: RemoteFiles, destination: str, many: bool) -> str | None:
        """The folder items go into (its display path), or None when ``destination`` is the new path."""
        if not (many or self.names_a_folder(destination)):
            try:
                found = files.info(destination)
            except NotFound:
                return None
            if found.kind != "folder":
                return None
            return found.path
        bare = destination.rstrip("/") or "/"
        if bare.startswith("id:") or bare.isdigit():
            return files.info(bare).path  # a folder named by id: its path, so names can be appended
        return bare

    def _items(self, files: RemoteFiles, sources: list[str]) -> list[RemoteEntry]:
        after = aware_time(self.modified_after)
        items: list[RemoteEntry] = []
        for source in sources:
            _, pattern = split_remote_pattern(source)
            if pattern is None:
                items.append(files.info(source))  # NotFound for a missing single source
            else:
                items += find_files(files, source, after)
        if not items and not self.allow_empty:
            raise InvalidArgument(
                f"no {self.service_name} file matches {self.source_path!r}; check the path and pattern, or "
                "pass allow_empty=True if nothing to copy is fine"
            )
        return items

    def _relocate(self, files: RemoteFiles, entry: RemoteEntry, target: str) -> RemoteEntry:
        """By the item's id: a move resent after a lost answer finds the item already at ``target``."""
        if self.move:
            return files.move(entry.ref, target, overwrite=self.overwrite)
        return files.copy(entry.ref, target, overwrite=self.overwrite)

    def _moved_before(self, files: RemoteFiles, source: str, destination: str) -> dict[str, Any] | None:
        """A retried single-file move whose first try finished: the source is gone and the destination file
        is there. None when the source still exists (or the destination is missing too)."""
        if has_glob(source) or files.exists(source):
            return None
        try:
            there = files.info(destination)
        except NotFound:
            return None
        if not there.is_file:
            return None
        self.log.warning(
            "%s %r is gone and %r exists: taking the move as done by an earlier try",
            self.service_name,
            source,
            destination,
        )
        self.remote_entries = [dict(there.raw)]
        return record(there, "already_moved", source)


class RemoteDeleteOperator(_RemoteFilesOperator):
    """Delete remote files (``S3DeleteObjectsOperator``'s role): ``remote_path`` is a path or ``id:``, a glob
    in its last segment (``/tmp/*.csv``), or a list of those. A glob takes files, and folders too when
    ``recursive``; a folder is deleted only when empty unless ``recursive``. A missing path (or a glob
    matching nothing) fails unless ``missing_ok``; an item that disappears while being deleted counts as
    deleted. Returns the deleted items' metadata.
    """

    template_fields: Sequence[str] = ("remote_path", "conn_id")
    ui_color = "#f8d7da"

    def __init__(
        self,
        *,
        remote_path: str | list[str],
        conn_id: str,
        recursive: bool = False,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.remote_path = remote_path
        self.conn_id = conn_id
        self.recursive = recursive
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Delete every named or matching item."""
        files = self.get_hook()
        deleted: list[dict[str, Any]] = []
        for path in path_list(self.remote_path, "remote_path"):
            for entry in self._targets(files, path):
                files.delete(entry.ref, recursive=self.recursive, missing_ok=True)
                self.log.info("Deleted %s %s %s (id %s)", self.service_name, entry.kind, entry.path, entry.id)
                deleted.append(record(entry, "deleted"))
        return deleted

    def _targets(self, files: RemoteFiles, path: str) -> list[RemoteEntry]:
        folder, pattern = split_remote_pattern(path)
        try:
            if pattern is None:
                found = [files.info(path)]
            else:
                found = [e for e in files.list(folder, pattern=pattern) if e.is_file or self.recursive]
        except NotFound:
            if not self.missing_ok:
                raise
            self.log.info("Nothing at %s %r (missing_ok)", self.service_name, path)
            return []
        if not found and not self.missing_ok:
            raise InvalidArgument(
                f"no {self.service_name} item matches {path!r}"
                + ("" if self.recursive else " (folders match only with recursive=True)")
                + "; check the pattern, or pass missing_ok=True if nothing to delete is fine"
            )
        return found


__all__ = ["RemoteCopyOperator", "RemoteDeleteOperator"]
