"""DropboxHook: a Dropbox connection (conn type ``dropbox``) with OAuth tokens that stay valid, and the file
operations DAGs need: account, listing, metadata, folders, delete, streamed upload/download with
``content_hash`` verification."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx

from dropbox_box_provider.auth.config import Service
from dropbox_box_provider.auth.services import DROPBOX, error_details
from dropbox_box_provider.content_hash import (
    DROPBOX_BLOCK_SIZE,
    DropboxContentHasher,
    combine_block_digests,
    dropbox_content_hash,
)
from dropbox_box_provider.errors import (
    AuthConfigError,
    ContentHashMismatch,
    DropboxBoxError,
    InvalidArgument,
    InvalidRemotePath,
    ItemExists,
    ItemNotFound,
    ServiceError,
    TransportError,
)
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.progress import DEFAULT_INTERVAL, TransferProgress

MiB = 1024 * 1024
SINGLE_UPLOAD_LIMIT = 150 * MiB
DEFAULT_CHUNK_SIZE = 32 * MiB
READ_SIZE = 1 * MiB
MAX_OFFSET_RECOVERIES = 5
UploadMode = Literal["add", "overwrite"]

_RPC_HEADERS = {"Content-Type": "application/json"}

#: Appended to "not found": an App folder app sees only its folder, and its paths start inside it.
APP_FOLDER_HINT = (
    "; if the app has App folder access, its paths start inside /Apps/<app name> (write /reports for "
    "/Apps/<app name>/reports) and nothing outside that folder is visible to it"
)


def dropbox_api_arg(arg: Any) -> str:
    """JSON for the ``Dropbox-API-Arg`` header: every non-ASCII character and 0x7F escaped as ``\\uXXXX``."""
    return json.dumps(arg, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")


def normalize_path(path: str, *, allow_root: bool = False) -> str:
    """A Dropbox path: ``/a/b`` (leading slash added, trailing removed), ``id:``/``ns:``/``rev:`` kept,
    and the root as ``""`` where the route allows it."""
    if not isinstance(path, str):
        raise InvalidRemotePath(f"a Dropbox path must be text, got {type(path).__name__}")
    text = path
    if text.startswith(("id:", "ns:", "rev:")):
        return text
    text = "/" + text.strip("/") if text.strip("/") else ""
    if not text and not allow_root:
        raise InvalidRemotePath(
            "a Dropbox path is empty: give a file or folder path such as '/reports/a.csv'"
        )
    return text


def _path_root_header(value: str) -> str:
    """``path_root`` as the header wants it: JSON as given, ``home``, or a bare namespace id."""
    text = value.strip()
    if text.startswith("{"):
        try:
            json.loads(text)
        except ValueError:
            raise AuthConfigError(
                [
                    "path_root is not valid JSON; give a namespace id such as 1234567, 'home', or JSON like "
                    '{".tag": "root", "root": "1234567"}'
                ]
            ) from None
        return dropbox_api_arg(json.loads(text))
    if text.lower() == "home":
        return dropbox_api_arg({".tag": "home"})
    return dropbox_api_arg({".tag": "namespace_id", "namespace_id": text})


class _FileSlice:
    """Re-iterable body of ``length`` bytes of a file from ``start``: read 1 MiB at a time, never whole.

    Each iteration (a retry resends it) records the SHA-256 of every 4 MiB content-hash block that lies
    wholly inside the slice (or ends the file), so the upload's content_hash costs no second read.
    """

    def __init__(
        self, path: str, start: int, length: int, file_size: int, progress: TransferProgress | None = None
    ) -> None:
        self.path = path
        self.start = start
        self.end = start + length
        self.file_size = file_size
        self.progress = progress
        self.block_digests: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self) -> Iterator[bytes]:
        self.block_digests = {}
        if self.progress is not None:
            self.progress.reset_to(self.start)
        position = self.start
        block: Any = None
        with open(self.path, "rb") as source:
            source.seek(position)
            while position < self.end:
                if position % DROPBOX_BLOCK_SIZE == 0:
                    block = hashlib.sha256()
                size = min(READ_SIZE, self.end - position, DROPBOX_BLOCK_SIZE - position % DROPBOX_BLOCK_SIZE)
                data = source.read(size)
                if len(data) != size:
                    raise TransportError(
                        f"{self.path} shrank while it was being uploaded; upload it again once it is whole",
                        code="source_changed",
                    )
                if block is not None:
                    block.update(data)
                position += size
                if block is not None and (position % DROPBOX_BLOCK_SIZE == 0 or position == self.file_size):
                    self.block_digests[(position - 1) // DROPBOX_BLOCK_SIZE] = block.digest()
                    block = None
                if self.progress is not None:
                    self.progress.update(size)
                yield data


class DropboxHook(BaseOAuthHook):
    """Hook for one Dropbox connection (user OAuth with refresh, PKCE, or a static token; team headers)."""

    service: ClassVar[Service] = "dropbox"
    conn_type = "dropbox"
    default_conn_name = "dropbox_default"
    hook_name = "Dropbox"

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
            headers["Dropbox-API-Path-Root"] = _path_root_header(config.path_root)
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

    @staticmethod
    def _content_headers(arg: Any) -> dict[str, str]:
        return {"Dropbox-API-Arg": dropbox_api_arg(arg), "Content-Type": "application/octet-stream"}

    # ------------------------------------------------------------------ account and metadata

    def get_current_account(self) -> dict[str, Any]:
        """``users/get_current_account``: who the token (or selected team member) is."""
        result: dict[str, Any] = self.rpc("users/get_current_account")
        return result

    def describe_account(self) -> str:
        """``Display Name <email> (dbid:…)`` for the connection test."""
        account = self.get_current_account()
        name = (account.get("name") or {}).get("display_name") or "unknown name"
        return f"{name} <{account.get('email', 'no email')}> ({account.get('account_id', 'no account id')})"

    def get_metadata(self, path: str) -> dict[str, Any]:
        """Metadata of a file or folder (``.tag`` is ``file`` or ``folder``); 409 path/not_found raises."""
        result: dict[str, Any] = self.rpc("files/get_metadata", {"path": normalize_path(path)})
        return result

    async def aget_metadata(self, path: str) -> dict[str, Any]:
        """Async twin of ``get_metadata``."""
        result: dict[str, Any] = await self.arpc("files/get_metadata", {"path": normalize_path(path)})
        return result

    def error_for(self, response: httpx.Response) -> DropboxBoxError:
        """Route errors (409) as ItemNotFound / ItemExists where the tag says so, else the generic mapping."""
        error = super().error_for(response)
        if response.status_code == 409 and isinstance(error, ServiceError):
            # Upload errors nest the tag under "reason"; the summary names the whole path of tags.
            summary = error_details("dropbox", response).summary or ""
            tags = {*(error.code or "").split("/"), *summary.split("/")}
            code = summary or error.code
            if "not_found" in tags:
                return ItemNotFound(f"{error}{APP_FOLDER_HINT}", status=409, code=code)
            if "conflict" in tags:
                return ItemExists(str(error), status=409, code=code)
        return error

    def exists(self, path: str) -> bool:
        """True when a file or folder exists at ``path``."""
        try:
            self.get_metadata(path)
        except ItemNotFound:
            return False
        return True

    async def aexists(self, path: str) -> bool:
        """Async twin of ``exists``."""
        try:
            await self.aget_metadata(path)
        except ItemNotFound:
            return False
        return True

    # ------------------------------------------------------------------ listing

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

    def list_folder(
        self, path: str = "", recursive: bool = False, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entry under ``path`` (root: ``""`` or ``"/"``), following cursors; ``limit``: page size."""
        arg = self._list_arg(path, recursive, limit)
        page = self.rpc("files/list_folder", arg)
        while True:
            yield from (e for e in page.get("entries", []) if not self._is_listed_folder(e, arg))
            if not page.get("has_more"):
                return
            page = self.rpc("files/list_folder/continue", {"cursor": page["cursor"]})

    async def alist_folder(
        self, path: str = "", recursive: bool = False, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Async twin of ``list_folder`` (an async generator)."""
        arg = self._list_arg(path, recursive, limit)
        page = await self.arpc("files/list_folder", arg)
        while True:
            for entry in page.get("entries", []):
                if not self._is_listed_folder(entry, arg):
                    yield entry
            if not page.get("has_more"):
                return
            page = await self.arpc("files/list_folder/continue", {"cursor": page["cursor"]})

    # ------------------------------------------------------------------ folders and deletion

    def create_folder(self, path: str, exist_ok: bool = True) -> dict[str, Any]:
        """Create a folder (and missing parents). With ``exist_ok`` an existing folder is returned as is;
        a file in the way always raises."""
        target = normalize_path(path)
        response = self.request(
            "POST",
            f"{DROPBOX.api_base}/files/create_folder_v2",
            content=json.dumps({"path": target, "autorename": False}).encode(),
            headers=_RPC_HEADERS,
            expected=(200, 409),
        )
        if response.status_code == 200:
            result: dict[str, Any] = response.json()["metadata"]
            return result
        error = self.error_for(response)
        if exist_ok and isinstance(error, ItemExists) and error.code == "path/conflict/folder":
            return self.get_metadata(target)
        raise error

    def delete(self, path: str, missing_ok: bool = False) -> dict[str, Any] | None:
        """Delete a file or a folder with its contents; returns the deleted entry's metadata.

        With ``missing_ok`` a missing path returns None instead of raising.
        """
        try:
            result: dict[str, Any] = self.rpc("files/delete_v2", {"path": normalize_path(path)})
        except ItemNotFound:
            if missing_ok:
                return None
            raise
        deleted: dict[str, Any] = result["metadata"]
        return deleted

    # ------------------------------------------------------------------ small objects

    def read_bytes(self, path: str) -> bytes:
        """A small file's content in memory (use ``download_file`` for large files)."""
        with self.stream(
            "POST",
            f"{DROPBOX.content_base}/files/download",
            headers={"Dropbox-API-Arg": dropbox_api_arg({"path": normalize_path(path)})},
        ) as response:
            try:
                data = response.read()
            except httpx.HTTPError as exc:
                raise self.read_error(exc, f"download of {path}", 0) from exc
            expected = json.loads(response.headers.get("Dropbox-API-Result", "{}")).get("content_hash")
        if expected and dropbox_content_hash(data) != expected:
            raise ContentHashMismatch(f"download of {path!r}: content_hash differs; run again", status=None)
        return data

    def write_bytes(self, path: str, data: bytes, mode: UploadMode = "add") -> dict[str, Any]:
        """Upload small ``data`` (at most 150 MiB) in one request; the content_hash is checked."""
        if len(data) > SINGLE_UPLOAD_LIMIT:
            raise InvalidArgument("write_bytes takes at most 150 MiB; use upload_file for larger data")
        arg = self._commit(normalize_path(path), mode)
        response = self.request(
            "POST", f"{DROPBOX.content_base}/files/upload", content=data, headers=self._content_headers(arg)
        )
        metadata: dict[str, Any] = response.json()
        self._verify(path, dropbox_content_hash(data), metadata)
        return metadata

    # ------------------------------------------------------------------ upload

    @staticmethod
    def _commit(path: str, mode: str, autorename: bool = False) -> dict[str, Any]:
        if mode not in ("add", "overwrite"):
            raise InvalidArgument(f"upload mode {mode!r} is not supported: use 'add' or 'overwrite'")
        return {"path": path, "mode": mode, "autorename": autorename, "mute": False}

    @staticmethod
    def _verify(path: str, local_hash: str, metadata: dict[str, Any]) -> None:
        remote = metadata.get("content_hash")
        if remote != local_hash:
            raise ContentHashMismatch(
                f"Dropbox stored {path!r} with content_hash {remote!r} but the local data hashes to "
                f"{local_hash!r}: the transfer was corrupted or the file changed meanwhile; upload it again",
                status=None,
            )

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        remote_path: str,
        mode: UploadMode = "add",
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        autorename: bool = False,
        single_request_limit: int = SINGLE_UPLOAD_LIMIT,
        progress_interval: float = DEFAULT_INTERVAL,
    ) -> dict[str, Any]:
        """Upload a local file, streamed from disk (memory stays flat whatever its size), and verify the
        content_hash Dropbox reports against the one computed while sending.

        Files up to ``single_request_limit`` (at most 150 MiB) go in one request; larger ones through an
        upload session in ``chunk_size`` pieces (a multiple of 4 MiB), resuming at Dropbox's offset if a
        piece's outcome was lost. Returns the file's metadata.
        """
        if chunk_size <= 0 or chunk_size % DROPBOX_BLOCK_SIZE:
            raise InvalidArgument(f"chunk_size {chunk_size} must be a positive multiple of 4 MiB (4194304)")
        if single_request_limit > SINGLE_UPLOAD_LIMIT:
            raise InvalidArgument("single_request_limit cannot exceed Dropbox's 150 MiB for files/upload")
        source = os.fspath(local_path)
        size = os.path.getsize(source)
        commit = self._commit(normalize_path(remote_path), mode, autorename)
        progress = TransferProgress(f"upload {source} -> {commit['path']}", size, interval=progress_interval)
        if size <= single_request_limit:
            body = _FileSlice(source, 0, size, size, progress)
            response = self.request(
                "POST",
                f"{DROPBOX.content_base}/files/upload",
                content=body,
                headers={**self._content_headers(commit), "Content-Length": str(size)},
            )
            digests = dict(body.block_digests)
            metadata: dict[str, Any] = response.json()
        else:
            digests = {}
            metadata = self._upload_session(
                source, size, commit, chunk_size=chunk_size, digests=digests, progress=progress
            )
        self._verify(remote_path, self._local_hash(source, size, digests), metadata)
        progress.finish()
        return metadata

    def _send_piece(self, route: str, arg: Any, piece: _FileSlice) -> httpx.Response:
        return self.request(
            "POST",
            f"{DROPBOX.content_base}/files/upload_session/{route}",
            content=piece,
            headers={**self._content_headers(arg), "Content-Length": str(len(piece))},
            expected=(200, 409),
        )

    def _correct_offset(self, response: httpx.Response) -> int:
        """Dropbox's ``correct_offset`` from an ``incorrect_offset`` 409, else the typed error is raised."""
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        if isinstance(error, dict) and error.get(".tag") == "lookup_failed":
            error = error.get("lookup_failed", {})
        if isinstance(error, dict) and error.get(".tag") == "incorrect_offset":
            offset = error.get("correct_offset")
            if isinstance(offset, int) and not isinstance(offset, bool):
                return offset
        raise self.error_for(response)

    def _upload_session(
        self,
        source: str,
        size: int,
        commit: dict[str, Any],
        *,
        chunk_size: int,
        digests: dict[int, bytes],
        progress: TransferProgress,
    ) -> dict[str, Any]:
        def accept(piece: _FileSlice, upto: int) -> None:
            for index, digest in piece.block_digests.items():
                if min((index + 1) * DROPBOX_BLOCK_SIZE, size) <= upto:
                    digests[index] = digest

        first = _FileSlice(source, 0, min(chunk_size, size), size, progress)
        started = self.request(
            "POST",
            f"{DROPBOX.content_base}/files/upload_session/start",
            content=first,
            headers={**self._content_headers({"close": False}), "Content-Length": str(len(first))},
        )
        session_id = started.json()["session_id"]
        accept(first, first.end)
        offset = first.end
        recoveries = 0
        while True:
            while offset < size:
                piece = _FileSlice(source, offset, min(chunk_size, size - offset), size, progress)
                cursor = {"session_id": session_id, "offset": offset}
                response = self._send_piece("append_v2", {"cursor": cursor, "close": False}, piece)
                if response.status_code == 200:
                    accept(piece, piece.end)
                    offset = piece.end
                    continue
                offset = self._recover(response, piece, size, accept, recoveries)
                recoveries += 1
            # No content_hash here: Dropbox reads it as the hash of this call's (empty) body only.
            arg = {"cursor": {"session_id": session_id, "offset": size}, "commit": commit}
            finish = _FileSlice(source, size, 0, size)
            response = self._send_piece("finish", arg, finish)
            if response.status_code == 200:
                metadata: dict[str, Any] = response.json()
                return metadata
            if "content_hash_mismatch" in response.text:
                raise ContentHashMismatch(
                    f"Dropbox rejected {commit['path']!r}: the uploaded data does not match its content_hash "
                    "(corrupted in transit or the file changed meanwhile); upload it again",
                    status=409,
                )
            offset = self._recover(response, finish, size, accept, recoveries)
            recoveries += 1

    def _recover(
        self, response: httpx.Response, piece: _FileSlice, size: int, accept: Any, recoveries: int
    ) -> int:
        """After ``incorrect_offset``: where to continue (the lost answer may have been a success)."""
        correct = self._correct_offset(response)
        if recoveries >= MAX_OFFSET_RECOVERIES or not 0 <= correct <= size:
            raise ServiceError(
                f"Dropbox's upload session for {piece.path} keeps reporting offset {correct} "
                f"(file size {size}); upload the file again",
                409,
                "incorrect_offset",
            )
        accept(piece, correct)
        return correct

    @staticmethod
    def _local_hash(source: str, size: int, digests: dict[int, bytes]) -> str:
        """The content_hash from the blocks hashed while sending; a block never seen whole is read again."""
        blocks = (size + DROPBOX_BLOCK_SIZE - 1) // DROPBOX_BLOCK_SIZE
        missing = [i for i in range(blocks) if i not in digests]
        if missing:
            with open(source, "rb") as handle:
                for index in missing:
                    handle.seek(index * DROPBOX_BLOCK_SIZE)
                    block = hashlib.sha256()
                    left = min(DROPBOX_BLOCK_SIZE, size - index * DROPBOX_BLOCK_SIZE)
                    while left:
                        data = handle.read(min(READ_SIZE, left))
                        if not data:
                            break
                        block.update(data)
                        left -= len(data)
                    digests[index] = block.digest()
        return combine_block_digests(digests[i] for i in range(blocks))

    # ------------------------------------------------------------------ download

    def download_file(
        self,
        remote_path: str,
        local_path: str | os.PathLike[str],
        *,
        progress_interval: float = DEFAULT_INTERVAL,
    ) -> dict[str, Any]:
        """Download to ``local_path`` through a temporary file beside it, verify the content_hash, then
        rename atomically. On any failure the temporary file is removed and ``local_path`` is untouched.
        Returns the file's metadata."""
        destination = Path(local_path)
        arg = {"path": normalize_path(remote_path)}
        handle, temp_name = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
        )
        try:
            with (
                os.fdopen(handle, "wb") as target,
                self.stream(
                    "POST",
                    f"{DROPBOX.content_base}/files/download",
                    headers={"Dropbox-API-Arg": dropbox_api_arg(arg)},
                ) as response,
            ):
                metadata: dict[str, Any] = json.loads(response.headers.get("Dropbox-API-Result", "{}"))
                total = metadata.get("size")
                progress = TransferProgress(
                    f"download {arg['path']} -> {destination}",
                    total if isinstance(total, int) else None,
                    interval=progress_interval,
                )
                hasher = DropboxContentHasher()
                try:
                    for chunk in response.iter_bytes(READ_SIZE):
                        target.write(chunk)
                        hasher.update(chunk)
                        progress.update(len(chunk))
                except httpx.HTTPError as exc:
                    raise self.read_error(exc, f"download of {remote_path!r}", progress.done) from exc
            if isinstance(total, int) and progress.done != total:
                raise TransportError(
                    f"download of {remote_path!r} ended after {progress.done} of {total} bytes; nothing was "
                    "kept. Run the task again",
                    code="interrupted",
                )
            expected = metadata.get("content_hash")
            if expected and hasher.hexdigest() != expected:
                raise ContentHashMismatch(
                    f"download of {remote_path!r} does not match Dropbox's content_hash (corrupted in "
                    "transit); nothing was kept. Run the task again",
                    status=None,
                )
            os.replace(temp_name, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        progress.finish()
        return metadata
