"""The one file API both hooks implement: ``RemoteFiles``, its ``RemoteEntry``, and the matching rules.

Everything above the hooks (operators, sensors, triggers) is written against this module, so a feature is
written once for both services. A service's hook supplies ``info``/``ainfo`` and a walk of a folder
(``_walk``/``_awalk``); ``list``, ``alist``, ``exists`` and ``aexists`` are defined here once, on top of them.
"""

from __future__ import annotations

import abc
import builtins
import fnmatch
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from dropbox_box_provider.deprecation import warn_deprecated
from dropbox_box_provider.errors import InvalidArgument, InvalidRemotePath, NotFound, UnsafePath

EntryKind = Literal["file", "folder"]
HashAlgorithm = Literal["dropbox-content-hash", "sha1"]
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class RemoteEntry:
    """A file or folder as both services describe it; ``raw`` is the service's own metadata.

    ``path`` is the display path from the root (``/a/b.csv``); ``ref`` is an address every method of the
    same hook accepts (the item's id as ``id:<id>``), stable across renames. ``modified`` (aware) and the
    hash are a file's; folders have neither (Dropbox keeps no folder times).
    """

    path: str
    name: str
    id: str
    kind: EntryKind
    size: int | None = None
    modified: datetime | None = None
    content_hash: str | None = None
    hash_algorithm: HashAlgorithm | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_file(self) -> bool:
        """True for a file, False for a folder."""
        return self.kind == "file"

    @property
    def ref(self) -> str:
        """``id:<id>``: the item by id (Dropbox ids already carry the prefix)."""
        return self.id if self.id.startswith("id:") else f"id:{self.id}"

    def __getitem__(self, key: str) -> Any:
        """Deprecated: the service's metadata field ``key`` (what the hooks returned before RemoteEntry)."""
        warn_deprecated("indexing a hook's result like a dict", "the RemoteEntry attributes, or entry.raw")
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated: ``raw.get(key, default)``."""
        warn_deprecated("RemoteEntry.get()", "the RemoteEntry attributes, or entry.raw.get()")
        return self.raw.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for XComs and trigger events (no raw metadata)."""
        return {
            "path": self.path,
            "name": self.name,
            "id": self.id,
            "kind": self.kind,
            "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
            "content_hash": self.content_hash,
            "hash_algorithm": self.hash_algorithm,
        }


@runtime_checkable
class RemoteFiles(Protocol):
    """Files and folders of one Dropbox or Box connection: the same names, arguments, returns and errors.

    Missing items raise ``NotFound``, taken names ``AlreadyExists``, corrupted transfers ``ChecksumMismatch``,
    a non-empty folder deleted without ``recursive`` ``PreconditionFailed``.
    """

    def info(self, path: str) -> RemoteEntry:
        """The entry at ``path`` (or ``id:<id>``); ``NotFound`` when absent."""
        ...

    def exists(self, path: str) -> bool:
        """True when a file or folder is at ``path``."""
        ...

    def list(
        self,
        path: str,
        recursive: bool = False,
        pattern: str | None = None,
        modified_after: datetime | None = None,
    ) -> Iterator[RemoteEntry]:
        """Entries under the folder ``path`` (never the folder itself); see ``EntryFilter``."""
        ...

    def upload_file(self, local: str | os.PathLike[str], remote: str, overwrite: bool = False) -> RemoteEntry:
        """Upload a local file to ``remote`` (``.../`` means into that folder under the local name)."""
        ...

    def download_file(self, remote: str, local: str | os.PathLike[str]) -> Path:
        """Download atomically to ``local``, checksum verified; returns the local path."""
        ...

    def read_bytes(self, remote: str) -> bytes:
        """A small file's content, checksum verified."""
        ...

    def write_bytes(self, remote: str, data: bytes, overwrite: bool = False) -> RemoteEntry:
        """Write a small file at ``remote``."""
        ...

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = True) -> RemoteEntry:
        """Create a folder (and missing parents)."""
        ...

    def delete(self, path: str, recursive: bool = False, missing_ok: bool = False) -> None:
        """Delete a file, or a folder (a non-empty one only with ``recursive``)."""
        ...

    def move(self, src: str, dst: str, overwrite: bool = False) -> RemoteEntry:
        """Move or rename ``src`` to the full path ``dst``."""
        ...

    def copy(self, src: str, dst: str, overwrite: bool = False) -> RemoteEntry:
        """Copy ``src`` to the full path ``dst``."""
        ...

    async def ainfo(self, path: str) -> RemoteEntry:
        """Async ``info``."""
        ...

    def alist(
        self,
        path: str,
        recursive: bool = False,
        pattern: str | None = None,
        modified_after: datetime | None = None,
    ) -> AsyncIterator[RemoteEntry]:
        """Async ``list`` (an async generator)."""
        ...

    async def aexists(self, path: str) -> bool:
        """Async ``exists``."""
        ...


# ---------------------------------------------------------------------- times and patterns


def aware_time(value: datetime | str | float | None) -> datetime | None:
    """An aware datetime from a datetime, ISO-8601 text (a rendered template) or Unix seconds.

    ``None`` and empty text mean "no time"; a naive datetime is taken as UTC.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)):
        parsed = datetime.fromtimestamp(float(value), tz=UTC)
    else:
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise InvalidArgument(
                f"{value!r} is not a time: give a datetime, ISO-8601 text such as '2024-05-01T12:00:00Z' or "
                "a template rendering to one (e.g. '{{ data_interval_start }}')"
            ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def iso_or_none(value: datetime | None) -> str | None:
    """ISO-8601 text for trigger kwargs and XComs (which must stay plain JSON)."""
    return value.isoformat() if value is not None else None


def has_glob(text: str) -> bool:
    """True when ``text`` holds a glob wildcard (``*``, ``?`` or ``[``)."""
    return any(char in GLOB_CHARS for char in text)


def split_remote_pattern(remote: str) -> tuple[str, str | None]:
    """``("/folder", "*.csv")`` for a remote path whose last segment is a glob, else ``(remote, None)``."""
    text = str(remote).strip()
    if not has_glob(text):
        return text, None
    folder, _, pattern = text.rstrip("/").rpartition("/")
    if has_glob(folder):
        raise InvalidRemotePath(
            f"remote pattern {remote!r} has wildcards before its last segment; only the file name may hold "
            "them, e.g. '/reports/2024-*.csv' (or call list(folder, recursive=True, pattern='**/*.csv'))"
        )
    return folder or "/", pattern


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A case-insensitive regex for a glob: ``*`` and ``?`` stay inside one folder, ``**`` crosses folders
    (``**/`` also matches no folder at all)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out.append(re.escape("["))
                index += 1
                continue
            body = pattern[index + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"[{body}]")
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def name_matches(name: str, pattern: str) -> bool:
    """Glob match of one name, ignoring case (both services compare names case-insensitively)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


@dataclass(frozen=True)
class EntryFilter:
    """What ``list`` keeps: ``pattern`` is a glob on the entry's name, or on its path relative to the listed
    folder when recursive (``**`` crosses folders); ``modified_after`` keeps entries modified strictly
    later (folders without a time are dropped then)."""

    recursive: bool = False
    pattern: str | None = None
    modified_after: datetime | None = None

    @classmethod
    def of(cls, recursive: bool, pattern: str | None, modified_after: datetime | str | None) -> EntryFilter:
        """Validated filter (naive times are UTC)."""
        if pattern is not None and not isinstance(pattern, str):
            raise InvalidArgument(f"pattern must be a glob string, got {type(pattern).__name__}")
        return cls(bool(recursive), pattern or None, aware_time(modified_after))

    def keeps(self, relative: str, entry: RemoteEntry) -> bool:
        """True when ``entry`` (at ``relative`` below the listed folder) passes."""
        if self.pattern is not None:
            target = relative if self.recursive else entry.name
            if not compile_glob(self.pattern).match(target):
                return False
        if self.modified_after is not None:
            return entry.modified is not None and entry.modified > self.modified_after
        return True


def relative_path(base: str, path: str) -> str:
    """``path`` below ``base`` (both display paths), compared case-insensitively."""
    prefix = base.rstrip("/") + "/"
    return path[len(prefix) :] if path.lower().startswith(prefix.lower()) else path.rsplit("/", 1)[-1]


def safe_local_child(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder / name`` for a remote file name, refusing names that would land outside ``folder``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or ":" in name[:2]:
        raise UnsafePath(
            f"the remote name {name!r} cannot be written inside {os.fspath(folder)!r}: it would escape the "
            "folder; rename the remote file"
        )
    return Path(folder) / name


# ---------------------------------------------------------------------- shared implementation


class RemoteFilesBase(abc.ABC):
    """``list``/``alist``/``exists``/``aexists`` once for both hooks, over their ``info`` and folder walks."""

    @abc.abstractmethod
    def info(self, path: str) -> RemoteEntry:
        """The entry at ``path``; ``NotFound`` when absent."""

    @abc.abstractmethod
    async def ainfo(self, path: str) -> RemoteEntry:
        """Async ``info``."""

    @abc.abstractmethod
    def _walk(self, folder: RemoteEntry, recursive: bool) -> Iterator[tuple[str, RemoteEntry]]:
        """(path relative to ``folder``, entry) of everything below ``folder``."""

    @abc.abstractmethod
    def _awalk(self, folder: RemoteEntry, recursive: bool) -> AsyncIterator[tuple[str, RemoteEntry]]:
        """Async ``_walk``."""

    def _folder(self, path: str, entry: RemoteEntry) -> RemoteEntry:
        if entry.kind != "folder":
            raise InvalidRemotePath(f"{path!r} is a file, not a folder: list its folder instead")
        return entry

    def list(
        self,
        path: str = "/",
        recursive: bool = False,
        pattern: str | None = None,
        modified_after: datetime | None = None,
    ) -> Iterator[RemoteEntry]:
        """Entries under the folder ``path`` (not the folder itself), filtered by ``EntryFilter``."""
        rules = EntryFilter.of(recursive, pattern, modified_after)
        folder = self._folder(path, self.info(path))
        for relative, entry in self._walk(folder, rules.recursive):
            if rules.keeps(relative, entry):
                yield entry

    async def alist(
        self,
        path: str = "/",
        recursive: bool = False,
        pattern: str | None = None,
        modified_after: datetime | None = None,
    ) -> AsyncIterator[RemoteEntry]:
        """Async ``list``."""
        rules = EntryFilter.of(recursive, pattern, modified_after)
        folder = self._folder(path, await self.ainfo(path))
        async for relative, entry in self._awalk(folder, rules.recursive):
            if rules.keeps(relative, entry):
                yield entry

    def exists(self, path: str) -> bool:
        """True when a file or folder is at ``path``."""
        try:
            self.info(path)
        except NotFound:
            return False
        return True

    async def aexists(self, path: str) -> bool:
        """Async ``exists``."""
        try:
            await self.ainfo(path)
        except NotFound:
            return False
        return True


# ---------------------------------------------------------------------- matching files above the hooks


def find_files(files: RemoteFiles, remote: str, after: datetime | None = None) -> builtins.list[RemoteEntry]:
    """Files ``remote`` names (a path, ``id:``, or a glob in its last segment) modified after ``after``;
    ``[]`` when none (a missing folder or file is "nothing yet")."""
    folder, pattern = split_remote_pattern(remote)
    try:
        if pattern is None:
            found = [files.info(folder)]
        else:
            found = builtins.list(files.list(folder, pattern=pattern, modified_after=after))
    except NotFound:
        return []
    rules = EntryFilter(modified_after=after)
    return [e for e in found if e.is_file and rules.keeps(e.name, e)]


async def afind_files(
    files: RemoteFiles, remote: str, after: datetime | None = None
) -> builtins.list[RemoteEntry]:
    """Async ``find_files`` (triggers)."""
    folder, pattern = split_remote_pattern(remote)
    try:
        if pattern is None:
            found = [await files.ainfo(folder)]
        else:
            found = [e async for e in files.alist(folder, pattern=pattern, modified_after=after)]
    except NotFound:
        return []
    rules = EntryFilter(modified_after=after)
    return [e for e in found if e.is_file and rules.keeps(e.name, e)]
