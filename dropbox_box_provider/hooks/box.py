"""BoxHook: a Box connection (conn type ``box_oauth``; ``box`` is another provider's) with valid tokens.

Remote items are named either by a path starting with ``/`` (walked from the root folder ``0``, names matched
case-insensitively as Box does) or by a Box id (a string of digits, or an int).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from dropbox_box_provider.auth import services, transport
from dropbox_box_provider.auth.config import Service
from dropbox_box_provider.errors import (
    DropboxBoxError,
    InvalidRemotePath,
    ItemExists,
    ItemNotFound,
    ServiceError,
    TransportError,
)
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.progress import TransferProgress

API = "https://api.box.com/2.0"
UPLOAD = "https://upload.box.com/api/2.0"
ROOT_ID = "0"
# Box accepts chunked upload sessions only from 20 MB (file_size_too_small below); multipart up to there.
CHUNKED_THRESHOLD = 20_000_000
LIST_LIMIT = 1000
DOWNLOAD_CHUNK = 1024 * 1024
# Upload commits and downloads may answer 202 + Retry-After while Box assembles the file.
MAX_NOT_READY_WAITS = 60
MAX_NOT_READY_WAIT = 10.0
_BOX_HOSTS = frozenset({"api.box.com", "upload.box.com", "dl.boxcloud.com", "account.box.com"})

log = logging.getLogger(__name__)

ItemType = Literal["file", "folder"]


@dataclass(frozen=True)
class _Item:
    """A resolved remote item: its Box id and whether it is a file or a folder."""

    id: str
    type: ItemType


def _is_id(ref: str | int) -> bool:
    return isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit())


def split_path(path: str) -> list[str]:
    """``/a/b/c.csv`` -> ``["a", "b", "c.csv"]``; ``/`` -> ``[]``. Raises InvalidRemotePath on bad input."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidRemotePath(
            f"{path!r} is neither a Box path nor a Box id: give a path starting with '/' "
            "(e.g. '/reports/2024.csv') or a file/folder id made of digits (e.g. '123456')"
        )
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or part != part.strip():
            raise InvalidRemotePath(
                f"Box path {path!r} has the segment {part!r}; Box names cannot be '.' or '..' or start/end "
                "with spaces: write the path without it"
            )
    return parts


def _key(parts: list[str]) -> str:
    return "/" + "/".join(p.lower() for p in parts)


def _display(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def _b64_sha1(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def file_sha1(handle: IO[bytes], chunk: int = DOWNLOAD_CHUNK) -> str:
    """Hex SHA-1 of a binary file object read from its start (Box's checksum of a file version)."""
    handle.seek(0)
    digest = hashlib.sha1(usedforsecurity=False)
    for block in iter(lambda: handle.read(chunk), b""):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def _size_of(handle: IO[bytes]) -> int:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    return size


def _conflict_of(response: httpx.Response) -> dict[str, Any] | None:
    """The existing item of a 409 ``item_name_in_use`` (``context_info.conflicts``: an object or a list)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("code") != "item_name_in_use":
        return None
    conflicts = (body.get("context_info") or {}).get("conflicts")
    if isinstance(conflicts, list):
        conflicts = conflicts[0] if conflicts else None
    return conflicts if isinstance(conflicts, dict) and conflicts.get("id") else None


class _FileRegion:
    """``length`` bytes at ``offset`` of a binary file as a re-iterable request body: streamed in blocks
    (never held whole, so a part's bytes cannot linger in httpx's request/response reference cycles) and
    re-readable when the request is resent."""

    def __init__(self, handle: IO[bytes], offset: int, length: int, name: str) -> None:
        self.handle = handle
        self.offset = offset
        self.length = length
        self.name = name

    def __iter__(self) -> Iterator[bytes]:
        self.handle.seek(self.offset)
        left = self.length
        while left:
            block = self.handle.read(min(DOWNLOAD_CHUNK, left))
            if not block:
                raise ServiceError(
                    f"the local file {self.name!r} shrank while it was being uploaded; upload it again",
                    None,
                    "source_changed",
                )
            left -= len(block)
            yield block

    def sha1(self, whole: Any) -> bytes:
        """SHA-1 of the region (the part's Digest), also fed into ``whole`` (the file's running SHA-1)."""
        digest = hashlib.sha1(usedforsecurity=False)
        for block in self:
            digest.update(block)
            whole.update(block)
        return digest.digest()


class BoxHook(BaseOAuthHook):
    """Hook for one Box connection (user OAuth, JWT service account, CCG or static token).

    Files and folders: ``get_item_id``, ``list_folder``, ``get_file_info``, ``exists``, ``create_folder``,
    ``delete``, ``upload_file``, ``download_file``, ``read_bytes``, ``write_bytes``; async twins for triggers.
    """

    service: ClassVar[Service] = "box"
    conn_type = "box_oauth"
    default_conn_name = "box_default"
    hook_name = "Box (OAuth)"

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        as_user: str | None = None,
        retry_policy: transport.RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        super().__init__(conn_id, retry_policy=retry_policy, timeout=timeout)
        self._as_user_override = as_user
        self._paths: dict[str, _Item] = {}
        self._download_client: httpx.Client | None = None

    # Airflow < 3.2 reads these two only from the hook's own class dict, never from a base class.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form widgets of the Box extras (Airflow < 3.2)."""
        return super().get_connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard-field behaviour of the Box form (Airflow < 3.2)."""
        return super().get_ui_field_behaviour()

    # ------------------------------------------------------------------ identity and headers

    @property
    def acting_as(self) -> str | None:
        """The Box user id sent as ``As-User``: this hook's override, else the connection's ``as_user``."""
        return self._as_user_override or self.get_auth_config().as_user

    def act_as_headers(self) -> dict[str, str]:
        """``As-User`` when the hook acts as another enterprise user (admin / service-account tokens)."""
        user = self.acting_as
        return {"As-User": user} if user else {}

    def as_user(self, user_id: str) -> BoxHook:
        """A hook on the same connection and tokens that acts as Box user ``user_id`` (``As-User``)."""
        if not _is_id(user_id):
            raise InvalidRemotePath(f"As-User needs a Box user id made of digits, got {user_id!r}")
        clone = copy.copy(self)
        # The cached HTTP clients carry this hook's As-User header: the clone builds its own.
        clone._client = None
        clone._async_client = None
        clone._async_loop = None
        clone._as_user_override = str(user_id)
        clone._paths = {}
        return clone

    def get_current_user(self) -> dict[str, Any]:
        """The Box user the token acts as (``GET /2.0/users/me``; honours ``As-User``)."""
        body: dict[str, Any] = self.request("GET", f"{API}/users/me").json()
        return body

    def describe_account(self) -> str:
        """Who the token acts as, e.g. ``Demo User <demo@example.com> (Box user 10001)``."""
        user = self.get_current_user()
        return f"{user.get('name')} <{user.get('login')}> (Box user {user.get('id')})"

    # ------------------------------------------------------------------ real-URL space

    def _as_real_url(self, url: str) -> str:
        """Map a URL the service returned (session endpoints, download Location) back to its real form.

        Behind an endpoint override the emulator already answers with override URLs; the hook always works
        with real ``https://<host>/...`` URLs and lets ``api_url`` apply the override exactly once.
        """
        endpoint = (self.get_auth_config().endpoint or "").rstrip("/")
        if endpoint and url.startswith(endpoint + "/"):
            return "https://" + url[len(endpoint) + 1 :]
        return url

    def _download_url(self, real_url: str) -> str:
        parts = urlsplit(real_url)
        if parts.scheme == "https" and parts.hostname in _BOX_HOSTS:
            return self.api_url(real_url)
        return real_url

    # ------------------------------------------------------------------ resolution

    def _remember(self, parts: list[str], item: _Item) -> None:
        self._paths[_key(parts)] = item

    def _forget(self, parts: list[str] | None, item_id: str | None = None) -> None:
        """Drop a path and everything below it (and any path naming ``item_id``) from the cache."""
        if parts is not None:
            key = _key(parts)
            for cached in [k for k in self._paths if k == key or k.startswith(key.rstrip("/") + "/")]:
                del self._paths[cached]
        if item_id is not None:
            for cached in [k for k, v in self._paths.items() if v.id == item_id]:
                self._forget(split_path(cached))

    def _child(self, folder_id: str, name: str, parents: list[str]) -> _Item | None:
        """The child ``name`` of ``folder_id`` (case-insensitive), caching every sibling seen on the way."""
        wanted = name.lower()
        for entry in self.list_folder(folder_id):
            item = _Item(str(entry["id"]), entry["type"])
            if entry.get("name"):
                self._remember([*parents, entry["name"]], item)
            if str(entry.get("name", "")).lower() == wanted:
                return item
        return None

    def _resolve(self, path: str) -> _Item | None:
        parts = split_path(path)
        if not parts:
            return _Item(ROOT_ID, "folder")
        cached = self._paths.get(_key(parts))
        if cached is not None:
            return cached
        current = _Item(ROOT_ID, "folder")
        for depth in range(len(parts)):
            here = parts[: depth + 1]
            found = self._paths.get(_key(here))
            if found is None:
                if current.type != "folder":
                    return None
                found = self._child(current.id, parts[depth], parts[:depth])
                if found is None:
                    return None
            current = found
        return current

    def _lookup(self, ref: str | int, want: ItemType | None = None) -> _Item:
        """Resolve a path or id to an item (ids are checked against Box only when the type is unknown)."""
        if _is_id(ref):
            if want is not None:
                return _Item(str(ref), want)
            return self._type_of_id(str(ref))
        item = self._resolve(str(ref))
        if item is None:
            raise ItemNotFound(
                f"Box has no item at {ref!r} (as seen by {self._who()}); check the path, or create it "
                f"first{self._not_visible_hint()}",
                status=404,
                code="not_found",
            )
        if want is not None and item.type != want:
            raise InvalidRemotePath(f"Box path {ref!r} is a {item.type}, not a {want}")
        return item

    def _type_of_id(self, item_id: str) -> _Item:
        for kind in ("file", "folder"):
            response = self.request(
                "GET", f"{API}/{kind}s/{item_id}", expected=(200, 404), params={"fields": "id"}
            )
            if response.status_code == 200:
                return _Item(item_id, kind)
        raise ItemNotFound(
            f"Box has no file or folder with id {item_id} visible to {self._who()}; check the id and the "
            f"connection's as_user{self._not_visible_hint()}",
            status=404,
            code="not_found",
        )

    def _not_visible_hint(self) -> str:
        """A service account (JWT/CCG, no As-User) sees only what is shared with it: say whom to invite."""
        config = self.get_auth_config()
        if not config.is_service_account or self.acting_as or config.effective_subject_type != "enterprise":
            return ""
        try:
            login = f" {self.get_current_user()['login']}"
        except (DropboxBoxError, KeyError, TypeError):
            login = ""
        return (
            "; this connection acts as the app's service account, which sees only its own files and folders "
            f"and those shared with it: invite the service account{login} as a collaborator (Editor) on the "
            "folder in Box, or set the connection's as_user to a user who can see it"
        )

    def _who(self) -> str:
        user = self.acting_as
        return f"connection {self.conn_id!r}" + (f" acting as user {user}" if user else "")

    def get_item_id(self, path_or_id: str | int) -> str:
        """The Box id of a path (ids pass through unchanged); raises ItemNotFound when nothing is there."""
        if _is_id(path_or_id):
            return str(path_or_id)
        return self._lookup(path_or_id).id

    # ------------------------------------------------------------------ reading

    def list_folder(
        self, path_or_id: str | int = ROOT_ID, limit: int = LIST_LIMIT, fields: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the folder's items (Box mini objects) page by page with marker paging."""
        folder_id = self._lookup(path_or_id, "folder").id
        params: dict[str, Any] = {"usemarker": "true", "limit": max(1, min(limit, LIST_LIMIT))}
        if fields:
            params["fields"] = fields
        while True:
            page = self._items_page(self.request("GET", f"{API}/folders/{folder_id}/items", params=params))
            yield from page["entries"]
            if not page.get("next_marker"):
                return
            params["marker"] = page["next_marker"]

    @staticmethod
    def _items_page(response: httpx.Response) -> dict[str, Any]:
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise ServiceError(
                f"Box answered {response.request.url.path} with an unexpected body; check the Host override",
                response.status_code,
                "malformed_response",
            )
        return body

    def get_file_info(self, path_or_id: str | int) -> dict[str, Any]:
        """Box's full object of a file or folder (``type``, ``id``, ``name``, ``size``, ``sha1``, ...)."""
        item = self._lookup(path_or_id)
        response = self.request("GET", f"{API}/{item.type}s/{item.id}", expected=(200, 404))
        if response.status_code == 404:
            if not _is_id(path_or_id):
                self._forget(split_path(str(path_or_id)))
            raise ItemNotFound(
                f"Box {item.type} {item.id} ({path_or_id!r}) no longer exists for {self._who()}",
                status=404,
                code="not_found",
            )
        body: dict[str, Any] = response.json()
        return body

    def exists(self, path_or_id: str | int) -> bool:
        """True when a file or folder is at the path (or has the id)."""
        try:
            self.get_file_info(path_or_id)
        except ItemNotFound:
            return False
        return True

    # ------------------------------------------------------------------ folders and deletion

    def create_folder(self, path: str, parents: bool = True, exist_ok: bool = True) -> str:
        """Create the folder at ``path`` (and missing parents); returns its id.

        A concurrent creator's folder (409 ``item_name_in_use``) counts as existing.
        """
        parts = split_path(path)
        if not parts:
            if exist_ok:
                return ROOT_ID
            raise ItemExists("the Box root folder always exists", status=409, code="item_name_in_use")
        parent = _Item(ROOT_ID, "folder")
        for depth, name in enumerate(parts):
            here = parts[: depth + 1]
            last = depth == len(parts) - 1
            existing = self._resolve(_display(here))
            if existing is not None:
                if existing.type != "folder":
                    raise ItemExists(
                        f"Box path {_display(here)!r} is a file, so a folder cannot be created there; "
                        "delete the file or choose another path",
                        status=409,
                        code="item_name_in_use",
                    )
                if last and not exist_ok:
                    raise ItemExists(
                        f"Box folder {_display(here)!r} already exists; pass exist_ok=True to accept it",
                        status=409,
                        code="item_name_in_use",
                    )
                parent = existing
                continue
            if not last and not parents:
                raise ItemNotFound(
                    f"Box folder {_display(parts[:-1])!r} does not exist; create it first, or pass "
                    "parents=True",
                    status=404,
                    code="not_found",
                )
            parent = self._make_folder(parent.id, name, here, exist_ok=exist_ok or not last)
        return parent.id

    def _make_folder(self, parent_id: str, name: str, parts: list[str], *, exist_ok: bool) -> _Item:
        response = self.request(
            "POST",
            f"{API}/folders",
            json={"name": name, "parent": {"id": parent_id}},
            params={"fields": "id,name,type"},
            expected=(201, 409),
        )
        if response.status_code == 201:
            item = _Item(str(response.json()["id"]), "folder")
        else:
            conflict = _conflict_of(response)
            if conflict is None or conflict.get("type") != "folder" or not exist_ok:
                kind = conflict.get("type", "item") if conflict else "item"
                raise ItemExists(
                    f"Box already has a {kind} named {name!r} in {_display(parts[:-1])!r}; "
                    + ("choose another name" if kind != "folder" else "pass exist_ok=True to accept it"),
                    status=409,
                    code="item_name_in_use",
                )
            item = _Item(str(conflict["id"]), "folder")
        self._remember(parts, item)
        return item

    def delete(self, path_or_id: str | int, recursive: bool = False) -> None:
        """Delete a file, or a folder (a non-empty folder only with ``recursive=True``)."""
        item = self._lookup(path_or_id)
        if item.id == ROOT_ID and item.type == "folder":
            raise InvalidRemotePath("the Box root folder cannot be deleted; name a folder inside it")
        if item.type == "file":
            response = self.request("DELETE", f"{API}/files/{item.id}", expected=(204, 404))
        else:
            params = {"recursive": "true"} if recursive else {}
            response = self.request(
                "DELETE", f"{API}/folders/{item.id}", params=params, expected=(204, 400, 404)
            )
            if response.status_code == 400:
                code = services.box_error_details(response).code
                if code == "folder_not_empty":
                    raise ServiceError(
                        f"Box folder {path_or_id!r} is not empty; pass recursive=True to delete it with "
                        "everything inside",
                        400,
                        code,
                    )
                raise services.error_from_response("box", response, self.conn_id)
        parts = None if _is_id(path_or_id) else split_path(str(path_or_id))
        self._forget(parts, item.id)
        if response.status_code == 404:
            raise ItemNotFound(
                f"Box {item.type} {item.id} ({path_or_id!r}) does not exist for {self._who()}",
                status=404,
                code="not_found",
            )

    # ------------------------------------------------------------------ uploads

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        remote: str | int,
        name: str | None = None,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """Upload a local file; returns Box's file object (its ``sha1`` checked against the local file).

        ``remote`` is a folder id, an existing folder's path, or the file's full path (missing parent
        folders are created). ``name`` defaults to the local file's name. With ``overwrite`` an existing
        file gets a new version; otherwise an existing name raises ItemExists.
        """
        source = Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(
                f"{str(source)!r} is not a file; give the path of the local file to upload"
            )
        with source.open("rb") as handle:
            return self._upload(
                handle, remote, name or source.name, overwrite, explicit_name=name is not None
            )

    def write_bytes(
        self, data: bytes, remote: str | int, name: str | None = None, overwrite: bool = False
    ) -> dict[str, Any]:
        """Upload ``data`` as a file (same targets as ``upload_file``; ``name`` needed with a folder id)."""
        return self._upload(io.BytesIO(data), remote, name, overwrite, explicit_name=name is not None)

    def _target(
        self, remote: str | int, name: str | None, explicit_name: bool
    ) -> tuple[str, str, list[str] | None]:
        """(folder id, file name, folder path parts or None) of an upload target."""
        if _is_id(remote):
            if not name:
                raise InvalidRemotePath(
                    f"uploading into folder id {remote} needs a file name: pass name='...'"
                )
            return str(remote), name, None
        parts = split_path(str(remote))
        if not explicit_name:
            existing = self._resolve(str(remote))
            if existing is not None and existing.type == "folder" and name:
                return existing.id, name, parts
            if not parts:
                if not name:
                    raise InvalidRemotePath(
                        "uploading into the root folder '/' needs a file name: pass name='...'"
                    )
                return ROOT_ID, name, parts
            folder = parts[:-1]
            return self.create_folder(_display(folder)) if folder else ROOT_ID, parts[-1], folder
        return self.create_folder(str(remote)), str(name), parts

    def _upload(
        self, handle: IO[bytes], remote: str | int, name: str | None, overwrite: bool, *, explicit_name: bool
    ) -> dict[str, Any]:
        folder_id, file_name, folder_parts = self._target(remote, name, explicit_name)
        size = _size_of(handle)
        existing: _Item | None = None
        if folder_parts is not None:
            existing = self._paths.get(_key([*folder_parts, file_name]))
        entry: dict[str, Any] | None = None
        if existing is not None and existing.type == "file" and overwrite:
            try:
                entry = self._send_content(handle, size, folder_id, file_name, existing.id)
            except ServiceError as exc:
                if exc.status != 404:
                    raise
                assert folder_parts is not None
                self._forget([*folder_parts, file_name])  # deleted elsewhere since it was cached
        if entry is None:
            entry = self._send_content(handle, size, folder_id, file_name, None)
        if "conflict" in entry:
            conflict = entry["conflict"]
            if conflict.get("type") != "file" or not overwrite:
                raise ItemExists(
                    f"Box folder {folder_id} already has a {conflict.get('type', 'item')} named "
                    f"{file_name!r} "
                    f"(id {conflict.get('id')}); pass overwrite=True to upload a new version of a file, or "
                    "choose another name",
                    status=409,
                    code="item_name_in_use",
                )
            entry = self._send_content(handle, size, folder_id, file_name, str(conflict["id"]))
        if folder_parts is not None:
            self._remember([*folder_parts, file_name], _Item(str(entry["id"]), "file"))
        return entry

    def _send_content(
        self, handle: IO[bytes], size: int, folder_id: str, name: str, file_id: str | None
    ) -> dict[str, Any]:
        """Upload as a new file (``file_id`` None) or a new version; a name conflict comes back as
        ``{"conflict": item}``."""
        if size >= CHUNKED_THRESHOLD:
            entry = self._chunked_upload(handle, size, folder_id, name, file_id)
        else:
            entry = self._multipart_upload(handle, size, folder_id, name, file_id)
        return entry

    def _multipart_upload(
        self, handle: IO[bytes], size: int, folder_id: str, name: str, file_id: str | None
    ) -> dict[str, Any]:
        sha1 = file_sha1(handle)
        attributes: dict[str, Any] = {"name": name}
        if file_id is None:
            attributes["parent"] = {"id": folder_id}
            url = f"{UPLOAD}/files/content"
        else:
            url = f"{UPLOAD}/files/{file_id}/content"
        # httpx sends ``data`` fields before ``files``: the attributes part precedes the file part, as Box
        # requires, and the file part is streamed from the handle (re-read from 0 if the request is resent).
        response = self.request(
            "POST",
            url,
            data={"attributes": json.dumps(attributes)},
            files={"file": (name, handle, "application/octet-stream")},
            headers={"Content-MD5": sha1},
            expected=(201, 409),
        )
        if response.status_code == 409:
            return {"conflict": self._conflict_or_raise(response)}
        return self._checked_entry(response, sha1, name)

    def _conflict_or_raise(self, response: httpx.Response) -> dict[str, Any]:
        conflict = _conflict_of(response)
        if conflict is None:
            raise services.error_from_response("box", response, self.conn_id)
        return conflict

    def _checked_entry(self, response: httpx.Response, sha1: str, name: str) -> dict[str, Any]:
        body = response.json()
        entries = body.get("entries") if isinstance(body, dict) else None
        if not entries or not isinstance(entries[0], dict):
            raise ServiceError(
                f"Box answered the upload of {name!r} without the file object; check the Host override",
                response.status_code,
                "malformed_response",
            )
        entry: dict[str, Any] = entries[0]
        if entry.get("sha1") != sha1:
            raise ServiceError(
                f"Box stored {name!r} with SHA-1 {entry.get('sha1')} but the local file's is {sha1}: the "
                "upload was corrupted on the way; upload it again",
                response.status_code,
                "checksum_mismatch",
            )
        return entry

    def _chunked_upload(
        self, handle: IO[bytes], size: int, folder_id: str, name: str, file_id: str | None
    ) -> dict[str, Any]:
        """Upload session: create, PUT parts aligned to ``part_size`` with per-part Digests, commit."""
        if file_id is None:
            response = self.request(
                "POST",
                f"{UPLOAD}/files/upload_sessions",
                json={"folder_id": folder_id, "file_size": size, "file_name": name},
                expected=(201, 409),
            )
        else:
            response = self.request(
                "POST",
                f"{UPLOAD}/files/{file_id}/upload_sessions",
                json={"file_size": size, "file_name": name},
                expected=(201,),
            )
        if response.status_code == 409:
            return {"conflict": self._conflict_or_raise(response)}
        session = response.json()
        endpoints = session["session_endpoints"]
        part_size = int(session["part_size"])
        whole = hashlib.sha1(usedforsecurity=False)
        parts: list[dict[str, Any]] = []
        progress = self._progress("upload", name, size)
        try:
            offset = 0
            while offset < size:
                part = _FileRegion(handle, offset, min(part_size, size - offset), name)
                digest = part.sha1(whole)
                answer = self.request(
                    "PUT",
                    self._as_real_url(endpoints["upload_part"]),
                    content=part,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(part.length),
                        "Content-Range": f"bytes {offset}-{offset + part.length - 1}/{size}",
                        "Digest": f"sha={_b64_sha1(digest)}",
                    },
                )
                parts.append(answer.json()["part"])
                offset += part.length
                progress.update(part.length)
            entry = self._commit(endpoints["commit"], parts, whole.digest(), name)
        except BaseException:
            self._abort_session(endpoints.get("abort"))
            raise
        progress.finish()
        sha1 = whole.hexdigest()
        if entry.get("sha1") != sha1:
            raise ServiceError(
                f"Box committed {name!r} with SHA-1 {entry.get('sha1')} but the local file's is {sha1}; "
                "upload it again",
                None,
                "checksum_mismatch",
            )
        return entry

    def _commit(
        self, commit_url: str, parts: list[dict[str, Any]], digest: bytes, name: str
    ) -> dict[str, Any]:
        for _ in range(MAX_NOT_READY_WAITS):
            response = self.request(
                "POST",
                self._as_real_url(commit_url),
                json={"parts": parts, "attributes": {"name": name}},
                headers={"Digest": f"sha={_b64_sha1(digest)}"},
                expected=(201, 202),
            )
            if response.status_code == 201:
                entries = response.json().get("entries") or []
                if not entries:
                    raise ServiceError(
                        f"Box committed {name!r} without returning the file object", 201, "malformed_response"
                    )
                entry: dict[str, Any] = entries[0]
                return entry
            time.sleep(min(services.retry_after_seconds(response) or 1.0, MAX_NOT_READY_WAIT))
        raise ServiceError(
            f"Box kept answering 202 (still processing) to the commit of {name!r}; run the task again later",
            202,
            "commit_not_ready",
        )

    def _abort_session(self, abort_url: str | None) -> None:
        if not abort_url:
            return
        try:
            self.request("DELETE", self._as_real_url(abort_url), expected=(204, 404))
        except DropboxBoxError as exc:
            self.log.warning("Could not abort the Box upload session: %s", exc)

    # ------------------------------------------------------------------ downloads

    def download_file(self, path_or_id: str | int, local_path: str | os.PathLike[str]) -> Path:
        """Download a file to ``local_path`` atomically: streamed into a temp file beside it, SHA-1 checked,
        then renamed; on any failure no file (partial or temp) is left behind."""
        target = Path(local_path)
        if target.is_dir():
            raise IsADirectoryError(f"{str(target)!r} is a directory; give the destination file's path")
        target.parent.mkdir(parents=True, exist_ok=True)
        info = self.get_file_info(self._lookup(path_or_id, "file").id)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                self._fetch_into(info, handle)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return target

    def read_bytes(self, path_or_id: str | int) -> bytes:
        """A small file's content in memory (SHA-1 checked)."""
        info = self.get_file_info(self._lookup(path_or_id, "file").id)
        buffer = io.BytesIO()
        self._fetch_into(info, buffer)
        return buffer.getvalue()

    def _content_location(self, file_id: str) -> str:
        """The pre-signed download URL (real form) from Box's 302, waiting out 202 + Retry-After."""
        for _ in range(MAX_NOT_READY_WAITS):
            url = f"{API}/files/{file_id}/content"
            with self.stream("GET", url, expected=(200, 202, 302)) as response:
                status, headers = response.status_code, response.headers
            if status == 302 and headers.get("location"):
                return self._as_real_url(headers["location"])
            if status != 202:
                raise ServiceError(
                    f"Box answered the download of file {file_id} with HTTP {status} instead of a redirect "
                    "to its download URL; check that the connection's Host points at Box or its emulator",
                    status,
                    "unexpected_download_answer",
                )
            time.sleep(min(services.retry_after_seconds(response) or 1.0, MAX_NOT_READY_WAIT))
        raise ServiceError(
            f"Box kept answering 202 (not ready) to the download of file {file_id}; run the task again later",
            202,
            "download_not_ready",
        )

    def _plain_client(self) -> httpx.Client:
        """The hook's client for pre-signed download URLs: no bearer token, kept alive across files."""
        if self._download_client is None or self._download_client.is_closed:
            self._download_client = transport.new_client(timeout=self.timeout)
        return self._download_client

    def close(self) -> None:
        """Close the API client and the download client."""
        super().close()
        if self._download_client is not None:
            self._download_client.close()
            self._download_client = None

    def _fetch_into(self, info: dict[str, Any], handle: IO[bytes]) -> None:
        """Stream a file's bytes into ``handle``, resuming with Range after a broken link; SHA-1 checked.

        The download URL is pre-signed, so it is fetched without the bearer token (as box-sdk-gen's HTTP
        stack does when the redirect leaves api.box.com).
        """
        file_id, name, size = str(info["id"]), str(info.get("name")), int(info.get("size") or 0)
        policy = self.retry_policy
        progress = self._progress("download", name, size)
        digest = hashlib.sha1(usedforsecurity=False)
        written = 0
        location: str | None = None
        start = time.monotonic()
        attempt = 0
        plain = self._plain_client()
        while True:
            attempt += 1
            try:
                if location is None:
                    location = self._content_location(file_id)
                headers = {"Range": f"bytes={written}-"} if written else {}
                with plain.stream("GET", self._download_url(location), headers=headers) as response:
                    status = response.status_code
                    resumed = status == 206 and response.headers.get("content-range", "").startswith(
                        f"bytes {written}-"
                    )
                    if status in (200, 206) and written and not resumed:
                        handle.seek(0)  # the server sent the whole file (or another range): start over
                        handle.truncate()
                        digest, written = hashlib.sha1(usedforsecurity=False), 0
                        progress.reset_to(0)
                    if status in (403, 404, 410):
                        location = None  # the pre-signed link expired: ask Box for a new one
                        raise httpx.ReadError(f"the download link answered HTTP {status}")
                    if status not in (200, 206) or (status == 206 and not resumed):
                        response.read()
                        delay = policy.next_delay(attempt, response, time.monotonic() - start)
                        if delay is None:
                            raise services.error_from_response("box", response, self.conn_id)
                        time.sleep(delay)
                        continue
                    for block in response.iter_bytes(DOWNLOAD_CHUNK):
                        handle.write(block)
                        digest.update(block)
                        written += len(block)
                        progress.update(len(block))
                if written < size:
                    raise httpx.ReadError(f"the download ended after {written} of {size} bytes")
                break
            except httpx.TransportError as exc:
                delay = policy.next_delay(attempt, exc, time.monotonic() - start)
                if delay is None:
                    raise TransportError(
                        f"downloading Box file {name!r} ({file_id}) failed after {attempt} attempt(s) at "
                        f"{written} of {size} bytes ({type(exc).__name__}); nothing was written to the "
                        "destination. Run the task again",
                        code="download_failed",
                    ) from exc
                self.log.warning("Box download of %r interrupted (%s); resuming in %.2f s", name, exc, delay)
                time.sleep(delay)
        progress.finish()
        expected = info.get("sha1")
        if expected and digest.hexdigest() != expected:
            raise ServiceError(
                f"the downloaded bytes of {name!r} have SHA-1 {digest.hexdigest()} but Box lists {expected}; "
                "nothing was written to the destination. Download it again",
                None,
                "checksum_mismatch",
            )

    def _progress(self, action: str, name: str, size: int) -> TransferProgress:
        return TransferProgress(f"Box {action} of {name!r}", size, logger=log)

    # ------------------------------------------------------------------ async twins (triggers)

    async def _alookup(self, ref: str | int, want: ItemType | None = None) -> _Item:
        if _is_id(ref):
            if want is not None:
                return _Item(str(ref), want)
            for kind in ("file", "folder"):
                response = await self.arequest(
                    "GET", f"{API}/{kind}s/{ref}", expected=(200, 404), params={"fields": "id"}
                )
                if response.status_code == 200:
                    return _Item(str(ref), kind)
            raise ItemNotFound(
                f"Box has no file or folder with id {ref} visible to {self._who()}",
                status=404,
                code="not_found",
            )
        parts = split_path(str(ref))
        current = _Item(ROOT_ID, "folder")
        for depth in range(len(parts)):
            here = parts[: depth + 1]
            found = self._paths.get(_key(here))
            if found is None and current.type == "folder":
                wanted = parts[depth].lower()
                async for entry in self.alist_folder(current.id):
                    item = _Item(str(entry["id"]), entry["type"])
                    self._remember([*parts[:depth], entry["name"]], item)
                    if str(entry["name"]).lower() == wanted:
                        found = item
                        break
            if found is None:
                raise ItemNotFound(
                    f"Box has no item at {ref!r} (as seen by {self._who()}); check the path",
                    status=404,
                    code="not_found",
                )
            current = found
        if want is not None and current.type != want:
            raise InvalidRemotePath(f"Box path {ref!r} is a {current.type}, not a {want}")
        return current

    async def alist_folder(
        self, path_or_id: str | int = ROOT_ID, limit: int = LIST_LIMIT, fields: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Async ``list_folder``."""
        folder_id = (await self._alookup(path_or_id, "folder")).id
        params: dict[str, Any] = {"usemarker": "true", "limit": max(1, min(limit, LIST_LIMIT))}
        if fields:
            params["fields"] = fields
        while True:
            response = await self.arequest("GET", f"{API}/folders/{folder_id}/items", params=params)
            page = self._items_page(response)
            for entry in page["entries"]:
                yield entry
            if not page.get("next_marker"):
                return
            params["marker"] = page["next_marker"]

    async def aget_file_info(self, path_or_id: str | int) -> dict[str, Any]:
        """Async ``get_file_info``."""
        item = await self._alookup(path_or_id)
        response = await self.arequest("GET", f"{API}/{item.type}s/{item.id}", expected=(200, 404))
        if response.status_code == 404:
            if not _is_id(path_or_id):
                self._forget(split_path(str(path_or_id)))
            raise ItemNotFound(
                f"Box {item.type} {item.id} ({path_or_id!r}) no longer exists for {self._who()}",
                status=404,
                code="not_found",
            )
        body: dict[str, Any] = response.json()
        return body

    async def aexists(self, path_or_id: str | int) -> bool:
        """Async ``exists``."""
        try:
            await self.aget_file_info(path_or_id)
        except ItemNotFound:
            return False
        return True
