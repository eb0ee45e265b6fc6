"""The one file API both hooks implement: ``RemoteFiles`` and its ``RemoteEntry`` (matching: ``matching``).

Everything above the hooks (operators, sensors, triggers) is written against this protocol, so a feature is
written once for both services. A service's hook supplies ``info``/``ainfo`` and a walk of a folder
(``_walk``/``_awalk``); ``list``, ``alist``, ``exists`` and ``aexists`` are defined here once, on top of them.
"""

from __future__ import annotations

import abc
import builtins
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from dropbox_box_provider.deprecation import warn_deprecated
from dropbox_box_provider.errors import InvalidArgument, InvalidRemotePath, NotFound
from dropbox_box_provider.hooks.matching import EntryFilter
from dropbox_box_provider.lineage import HookCall, reports_lineage

EntryKind = Literal["file", "folder"]
HashAlgorithm = Literal["dropbox-content-hash", "sha1"]
#: Who a shared link lets in: anyone with it, the team / company, or only people the item is shared with.
SharedLinkAccess = Literal["public", "team", "collaborators"]
SHARED_LINK_ACCESS: tuple[SharedLinkAccess, ...] = ("public", "team", "collaborators")

# The file calls that move content: each reports its input and output assets once.
LINEAGE_CALLS: tuple[HookCall, ...] = (
    "upload_file",
    "write_bytes",
    "download_file",
    "read_bytes",
    "copy",
    "move",
)


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
    #: Box's ``etag`` (pass it as ``etag=`` to refuse a lost update); None on Dropbox.
    etag: str | None = field(default=None, compare=False)

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


@dataclass(frozen=True)
class RemoteVersion:
    """One version of a file, newest first in ``versions()``: ``id`` is what ``download_file(...,
    version=)`` takes (a Dropbox ``rev``, a Box file version id); ``current`` marks the live one."""

    id: str
    size: int | None
    modified: datetime | None
    content_hash: str | None
    hash_algorithm: HashAlgorithm | None
    current: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for XComs (no raw metadata)."""
        return {
            "id": self.id,
            "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
            "content_hash": self.content_hash,
            "hash_algorithm": self.hash_algorithm,
            "current": self.current,
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

    def download_file(
        self, remote: str | RemoteEntry, local: str | os.PathLike[str], version: str | None = None
    ) -> Path:
        """Download atomically to ``local`` (``version``: an id from ``versions``), size checked and,
        unless the hook's ``verify_checksums`` is off, checksum verified. ``remote`` may be an entry from
        ``list``: what it carries spares a metadata request where the service needs one (Box)."""
        ...

    def read_bytes(self, remote: str) -> bytes:
        """A small file's content, checksum verified (unless ``verify_checksums`` is off)."""
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

    def search(self, query: str, path: str | None = None, limit: int | None = None) -> Iterator[RemoteEntry]:
        """Files and folders whose name contains ``query`` (case-insensitive), under ``path`` if given."""
        ...

    def temporary_link(self, path: str) -> str:
        """A direct download URL of a file, usable without a token until it expires."""
        ...

    def shared_link(
        self,
        path: str,
        access: SharedLinkAccess = "public",
        password: str | None = None,
        expires: datetime | str | None = None,
    ) -> str:
        """A shared link to the item (an existing link is returned, not an error)."""
        ...

    def versions(self, path: str) -> builtins.list[RemoteVersion]:
        """The file's versions, newest (the current one) first."""
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

    def upload_files(
        self,
        pairs: Sequence[tuple[str | os.PathLike[str], str]],
        overwrite: bool = False,
        *,
        max_active_transfers: int | None = None,
    ) -> builtins.list[RemoteEntry]:
        """``upload_file`` for each ``(local, remote)`` pair, several at once; entries in ``pairs`` order."""
        ...

    def download_files(
        self,
        pairs: Sequence[tuple[str | RemoteEntry, str | os.PathLike[str]]],
        *,
        max_active_transfers: int | None = None,
    ) -> builtins.list[Path]:
        """``download_file`` for each ``(remote, local)`` pair, several at once; paths in ``pairs`` order.
        Pass the entries of ``list`` as ``remote`` to spare a metadata request per file (Box)."""
        ...


# ---------------------------------------------------------------------- shared implementation


class RemoteFilesBase(abc.ABC):
    """``list``/``alist``/``exists``/``aexists`` once for both hooks, over their ``info`` and folder walks;
    the transfers a hook defines (``LINEAGE_CALLS``) report their lineage (``lineage.reports_lineage``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in LINEAGE_CALLS:
            if name in cls.__dict__:
                setattr(cls, name, reports_lineage(name)(cls.__dict__[name]))

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

    # Many files: the hooks' own upload_file/download_file, ``max_active_transfers`` at a time, sharing one
    # back-off (a 429 pauses them all). A hook may send many files a better way (Dropbox batches commits).

    def upload_files(
        self,
        pairs: Sequence[tuple[str | os.PathLike[str], str]],
        overwrite: bool = False,
        *,
        max_active_transfers: int | None = None,
    ) -> builtins.list[RemoteEntry]:
        """Upload each ``(local, remote)`` pair as ``upload_file`` would, up to ``max_active_transfers``
        (default 4) at once; the entries in ``pairs`` order. The first failure is raised once the files
        already moving have landed."""
        from dropbox_box_provider.hooks.parallel import map_bounded

        upload = self.upload_file  # type: ignore[attr-defined]
        limit = active_limit(max_active_transfers)
        return map_bounded(lambda pair: upload(pair[0], pair[1], overwrite), tuple(pairs), limit)

    def download_files(
        self,
        pairs: Sequence[tuple[str | RemoteEntry, str | os.PathLike[str]]],
        *,
        max_active_transfers: int | None = None,
    ) -> builtins.list[Path]:
        """Download each ``(remote, local)`` pair as ``download_file`` would, up to
        ``max_active_transfers`` (default 4) at once; the local paths in ``pairs`` order. A ``remote`` that
        is an entry from ``list`` spares Box a metadata request per file."""
        from dropbox_box_provider.hooks.parallel import map_bounded

        download = self.download_file  # type: ignore[attr-defined]
        limit = active_limit(max_active_transfers)
        return map_bounded(lambda pair: download(pair[0], pair[1]), tuple(pairs), limit)


def active_limit(given: int | None) -> int:
    """Files moved at once: ``given``, else 4 (operators pass ``[dropbox_box] max_active_transfers``)."""
    from dropbox_box_provider.hooks.parallel import DEFAULT_MAX_ACTIVE_TRANSFERS

    if given is None:
        return DEFAULT_MAX_ACTIVE_TRANSFERS
    if int(given) < 1:
        raise InvalidArgument(f"max_active_transfers must be 1 or more, got {given!r}")
    return int(given)
