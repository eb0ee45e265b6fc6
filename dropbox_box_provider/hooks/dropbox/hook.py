"""DropboxHook: a Dropbox connection (conn type ``dropbox``) with OAuth tokens that stay valid, implementing
the ``RemoteFiles`` API (info, list, upload/download with ``content_hash`` verification unless
``verify_checksums`` is off, mkdir, delete, move, copy). Dropbox specifics (``rev:`` paths, team headers,
raw RPC) stay here."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from dropbox_box_provider.auth.services import DROPBOX, error_details
from dropbox_box_provider.deprecation import warn_deprecated
from dropbox_box_provider.errors import (
    AlreadyExists,
    DropboxBoxError,
    InvalidArgument,
    NotFound,
    PreconditionFailed,
    ServiceError,
)
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.dropbox.changes import DropboxChanges
from dropbox_box_provider.hooks.dropbox.limits import DEFAULT_CHUNK_SIZE, SINGLE_UPLOAD_LIMIT
from dropbox_box_provider.hooks.dropbox.paths import (
    ROOT,
    entry_of,
    is_root,
    normalize_path,
    path_root_header,
)
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFilesBase, RemoteVersion, SharedLinkAccess
from dropbox_box_provider.hooks.matching import local_file, relative_path
from dropbox_box_provider.hooks.progress import DEFAULT_INTERVAL
from dropbox_box_provider.lazy import lazy_module
from dropbox_box_provider.lineage import report_upload

# Loaded with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from dropbox_box_provider.auth import transport
    from dropbox_box_provider.auth.config import Service
    from dropbox_box_provider.hooks.dropbox import download, file_api, stream, upload
    from dropbox_box_provider.hooks.dropbox.stream import StreamingUpload
else:
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())
    download = lazy_module("dropbox_box_provider.hooks.dropbox.download", globals())
    file_api = lazy_module("dropbox_box_provider.hooks.dropbox.file_api", globals())
    stream = lazy_module("dropbox_box_provider.hooks.dropbox.stream", globals())
    upload = lazy_module("dropbox_box_provider.hooks.dropbox.upload", globals())

_RPC_HEADERS = {"Content-Type": "application/json"}

#: Appended to "not found": an App folder app sees only its folder, and its paths start inside it.
APP_FOLDER_HINT = (
    "; if the app has App folder access, its paths start inside /Apps/<app name> (write /reports for "
    "/Apps/<app name>/reports) and nothing outside that folder is visible to it"
)
_MODES = ("add", "overwrite")


def _overwrite_from_mode(mode: Any, method: str) -> bool:
    """The deprecated ``mode`` argument as ``overwrite`` (``add`` -> False, ``overwrite`` -> True)."""
    warn_deprecated(f"DropboxHook.{method}(mode=...)", f"DropboxHook.{method}(..., overwrite=True|False)")
    if mode not in _MODES:
        raise InvalidArgument(f"upload mode {mode!r} is not supported: use 'add' or 'overwrite'")
    return bool(mode == "overwrite")


class DropboxHook(BaseOAuthHook, RemoteFilesBase, DropboxChanges):
    """Hook for one Dropbox connection (user OAuth with refresh, PKCE, or a static token; team headers)."""

    service: ClassVar[Service] = "dropbox"
    conn_type = "dropbox"
    default_conn_name = "dropbox_default"
    hook_name = "Dropbox"
    conn_id_keyword: ClassVar[str] = "dropbox_conn_id"

    # Airflow < 3.2 reads these two only from the hook's own class dict, never from a base class.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form widgets of the Dropbox extras (Airflow < 3.2)."""
        return super().get_connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard-field behaviour of the Dropbox form (Airflow < 3.2)."""
        return super().get_ui_field_behaviour()

    # ------------------------------------------------------------------ plumbing

    def act_as_headers(self) -> dict[str, str]:
        """Team apps: ``Dropbox-API-Select-User`` (member) and ``Dropbox-API-Path-Root`` (namespace)."""
        config = self.get_auth_config()
        headers: dict[str, str] = {}
        if config.select_user:
            headers["Dropbox-API-Select-User"] = config.select_user
        if config.path_root:
            headers["Dropbox-API-Path-Root"] = path_root_header(config.path_root)
        return headers

    def rpc(self, route: str, arg: Any = None) -> Any:
        """Call an RPC route (``files/get_metadata``...) with a JSON argument; returns the JSON result."""
        body = b"null" if arg is None else json.dumps(arg).encode()
        response = self.request("POST", f"{DROPBOX.api_base}/{route}", content=body, headers=_RPC_HEADERS)
        return response.json()

    async def arpc(self, route: str, arg: Any = None) -> Any:
        """Async twin of ``rpc``."""
        body = b"null" if arg is None else json.dumps(arg).encode()
        response = await self.arequest(
            "POST", f"{DROPBOX.api_base}/{route}", content=body, headers=_RPC_HEADERS
        )
        return response.json()

    def error_for(self, response: httpx.Response) -> DropboxBoxError:
        """Route errors (409) as NotFound / AlreadyExists where the tag says so, else the generic mapping."""
        error = super().error_for(response)
        if response.status_code == 409 and isinstance(error, ServiceError):
            # Upload errors nest the tag under "reason"; the summary names the whole path of tags.
            summary = error_details("dropbox", response).summary or ""
            tags = {*(error.code or "").split("/"), *summary.split("/")}
            code = summary or error.code
            if "not_found" in tags:
                return NotFound(f"{error}{APP_FOLDER_HINT}", status=409, code=code)
            if "conflict" in tags:
                return AlreadyExists(str(error), status=409, code=code)
        return error

    # ------------------------------------------------------------------ account

    def get_current_account(self) -> dict[str, Any]:
        """``users/get_current_account``: who the token (or selected team member) is."""
        result: dict[str, Any] = self.rpc("users/get_current_account")
        return result

    def describe_account(self) -> str:
        """``Display Name <email> (dbid:…)`` for the connection test."""
        account = self.get_current_account()
        name = (account.get("name") or {}).get("display_name") or "unknown name"
        return f"{name} <{account.get('email', 'no email')}> ({account.get('account_id', 'no account id')})"

    def get_sdk_client(self) -> Any:
        """The official SDK's ``dropbox.Dropbox`` on this connection, for any API the hook lacks.

        Every token it sends comes from this provider's TokenManager (refreshed once per expiry across
        workers; an ``expired_access_token`` renews through the store's lease); the endpoint override and
        the team headers (``select_user``, ``path_root``) apply. Needs the ``[sdk]`` extra:
        ``pip install 'airflow-provider-dropbox-box[sdk]'``.
        """
        from dropbox_box_provider.hooks.sdk import import_sdk

        import_sdk("dropbox", "dropbox")
        from dropbox_box_provider.hooks.dropbox.sdk import dropbox_sdk_client

        return dropbox_sdk_client(self)

    # ------------------------------------------------------------------ RemoteFiles: reading

    def info(self, path: str) -> RemoteEntry:
        """The entry at ``path`` (``/a/b``, ``id:…``, ``rev:…``, the root); NotFound when absent."""
        if is_root(path):
            return ROOT
        return entry_of(self.rpc("files/get_metadata", {"path": normalize_path(path)}))

    async def ainfo(self, path: str) -> RemoteEntry:
        """Async ``info``."""
        if is_root(path):
            return ROOT
        return entry_of(await self.arpc("files/get_metadata", {"path": normalize_path(path)}))

    @staticmethod
    def _list_arg(path: str, recursive: bool, limit: int | None) -> dict[str, Any]:
        arg: dict[str, Any] = {"path": normalize_path(path, allow_root=True), "recursive": recursive}
        if limit is not None:
            if not 1 <= limit <= 2000:
                raise InvalidArgument(f"limit {limit} is out of range: Dropbox pages hold 1 to 2000 entries")
            arg["limit"] = limit
        return arg

    @staticmethod
    def _is_listed_folder(entry: dict[str, Any], arg: dict[str, Any]) -> bool:
        """A recursive listing's entry for the listed folder itself (Dropbox puts it first)."""
        path = arg["path"]
        return bool(arg["recursive"] and path) and (
            path.lower() == entry.get("path_lower") or path == entry.get("id")
        )

    def _pages(self, path: str, recursive: bool, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Raw ``list_folder`` entries below ``path`` (never the folder itself), following cursors."""
        arg = self._list_arg(path, recursive, limit)
        page = self.rpc("files/list_folder", arg)
        while True:
            yield from (e for e in page.get("entries", []) if not self._is_listed_folder(e, arg))
            if not page.get("has_more"):
                return
            page = self.rpc("files/list_folder/continue", {"cursor": page["cursor"]})

    async def _apages(
        self, path: str, recursive: bool, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        arg = self._list_arg(path, recursive, limit)
        page = await self.arpc("files/list_folder", arg)
        while True:
            for entry in page.get("entries", []):
                if not self._is_listed_folder(entry, arg):
                    yield entry
            if not page.get("has_more"):
                return
            page = await self.arpc("files/list_folder/continue", {"cursor": page["cursor"]})

    @staticmethod
    def _listed(folder: RemoteEntry, raw: dict[str, Any]) -> tuple[str, RemoteEntry] | None:
        """(relative path, entry) of a listed item; None for the listed folder itself (recursive lists)."""
        entry = entry_of(raw)
        if entry.path.lower() == folder.path.lower() or (folder.id and entry.id == folder.id):
            return None
        return relative_path(folder.path, entry.path), entry

    def _walk(self, folder: RemoteEntry, recursive: bool) -> Iterator[tuple[str, RemoteEntry]]:
        for raw in self._pages(folder.ref if folder.id else folder.path, recursive):
            listed = self._listed(folder, raw)
            if listed is not None:
                yield listed

    async def _awalk(self, folder: RemoteEntry, recursive: bool) -> AsyncIterator[tuple[str, RemoteEntry]]:
        async for raw in self._apages(folder.ref if folder.id else folder.path, recursive):
            listed = self._listed(folder, raw)
            if listed is not None:
                yield listed

    def read_bytes(self, remote: str) -> bytes:
        """A small file's content in memory, content_hash checked unless ``verify_checksums`` is off (use
        ``download_file`` for large files)."""
        return download.read_small(self, normalize_path(remote))

    def read_range(self, remote: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of a file, one ranged request (no checksum: a part)."""
        return download.read_range(self, normalize_path(remote), start, end)

    def download_file(
        self,
        remote: str | RemoteEntry,
        local: str | os.PathLike[str],
        version: str | None = None,
        *,
        progress_interval: float = DEFAULT_INTERVAL,
    ) -> Path:
        """Download to ``local`` through a temporary file beside it, check its size and (unless
        ``verify_checksums`` is off) its content_hash, then rename atomically; on any failure ``local`` is
        untouched. ``remote`` is a path, an ``id:``, or an entry from ``list()``; ``version`` is a ``rev``
        from ``versions()`` (it must be one of ``remote``'s). Returns ``local`` as a Path."""
        destination = Path(local)
        if isinstance(remote, RemoteEntry):
            remote = remote.ref if remote.id else remote.path
        source = normalize_path(remote)
        if version is not None:
            source = file_api.revision_path(self, source, version)
        download.download_to(self, source, destination, progress_interval=progress_interval)
        return destination

    # ------------------------------------------------------------------ RemoteFiles: writing

    def write_bytes(
        self, remote: str, data: bytes, overwrite: bool = False, **deprecated: Any
    ) -> RemoteEntry:
        """Upload small ``data`` (at most 150 MiB) in one request; the content_hash is checked unless
        ``verify_checksums`` is off.

        An existing file with the same content is not a conflict; different content needs ``overwrite``.
        """
        if "mode" in deprecated:
            overwrite = _overwrite_from_mode(deprecated.pop("mode"), "write_bytes")
        elif isinstance(overwrite, str):
            overwrite = _overwrite_from_mode(overwrite, "write_bytes")
        _no_more(deprecated, "write_bytes")
        path = normalize_path(remote)
        with _explained_conflict(path):
            return entry_of(upload.write_small(self, path, data, overwrite), "file")

    def upload_file(
        self,
        local: str | os.PathLike[str],
        remote: str,
        overwrite: bool = False,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        autorename: bool = False,
        single_request_limit: int = SINGLE_UPLOAD_LIMIT,
        progress_interval: float = DEFAULT_INTERVAL,
        **deprecated: Any,
    ) -> RemoteEntry:
        """Upload a local file, streamed from disk (memory stays flat whatever its size); the content_hash
        Dropbox reports is checked against the one computed while sending (unless ``verify_checksums`` is
        off: then none is computed).

        ``remote`` ending with ``/`` names the folder (the local file's name is kept). Files up to
        ``single_request_limit`` go in one request, larger ones through an upload session in ``chunk_size``
        pieces (a multiple of 4 MiB), resuming at Dropbox's offset if a piece's outcome was lost.
        """
        if "mode" in deprecated:
            overwrite = _overwrite_from_mode(deprecated.pop("mode"), "upload_file")
        elif isinstance(overwrite, str):
            overwrite = _overwrite_from_mode(overwrite, "upload_file")
        _no_more(deprecated, "upload_file")
        source = os.fspath(local_file(local))
        target = f"{remote}{Path(source).name}" if str(remote).endswith("/") else remote
        path = normalize_path(target)
        with _explained_conflict(path):
            metadata = upload.upload_local(
                self,
                source,
                path,
                overwrite,
                chunk_size=chunk_size,
                autorename=autorename,
                single_request_limit=single_request_limit,
                progress_interval=progress_interval,
            )
        return entry_of(metadata, "file")

    def upload_files(
        self,
        pairs: Sequence[tuple[str | os.PathLike[str], str]],
        overwrite: bool = False,
        *,
        max_active_transfers: int | None = None,
        batch_size: int = 1000,
    ) -> list[RemoteEntry]:
        """Upload many ``(local, remote)`` pairs, ``max_active_transfers`` (default 4) at once: files up to
        32 MiB go as closed upload sessions committed together by ``finish_batch_v2`` (``batch_size``, at
        most 1,000, per call), larger ones one by one. Entries come back in ``pairs`` order; the first
        failure is raised after every other file was attempted (the ones that landed stay)."""
        from dropbox_box_provider.hooks.files import active_limit

        limit = active_limit(max_active_transfers)
        from dropbox_box_provider.auth.backoff import BackoffGate, current_gate, shared_backoff

        with shared_backoff(current_gate() or BackoffGate()):  # the commits share the uploads' back-off
            return self._upload_many(pairs, overwrite, limit, batch_size)

    def _upload_many(
        self,
        pairs: Sequence[tuple[str | os.PathLike[str], str]],
        overwrite: bool,
        limit: int,
        batch_size: int,
    ) -> list[RemoteEntry]:
        from dropbox_box_provider.hooks.dropbox import batch
        from dropbox_box_provider.hooks.parallel import map_bounded

        targets: list[tuple[str, str]] = []
        for local, remote in pairs:
            source = os.fspath(local_file(local))
            target = f"{remote}{Path(source).name}" if str(remote).endswith("/") else str(remote)
            targets.append((source, normalize_path(target)))
        sizes = [os.path.getsize(source) for source, _ in targets]
        small = [i for i, size in enumerate(sizes) if size <= batch.BATCH_FILE_LIMIT]
        large = [i for i, size in enumerate(sizes) if size > batch.BATCH_FILE_LIMIT]
        results, errors = batch.upload_batch(
            self, [targets[i] for i in small], overwrite, max_active=limit, batch_size=batch_size
        )
        entries: dict[int, RemoteEntry] = {small[i]: entry_of(meta, "file") for i, meta in results.items()}
        failures: dict[int, DropboxBoxError] = {small[i]: error for i, error in errors.items()}

        def one(index: int) -> None:
            try:
                entries[index] = self.upload_file(targets[index][0], targets[index][1], overwrite)
            except DropboxBoxError as exc:
                failures[index] = exc

        map_bounded(one, large, limit)
        if failures:
            first = min(failures)
            raise failures[first]
        for index in small:
            report_upload(self, targets[index][0], entries[index])
        return [entries[i] for i in range(len(targets))]

    def open_upload(self, remote: str, overwrite: bool = False) -> StreamingUpload:
        """An upload fed piece by piece (multiples of 4 MiB, then ``finish(rest)``), content_hash verified
        (unless ``verify_checksums`` is off):
        what fsspec writes use, so no whole file is held in memory or on disk."""
        return stream.StreamingUpload(self, normalize_path(remote), overwrite)

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = True) -> RemoteEntry:
        """Create a folder (Dropbox creates missing parents; ``parents=False`` checks they exist first).

        An existing folder is returned when ``exist_ok``; a file in the way always raises AlreadyExists.
        """
        if is_root(path):
            if exist_ok:
                return ROOT
            raise AlreadyExists(
                "the Dropbox root folder always exists", status=409, code="path/conflict/folder"
            )
        target = normalize_path(path)
        if not parents and not target.startswith(("id:", "ns:")):
            parent = target.rsplit("/", 1)[0]
            if parent and not self.exists(parent):
                raise NotFound(
                    f"Dropbox folder {parent!r} does not exist; create it first, or pass parents=True",
                    status=409,
                    code="path/not_found",
                )
        response = self.request(
            "POST",
            f"{DROPBOX.api_base}/files/create_folder_v2",
            content=json.dumps({"path": target, "autorename": False}).encode(),
            headers=_RPC_HEADERS,
            expected=(200, 409),
        )
        if response.status_code == 200:
            return entry_of(response.json()["metadata"], "folder")
        error = self.error_for(response)
        if isinstance(error, AlreadyExists) and error.code == "path/conflict/folder":
            if exist_ok:
                return self.info(target)
            raise AlreadyExists(
                f"Dropbox folder {target!r} already exists; pass exist_ok=True to accept it",
                status=409,
                code=error.code,
            ) from error
        raise error

    def delete(self, path: str, recursive: bool = False, missing_ok: bool = False) -> None:
        """Delete a file, or a folder (a non-empty one only with ``recursive``: Dropbox's ``delete_v2`` is
        always recursive, so the folder is checked first). ``missing_ok`` accepts a missing path."""
        target = normalize_path(path)
        try:
            if not recursive:
                entry = self.info(target)
                if entry.kind == "folder" and next(iter(self._pages(target, False, limit=1)), None):
                    raise PreconditionFailed(
                        f"Dropbox folder {path!r} is not empty; pass recursive=True to delete it with "
                        "everything inside",
                        status=None,
                        code="folder_not_empty",
                    )
            response = self.request(
                "POST",
                f"{DROPBOX.api_base}/files/delete_v2",
                content=json.dumps({"path": target}).encode(),
                headers=_RPC_HEADERS,
                expected=(200, 409),
            )
            if response.status_code == 409:
                error = self.error_for(response)
                if isinstance(error, NotFound) and transport.may_have_acted(response):
                    return  # resent after a lost answer: the first attempt deleted it
                raise error
        except NotFound:
            if not missing_ok:
                raise

    def _relocation(self, route: str, src: str, dst: str, overwrite: bool) -> RemoteEntry:
        source, target = normalize_path(src), normalize_path(dst)
        arg = {"from_path": source, "to_path": target, "autorename": False}
        try:
            result = self.rpc(route, arg)
        except AlreadyExists:
            existing = self.info(target)
            if existing.kind == "file" and existing.content_hash:
                origin = self.info(source)
                if origin.kind == "file" and origin.content_hash == existing.content_hash:
                    # Identical content already there (a resent or repeated call): done, nothing replaced.
                    if route == "files/move_v2" and origin.id != existing.id:
                        self.delete(origin.ref, missing_ok=True)
                    return existing
            if not overwrite or existing.kind != "file":
                what = "a folder" if existing.kind == "folder" else "a file"
                raise AlreadyExists(
                    f"Dropbox already has {what} at {dst!r}; "
                    + (
                        "pass overwrite=True to replace it"
                        if existing.kind == "file"
                        else "choose another path"
                    ),
                    status=409,
                    code="to/conflict",
                ) from None
            self.delete(existing.ref)
            result = self.rpc(route, arg)
        return entry_of(result["metadata"])

    def move(self, src: str, dst: str, overwrite: bool = False) -> RemoteEntry:
        """Move or rename ``src`` to the full path ``dst`` (``files/move_v2``)."""
        return self._relocation("files/move_v2", src, dst, overwrite)

    def copy(self, src: str, dst: str, overwrite: bool = False) -> RemoteEntry:
        """Copy ``src`` to the full path ``dst`` (``files/copy_v2``)."""
        return self._relocation("files/copy_v2", src, dst, overwrite)

    # ------------------------------------------------------------------ search, links and versions

    def search(self, query: str, path: str | None = None, limit: int | None = None) -> Iterator[RemoteEntry]:
        """Files and folders whose name contains ``query`` (case-insensitive), under the folder ``path`` if
        given, at most ``limit`` (``files/search_v2`` + ``search/continue_v2``; Dropbox's index lags new
        files by a little and matches words, so a fragment inside a word may not be found)."""
        return file_api.search(self, query, path, limit)

    def temporary_link(self, path: str) -> str:
        """A direct download URL of a file (``files/get_temporary_link``), valid for 4 hours, no token."""
        return file_api.temporary_link(self, normalize_path(path))

    def shared_link(
        self,
        path: str,
        access: SharedLinkAccess = "public",
        password: str | None = None,
        expires: datetime | str | None = None,
    ) -> str:
        """A shared link to a file or folder (``sharing/create_shared_link_with_settings``): ``public`` or
        ``team``; ``collaborators`` has no Dropbox link (InvalidArgument). An existing link is returned as
        it is (Dropbox keeps one per item), so a repeated call succeeds."""
        return file_api.shared_link(self, normalize_path(path), access, password, expires)

    def versions(self, path: str) -> list[RemoteVersion]:
        """The file's revisions, newest (current) first (``files/list_revisions``, up to 100)."""
        return file_api.versions(self, normalize_path(path))

    # ------------------------------------------------------------------ deprecated names

    def get_metadata(self, path: str) -> dict[str, Any]:
        """Deprecated: ``info(path).raw``."""
        warn_deprecated("DropboxHook.get_metadata()", "DropboxHook.info()")
        return dict(self.info(path).raw)

    async def aget_metadata(self, path: str) -> dict[str, Any]:
        """Deprecated: ``(await ainfo(path)).raw``."""
        warn_deprecated("DropboxHook.aget_metadata()", "DropboxHook.ainfo()")
        return dict((await self.ainfo(path)).raw)

    def list_folder(
        self, path: str = "", recursive: bool = False, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Deprecated: ``list(path, recursive)`` (this yields Dropbox's raw metadata, as it always did)."""
        warn_deprecated("DropboxHook.list_folder()", "DropboxHook.list()")
        return self._pages(path, recursive, limit)

    def alist_folder(
        self, path: str = "", recursive: bool = False, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Deprecated: ``alist(path, recursive)``."""
        warn_deprecated("DropboxHook.alist_folder()", "DropboxHook.alist()")
        return self._apages(path, recursive, limit)

    def create_folder(self, path: str, exist_ok: bool = True) -> dict[str, Any]:
        """Deprecated: ``mkdir(path, exist_ok=...).raw``."""
        warn_deprecated("DropboxHook.create_folder()", "DropboxHook.mkdir()")
        return dict(self.mkdir(path, exist_ok=exist_ok).raw)


@contextlib.contextmanager
def _explained_conflict(path: str) -> Iterator[None]:
    """An upload's ``path/conflict`` as AlreadyExists that says what to do."""
    try:
        yield
    except AlreadyExists as exc:
        kind = "folder" if (exc.code or "").endswith("folder") else "file with different content"
        advice = "pass overwrite=True to replace it" if kind != "folder" else "choose another path"
        raise AlreadyExists(f"Dropbox already has a {kind} at {path!r}; {advice}", 409, exc.code) from exc


def _no_more(deprecated: dict[str, Any], method: str) -> None:
    if deprecated:
        raise TypeError(f"DropboxHook.{method}() got unexpected keyword argument(s) {sorted(deprecated)}")


__all__ = ["DropboxHook"]
