"""``RemoteFileSystem``: an fsspec ``AbstractFileSystem`` written once against ``RemoteFiles``.

Paths are display paths from the root (``/inbox/a.csv``); a URL's authority (``dropbox://CONN_ID@/…``) names
the connection. Service errors become the OS errors fsspec callers expect, the typed error chained.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import Any, ClassVar

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from dropbox_box_provider.errors import AlreadyExists, InvalidRemotePath, NotFound, PreconditionFailed
from dropbox_box_provider.hooks.files import RemoteEntry
from dropbox_box_provider.lineage import reported_elsewhere
from dropbox_box_provider.uris import canonical_uri, normalize, split_url

# The write buffer: a multiple of Dropbox's 4 MiB content-hash block, which its upload sessions require.
WRITE_BLOCK = 4 * 1024 * 1024

# Inside put()/get(): the (source, target, put_file/get_file keywords) fsspec asked for, moved together after.
_planned: contextvars.ContextVar[list[tuple[str, str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "planned_transfers", default=None
)


@contextlib.contextmanager
def os_errors(path: str) -> Iterator[None]:
    """The typed service errors as the OS errors fsspec and pathlib callers catch (cause chained)."""
    try:
        yield
    except NotFound as exc:
        raise FileNotFoundError(errno.ENOENT, str(exc), path) from exc
    except AlreadyExists as exc:
        raise FileExistsError(errno.EEXIST, str(exc), path) from exc
    except PreconditionFailed as exc:
        raise OSError(errno.ENOTEMPTY, str(exc), path) from exc
    except InvalidRemotePath as exc:
        raise NotADirectoryError(errno.ENOTDIR, str(exc), path) from exc


@contextlib.contextmanager
def hook_call(path: str) -> Iterator[None]:
    """Around every hook call: ``os_errors``, and no lineage from the hook (``ObjectStoragePath`` reports
    the reads and writes made through it, so the hook would report them twice)."""
    with reported_elsewhere(), os_errors(path):
        yield


def entry_info(entry: RemoteEntry) -> dict[str, Any]:
    """fsspec's info dict of an entry (``name`` without protocol, ``type`` file/directory)."""
    return {
        "name": normalize(entry.path),
        "size": entry.size or 0,
        "type": "file" if entry.is_file else "directory",
        "id": entry.id,
        "ref": entry.ref if entry.id else None,
        "modified": entry.modified,
        "mtime": entry.modified.timestamp() if entry.modified else None,
        "content_hash": entry.content_hash,
        "hash_algorithm": entry.hash_algorithm,
    }


class RemoteFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """One connection's files as an fsspec filesystem; subclasses name the protocol and build the hook."""

    protocol: ClassVar[tuple[str, ...]] = ()
    file_class: ClassVar[type[RemoteFile]]
    root_marker = "/"
    default_conn_id: ClassVar[str] = ""

    def __init__(
        self,
        conn_id: str | None = None,
        hook: Any = None,
        max_active_transfers: int | None = None,
        **storage_options: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, max_active_transfers=max_active_transfers, **storage_options)
        self.conn_id = conn_id or self.default_conn_id
        self._hook = hook
        self.max_active_transfers = max_active_transfers  # files put()/get() move at once (default 4)

    # ------------------------------------------------------------------ the hook and paths

    def make_hook(self, conn_id: str) -> Any:
        """The service's hook for ``conn_id`` (imported here, so importing a hook never loads fsspec)."""
        raise NotImplementedError

    @property
    def hook(self) -> Any:
        """The ``RemoteFiles`` hook this filesystem reads and writes through (created on first use)."""
        if self._hook is None:
            self._hook = self.make_hook(self.conn_id)
        return self._hook

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return split_url(str(path), cls.protocol)[1]

    @classmethod
    def _get_kwargs_from_urls(cls, path: str) -> dict[str, Any]:
        conn_id, _ = split_url(path, cls.protocol)
        return {"conn_id": conn_id} if conn_id else {}

    def unstrip_protocol(self, name: str) -> str:
        """The canonical URL of a path: ``scheme://CONN_ID@/path`` (the asset URI form)."""
        return canonical_uri(self.protocol[0], self.conn_id, self._strip_protocol(name))

    @property
    def fsid(self) -> str:
        """Filesystems of the same connection are the same store."""
        return f"{self.protocol[0]}-{self.conn_id}"

    # ------------------------------------------------------------------ reading metadata

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """fsspec info of one file or folder; FileNotFoundError when absent."""
        target = self._strip_protocol(path)
        with hook_call(target):
            return entry_info(self.hook.info(target))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """A folder's children (a file lists itself, as fsspec expects)."""
        target = self._strip_protocol(path)
        with hook_call(target):
            entry = self.hook.info(target)
            entries = [entry] if entry.is_file else list(self.hook.list(target))
        infos = [entry_info(e) for e in entries]
        return infos if detail else [i["name"] for i in infos]

    def modified(self, path: str) -> Any:
        """The file's modification time (aware); folders have none."""
        return self.info(path)["modified"]

    def ukey(self, path: str) -> str:
        """The service's content hash: equal keys mean equal bytes, also across services of one kind."""
        info = self.info(path)
        return f"{info['hash_algorithm']}:{info['content_hash']}" if info["content_hash"] else info["name"]

    def checksum(self, path: str) -> int:
        """An int from the service's content hash (fsspec's ``checksum`` contract)."""
        info = self.info(path)
        if info["content_hash"]:
            return int(str(info["content_hash"])[:16], 16)
        return int(super().checksum(path))

    # ------------------------------------------------------------------ folders and deletion

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create a folder; FileExistsError when something is there already."""
        target = self._strip_protocol(path)
        with hook_call(target):
            if self.hook.exists(target):
                raise FileExistsError(errno.EEXIST, f"{target!r} already exists", target)
            self.hook.mkdir(target, parents=create_parents, exist_ok=False)
        self.invalidate_cache(target)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create a folder and its parents."""
        target = self._strip_protocol(path)
        with hook_call(target):
            self.hook.mkdir(target, parents=True, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder."""
        target = self._strip_protocol(path)
        with hook_call(target):
            self.hook.delete(target)

    def rm_file(self, path: str) -> None:
        """Remove one file."""
        target = self._strip_protocol(path)
        with hook_call(target):
            self.hook.delete(target)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Remove files, or folders with ``recursive`` (one service call each: folders go whole)."""
        paths = path if isinstance(path, list) else [path]
        for item in paths:
            targets = (
                self.expand_path(item, recursive=False) if any(c in str(item) for c in "*?[") else [item]
            )
            for target in targets:
                stripped = self._strip_protocol(target)
                with hook_call(stripped):
                    self.hook.delete(stripped, recursive=recursive)

    # ------------------------------------------------------------------ copies and moves on one service

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Server-side copy (the destination is replaced, as fsspec copies do)."""
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        with hook_call(source):
            self.hook.copy(source, target, overwrite=True)

    def mv(
        self, path1: str, path2: str, recursive: bool = False, maxdepth: int | None = None, **kw: Any
    ) -> None:
        """Server-side move or rename (folders move whole)."""
        if isinstance(path1, list) or any(c in str(path1) for c in "*?["):
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kw)
            return
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        with hook_call(source):
            self.hook.move(source, target, overwrite=True)

    # ------------------------------------------------------------------ local files

    def put(self, lpath: Any, rpath: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Upload files (fsspec's path rules): folders first, then the files ``max_active_transfers`` at
        once through the hook's ``upload_files`` (Dropbox commits small ones in batches)."""
        planned = self._plan(super().put, lpath, rpath, recursive=recursive, **kwargs)
        files = []
        for source, target, options in planned:
            if os.path.isdir(source):
                self.put_file(source, target, **options)
            else:
                files.append((source, target, options.get("mode", "overwrite") == "overwrite"))
        for overwrite in (True, False):
            pairs = [(source, self._strip_protocol(target)) for source, target, o in files if o is overwrite]
            if pairs:
                with hook_call(pairs[0][1]):
                    self.hook.upload_files(pairs, overwrite, max_active_transfers=self.max_active_transfers)
        if files:
            self.invalidate_cache()

    def get(self, rpath: Any, lpath: Any, recursive: bool = False, **kwargs: Any) -> None:
        """Download files (fsspec's path rules), ``max_active_transfers`` at once."""
        from dropbox_box_provider.hooks.parallel import map_bounded

        planned = self._plan(super().get, rpath, lpath, recursive=recursive, **kwargs)
        limit = self.max_active_transfers or 4
        map_bounded(lambda p: self.get_file(p[0], p[1], **p[2]), planned, max(1, int(limit)))

    def _plan(self, method: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str, dict[str, Any]]]:
        """The (source, target, keywords) pairs fsspec's own ``put``/``get`` would move one by one."""
        kwargs.pop("callback", None)
        planned: list[tuple[str, str, dict[str, Any]]] = []
        token = _planned.set(planned)
        try:
            method(*args, **kwargs)
        finally:
            _planned.reset(token)
        return planned

    def put_file(
        self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kw: Any
    ) -> None:
        """Upload a local file (streamed from disk by the hook, checksum verified)."""
        if (planned := _planned.get()) is not None:
            planned.append((lpath, rpath, {"mode": mode, **kw}))
            return
        target = self._strip_protocol(rpath)
        with hook_call(target):
            if os.path.isdir(lpath):
                self.hook.mkdir(target, parents=True, exist_ok=True)
                return
            self.hook.upload_file(lpath, target, overwrite=mode == "overwrite")

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kw: Any) -> None:
        """Download a file atomically to a local path (checksum verified); a folder becomes a directory."""
        if (planned := _planned.get()) is not None:
            planned.append((rpath, lpath, dict(kw)))
            return
        source = self._strip_protocol(rpath)
        with hook_call(source):
            if self.hook.info(source).kind == "folder":
                os.makedirs(lpath, exist_ok=True)
                return
            parent = os.path.dirname(os.fspath(lpath))
            if parent:
                os.makedirs(parent, exist_ok=True)
            self.hook.download_file(source, lpath)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kw: Any) -> bytes:
        """A whole file (checksum verified) or a range of it (one ranged request)."""
        target = self._strip_protocol(path)
        with hook_call(target):
            if start is None and end is None:
                return bytes(self.hook.read_bytes(target))
            entry = self.hook.info(target)
            size = entry.size or 0
            first = max(0, size + start if start is not None and start < 0 else start or 0)
            last = size if end is None else min(size, size + end if end < 0 else end)
            return bytes(self.hook.read_range(entry.ref, first, last))

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> RemoteFile:
        if mode not in ("rb", "wb", "xb"):
            raise ValueError(
                f"mode {mode!r} is not supported: open for 'rb' or 'wb' ('ab' has no service call)"
            )
        return self.file_class(
            self,
            self._strip_protocol(path),
            mode=mode,
            block_size=block_size or WRITE_BLOCK,
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )


class RemoteFile(AbstractBufferedFile):  # type: ignore[misc]
    """Reads: ranged requests through fsspec's read-ahead cache. Writes: blocks spooled to a bounded
    temporary file (Box's chunked upload needs the size first), uploaded on close through the hook
    (checksum verified)."""

    fs: RemoteFileSystem

    def __init__(self, fs: RemoteFileSystem, path: str, mode: str = "rb", **kwargs: Any) -> None:
        self._spool: Any = None
        if mode != "rb":
            try:
                existing = fs.info(path)
            except FileNotFoundError:
                existing = None
            if existing is not None and existing["type"] == "directory":
                raise IsADirectoryError(
                    errno.EISDIR, f"{path!r} is a folder; write to a file path inside it", path
                )
            if existing is not None and mode == "xb":
                raise FileExistsError(errno.EEXIST, f"{path!r} already exists", path)
        super().__init__(fs, path, mode=mode, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        ref = self.details.get("ref") or self.path
        with hook_call(self.path):
            return bytes(self.fs.hook.read_range(ref, start, end))

    def _initiate_upload(self) -> None:
        self._spool = tempfile.NamedTemporaryFile(prefix="fsspec-", suffix=".part", delete=False)  # noqa: SIM115

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._spool is None:
            self._initiate_upload()
        self._spool.write(self.buffer.getvalue())
        if not final:
            return True
        self._spool.close()
        try:
            with hook_call(self.path):
                self.fs.hook.upload_file(self._spool.name, self.path, overwrite=self.mode != "xb")
        finally:
            os.unlink(self._spool.name)
            self._spool = None
        self.fs.invalidate_cache(self.path)
        return True

    def discard(self) -> None:
        """Drop what was written (nothing reaches the service)."""
        if self._spool is not None:
            self._spool.close()
            os.unlink(self._spool.name)
            self._spool = None


class StreamedFile(RemoteFile):
    """Writes streamed into the service's upload session as they come (Dropbox): 4 MiB-multiple pieces,
    the remainder (< 4 MiB) kept for the next flush; no temporary file."""

    def _initiate_upload(self) -> None:
        self._spool = self.fs.hook.open_upload(self.path, overwrite=self.mode != "xb")
        self._pending = b""

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._spool is None:
            self._initiate_upload()
        data = self._pending + self.buffer.getvalue()
        with hook_call(self.path):
            if final:
                self._spool.finish(data)
                self._spool, self._pending = None, b""
                self.fs.invalidate_cache(self.path)
                return True
            whole = len(data) - len(data) % WRITE_BLOCK
            self._spool.append(data[:whole])
        self._pending = data[whole:]
        return True

    def discard(self) -> None:
        """Drop what was written (an unfinished Dropbox session expires by itself)."""
        self._spool, self._pending = None, b""


RemoteFileSystem.file_class = RemoteFile
