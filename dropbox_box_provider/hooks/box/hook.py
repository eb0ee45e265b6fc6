"""BoxHook: a Box connection (conn type ``box_oauth``; ``box`` is another provider's) with valid tokens,
implementing the ``RemoteFiles`` API. Box specifics (``As-User``, ids, versions) stay here.

Remote items are named by a path starting with ``/`` (walked from the root folder ``0``, names matched
case-insensitively as Box does) or by a Box id as ``id:123`` (bare digits and ints are accepted too).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx

from dropbox_box_provider.auth import services
from dropbox_box_provider.auth.services import BOX
from dropbox_box_provider.deprecation import warn_deprecated
from dropbox_box_provider.errors import (
    AlreadyExists,
    ChecksumMismatch,
    DropboxBoxError,
    InvalidArgument,
    InvalidRemotePath,
    NotFound,
    PreconditionFailed,
    ServiceError,
)
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box.events import BoxEvents
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFilesBase, RemoteVersion, SharedLinkAccess
from dropbox_box_provider.hooks.matching import local_file
from dropbox_box_provider.hooks.progress import TransferProgress
from dropbox_box_provider.lazy import lazy_module

# Loaded with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from dropbox_box_provider.auth import transport
    from dropbox_box_provider.auth.config import Service
    from dropbox_box_provider.hooks.box import download, file_api, paths, upload
else:
    paths = lazy_module("dropbox_box_provider.hooks.box.paths", globals())
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())
    file_api = lazy_module("dropbox_box_provider.hooks.box.file_api", globals())
    download = lazy_module("dropbox_box_provider.hooks.box.download", globals())
    upload = lazy_module("dropbox_box_provider.hooks.box.upload", globals())

API = BOX.api_base
LIST_LIMIT = 1000

log = logging.getLogger(__name__)
T = TypeVar("T")


class BoxHook(BaseOAuthHook, RemoteFilesBase, BoxEvents):
    """Hook for one Box connection (user OAuth, JWT service account, CCG or static token)."""

    service: ClassVar[Service] = "box"
    conn_type = "box_oauth"
    default_conn_name = "box_default"
    hook_name = "Box (OAuth)"
    conn_id_keyword: ClassVar[str] = "box_conn_id"

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        as_user: str | None = None,
        retry_policy: transport.RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        verify_checksums: bool | None = None,
        **conn_id_keyword: str | None,
    ) -> None:
        super().__init__(
            conn_id,
            retry_policy=retry_policy,
            timeout=timeout,
            verify_checksums=verify_checksums,
            **conn_id_keyword,
        )
        self._as_user_override = as_user
        self._paths = paths.PathCache()
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
        if not (isinstance(user_id, (str, int)) and str(user_id).isascii() and str(user_id).isdigit()):
            raise InvalidRemotePath(f"As-User needs a Box user id made of digits, got {user_id!r}")
        clone = copy.copy(self)
        # The cached HTTP clients carry this hook's As-User header: the clone builds its own.
        clone._client = None
        clone._content_client = None
        clone._async_client = None
        clone._async_loop = None
        clone._as_user_override = str(user_id)
        clone._paths = paths.PathCache()
        return clone

    def get_current_user(self) -> dict[str, Any]:
        """The Box user the token acts as (``GET /2.0/users/me``; honours ``As-User``)."""
        body: dict[str, Any] = self.request("GET", f"{API}/users/me").json()
        return body

    def describe_account(self) -> str:
        """Who the token acts as, e.g. ``Demo User <demo@example.com> (Box user 10001)``."""
        user = self.get_current_user()
        return f"{user.get('name')} <{user.get('login')}> (Box user {user.get('id')})"

    def get_sdk_client(self) -> Any:
        """The official SDK's ``box_sdk_gen.BoxClient`` on this connection, for any API the hook lacks.

        Every token it sends comes from this provider's TokenManager (refreshed once per expiry across
        workers; a 401 renews through the store's lease); the endpoint override and ``As-User`` apply.
        Needs the ``[sdk]`` extra: ``pip install 'airflow-provider-dropbox-box[sdk]'``.
        """
        from dropbox_box_provider.hooks.sdk import import_sdk

        import_sdk("box_sdk_gen", "box-sdk-gen")
        from dropbox_box_provider.hooks.box.sdk import box_sdk_client

        return box_sdk_client(self)

    def _who(self) -> str:
        user = self.acting_as
        return f"connection {self.conn_id!r}" + (f" acting as user {user}" if user else "")

    # ------------------------------------------------------------------ plumbing for the seams

    def as_real_url(self, url: str) -> str:
        """Map a URL the service returned (session endpoints, download Location) back to its real form.

        Behind an endpoint override the emulator already answers with override URLs; the hook always works
        with real ``https://<host>/...`` URLs and lets ``api_url`` apply the override exactly once.
        """
        endpoint = (self.get_auth_config().endpoint or "").rstrip("/")
        if endpoint and url.startswith(endpoint + "/"):
            return "https://" + url[len(endpoint) + 1 :]
        return url

    def plain_client(self) -> httpx.Client:
        """The hook's client for pre-signed download URLs: no bearer token, kept alive across files."""
        if self._download_client is None or self._download_client.is_closed:
            from dropbox_box_provider.auth import content_transport  # urllib3 only once a file is fetched

            self._download_client = content_transport.content_client(timeout=self.timeout)
        return self._download_client

    def close(self) -> None:
        """Close the API client and the download client."""
        super().close()
        if self._download_client is not None:
            self._download_client.close()
            self._download_client = None

    def progress(self, action: str, name: str, size: int | None) -> TransferProgress:
        """Progress logging of one transfer."""
        return TransferProgress(f"Box {action} of {name!r}", size, logger=log)

    # ------------------------------------------------------------------ the resolver's two runners

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

    @staticmethod
    def _request_of(step: paths.Step) -> tuple[str, dict[str, Any], tuple[int, ...]]:
        """(url, query, accepted statuses) of one resolver request."""
        if isinstance(step, paths.ListPage):
            params: dict[str, Any] = {"usemarker": "true", "limit": LIST_LIMIT}
            if step.marker:
                params["marker"] = step.marker
            if step.fields:
                params["fields"] = step.fields
            return f"{API}/folders/{step.folder_id}/items", params, (200,)
        if isinstance(step, paths.ProbeId):
            return f"{API}/{step.kind}s/{step.item_id}", {"fields": "id"}, (200, 404)
        return f"{API}/{step.item.type}s/{step.item.id}", {}, (200, 404)

    def _answer_of(self, step: paths.Step, response: httpx.Response) -> Any:
        """What the flow is sent back: a page, whether a probed item exists, an object or None."""
        if isinstance(step, paths.ListPage):
            return self._items_page(response)
        if isinstance(step, paths.ProbeId):
            return response.status_code == 200
        return response.json() if response.status_code == 200 else None

    def _call(self, step: paths.Step) -> Any:
        """One resolver request, sync."""
        url, params, expected = self._request_of(step)
        return self._answer_of(step, self.request("GET", url, params=params, expected=expected))

    async def _acall(self, step: paths.Step) -> Any:
        """One resolver request, async."""
        url, params, expected = self._request_of(step)
        return self._answer_of(step, await self.arequest("GET", url, params=params, expected=expected))

    def _run(self, flow: Generator[paths.Step, Any, T]) -> T:
        """Drive a resolver flow with sync requests; its return value is the result. A miss says, for a
        service account, whom to invite."""
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            except NotFound as exc:
                hint = self._not_visible_hint()
                if not hint:
                    raise
                raise NotFound(f"{exc}{hint}", status=exc.status, code=exc.code) from None
            answer = self._call(step)

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

    async def _arun(self, flow: Generator[paths.Step, Any, T]) -> T:
        """Drive a resolver flow with async requests."""
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            answer = await self._acall(step)

    def _lookup(self, ref: str | int, want: paths.ItemType | None = None) -> paths.Item:
        return self._run(paths.lookup(self._paths, ref, self._who(), want))

    async def _alookup(self, ref: str | int, want: paths.ItemType | None = None) -> paths.Item:
        return await self._arun(paths.lookup(self._paths, ref, self._who(), want))

    def _resolve(self, path: str) -> paths.Item | None:
        return self._run(paths.resolve(self._paths, paths.split_path(path)))

    def get_item_id(self, path_or_id: str | int) -> str:
        """The Box id of a path (ids pass through unchanged); raises NotFound when nothing is there."""
        item_id = paths.item_id_of(path_or_id)
        return item_id if item_id is not None else self._lookup(path_or_id).id

    # ------------------------------------------------------------------ RemoteFiles: reading

    def _object(self, ref: str | int, want: paths.ItemType | None = None) -> dict[str, Any]:
        return self._run(paths.fetch(self._paths, ref, self._who(), want))

    async def _aobject(self, ref: str | int, want: paths.ItemType | None = None) -> dict[str, Any]:
        return await self._arun(paths.fetch(self._paths, ref, self._who(), want))

    def info(self, path: str) -> RemoteEntry:
        """The entry at ``path`` (or ``id:<id>``); NotFound when absent."""
        return paths.entry_of(self._object(path))

    async def ainfo(self, path: str) -> RemoteEntry:
        """Async ``info``."""
        return paths.entry_of(await self._aobject(path))

    def _walk(self, folder: RemoteEntry, recursive: bool) -> Iterator[tuple[str, RemoteEntry]]:
        flow, answer = paths.walk(self._paths, folder, recursive), None
        while (step := paths.next_step(flow, answer)) is not None:
            if isinstance(step, paths.Emit):
                answer = None
                yield step.relative, step.entry
            else:
                answer = self._call(step)

    async def _awalk(self, folder: RemoteEntry, recursive: bool) -> AsyncIterator[tuple[str, RemoteEntry]]:
        flow, answer = paths.walk(self._paths, folder, recursive), None
        while (step := paths.next_step(flow, answer)) is not None:
            if isinstance(step, paths.Emit):
                answer = None
                yield step.relative, step.entry
            else:
                answer = await self._acall(step)

    def read_bytes(self, remote: str) -> bytes:
        """A small file's content in memory (SHA-1 checked when the hook verifies checksums)."""
        info, _ = self._download_info(remote, None)
        buffer = io.BytesIO()
        download.fetch_into(self, info, buffer)
        return buffer.getvalue()

    def read_range(self, remote: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of a file, one ranged request (no checksum: a part)."""
        return download.read_range(self, self.get_item_id(remote), start, end)

    def download_file(
        self, remote: str | RemoteEntry, local: str | os.PathLike[str], version: str | None = None
    ) -> Path:
        """Download a file to ``local`` atomically: streamed into a temp file beside it, its size and (unless
        ``verify_checksums`` is off) SHA-1 checked, then renamed; on any failure no file (partial or temp) is
        left behind. ``version`` is a file version id from ``versions()``. Returns ``local`` as a Path.

        ``remote`` may be an entry from ``list()``: its listed size and SHA-1 are used, so no request for
        the file's metadata is made (a file changed since it was listed is fetched again, as it is now).
        Without checksums an id (``id:123``) needs no metadata either: the size comes with the bytes."""
        target = Path(local)
        if target.is_dir():
            raise IsADirectoryError(f"{str(target)!r} is a directory; give the destination file's path")
        target.parent.mkdir(parents=True, exist_ok=True)
        info, listed = self._download_info(remote, version)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                try:
                    download.fetch_into(self, info, handle, version)
                except ChecksumMismatch:
                    current = self._object(f"id:{info['id']}", "file") if listed else info
                    if current.get("sha1") == info.get("sha1"):
                        raise
                    handle.seek(0)  # changed since it was listed: fetch it as it is now
                    handle.truncate()
                    download.fetch_into(self, current, handle)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return target

    def _download_info(self, remote: str | RemoteEntry, version: str | None) -> tuple[dict[str, Any], bool]:
        """(the file object ``fetch_into`` needs, whether it came from a listing). Metadata is asked for
        only when it is needed: never for a listed entry, nor for an id when checksums are not verified."""
        if isinstance(remote, RemoteEntry):
            listed = self._listed_info(remote) if version is None else None
            if listed is not None:
                return listed, True
            remote = remote.ref
        if (
            version is None
            and not self.verify_checksums
            and (file_id := paths.item_id_of(remote)) is not None
        ):
            return {"id": file_id}, False
        info = self._object(remote, "file")
        if version is not None:
            info = file_api.version_info(self, info, str(version))
        return info, False

    def _listed_info(self, entry: RemoteEntry) -> dict[str, Any] | None:
        """What a listed file's entry tells a download (id, name, and size and SHA-1 when verifying), or None
        when it lacks what is needed (a folder, or an entry without the listing's size and SHA-1)."""
        if not entry.is_file or paths.item_id_of(entry.ref) is None:
            return None
        if not self.verify_checksums:
            return {"id": entry.id, "name": entry.name}
        if entry.size is None or not entry.content_hash or entry.hash_algorithm != "sha1":
            return None
        return {"id": entry.id, "name": entry.name, "size": entry.size, "sha1": entry.content_hash}

    # ------------------------------------------------------------------ RemoteFiles: folders and deletion

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = True) -> RemoteEntry:
        """Create the folder at ``path`` (and missing parents with ``parents``).

        A concurrent creator's folder (409 ``item_name_in_use``) counts as existing.
        """
        parts = paths.split_path(path)
        if not parts:
            if exist_ok:
                return paths.entry_of({"type": "folder", "id": paths.ROOT_ID, "name": "All Files"})
            raise AlreadyExists("the Box root folder always exists", status=409, code="item_name_in_use")
        parent = paths.ROOT
        for depth, name in enumerate(parts):
            here = parts[: depth + 1]
            last = depth == len(parts) - 1
            existing = self._run(paths.resolve(self._paths, here))
            if existing is not None:
                if existing.type != "folder":
                    raise AlreadyExists(
                        f"Box path {paths.display(here)!r} is a file, so a folder cannot be created there; "
                        "delete the file or choose another path",
                        status=409,
                        code="item_name_in_use",
                    )
                if last and not exist_ok:
                    raise AlreadyExists(
                        f"Box folder {paths.display(here)!r} already exists; pass exist_ok=True to accept it",
                        status=409,
                        code="item_name_in_use",
                    )
                parent = existing
                continue
            if not last and not parents:
                raise NotFound(
                    f"Box folder {paths.display(parts[:-1])!r} does not exist; create it first, or pass "
                    "parents=True",
                    status=404,
                    code="not_found",
                )
            parent = self._make_folder(parent.id, name, here, exist_ok=exist_ok or not last)
        return paths.entry_of({"type": "folder", "id": parent.id, "name": parts[-1]}, paths.display(parts))

    def _make_folder(self, parent_id: str, name: str, parts: list[str], *, exist_ok: bool) -> paths.Item:
        response = self.request(
            "POST",
            f"{API}/folders",
            json={"name": name, "parent": {"id": parent_id}},
            params={"fields": "id,name,type"},
            expected=(201, 409),
        )
        if response.status_code == 201:
            item = paths.Item(str(response.json()["id"]), "folder")
        else:
            conflict = upload.conflict_of(response)
            # Resent after a lost answer, a folder of that name in this parent is the one this call made.
            made = transport.may_have_acted(response)
            if conflict is None or conflict.get("type") != "folder" or not (exist_ok or made):
                kind = conflict.get("type", "item") if conflict else "item"
                raise AlreadyExists(
                    f"Box already has a {kind} named {name!r} in {paths.display(parts[:-1])!r}; "
                    + ("choose another name" if kind != "folder" else "pass exist_ok=True to accept it"),
                    status=409,
                    code="item_name_in_use",
                )
            item = paths.Item(str(conflict["id"]), "folder")
        self._paths.remember(parts, item)
        return item

    def delete(
        self, path: str, recursive: bool = False, missing_ok: bool = False, *, etag: str | None = None
    ) -> None:
        """Delete a file, or a folder (a non-empty one only with ``recursive``); ``missing_ok`` accepts a
        missing path. With ``etag`` (from ``RemoteEntry.etag``) only that version of the item is deleted:
        a changed item raises ``PreconditionFailed`` (If-Match, 412)."""
        try:
            self._delete(path, recursive, etag)
        except NotFound:
            if not missing_ok:
                raise

    def _delete(self, ref: str | int, recursive: bool, etag: str | None = None) -> None:
        item = self._lookup(ref)
        if item.id == paths.ROOT_ID and item.type == "folder":
            raise InvalidRemotePath("the Box root folder cannot be deleted; name a folder inside it")
        headers = {"If-Match": etag} if etag is not None else {}
        with _explained_precondition(f"Box {item.type} {ref!r}", etag):
            if item.type == "file":
                response = self.request(
                    "DELETE", f"{API}/files/{item.id}", headers=headers, expected=(204, 404)
                )
            else:
                params = {"recursive": "true"} if recursive else {}
                response = self.request(
                    "DELETE",
                    f"{API}/folders/{item.id}",
                    params=params,
                    headers=headers,
                    expected=(204, 400, 404),
                )
        if response.status_code == 400:
            code = services.box_error_details(response).code
            if code == "folder_not_empty":
                raise PreconditionFailed(
                    f"Box folder {ref!r} is not empty; pass recursive=True to delete it with everything "
                    "inside",
                    400,
                    code,
                )
            raise services.error_from_response("box", response, self.conn_id)
        parts = None if paths.item_id_of(ref) is not None else paths.split_path(str(ref))
        self._paths.forget(parts, item.id)
        if response.status_code == 404 and transport.may_have_acted(response):
            return  # resent after a lost answer: the first attempt moved it to the trash
        if response.status_code == 404:
            raise NotFound(
                f"Box {item.type} {item.id} ({ref!r}) does not exist for {self._who()}",
                status=404,
                code="not_found",
            )

    # ------------------------------------------------------------------ RemoteFiles: uploads

    def upload_file(
        self,
        local: str | os.PathLike[str],
        remote: str,
        overwrite: bool = False,
        *legacy: Any,
        etag: str | None = None,
        **deprecated: Any,
    ) -> RemoteEntry:
        """Upload a local file to ``remote`` (the file's full path; ``.../`` means into that folder under the
        local name; missing folders are created). The SHA-1 Box stores is checked (unless
        ``verify_checksums`` is off: a file below 20 MB is then not hashed at all). An existing file with
        the same content is not a conflict; different content needs ``overwrite`` (a new version).

        ``etag`` (from ``RemoteEntry.etag``) uploads a new version only over that version of the existing
        file (If-Match): a file changed since raises ``PreconditionFailed``; no file there too."""
        name = self._deprecated_name(deprecated, "upload_file")
        if legacy or isinstance(overwrite, str):  # the old positional order (local, folder, name, overwrite)
            warn_deprecated(
                "BoxHook.upload_file(local, folder, name)", "BoxHook.upload_file(local, 'folder/name')"
            )
            name, overwrite = _old_name_and_overwrite(overwrite, legacy)
        source = local_file(local)
        with source.open("rb") as handle:
            return self._upload(handle, remote, name, source.name, bool(overwrite), etag)

    def write_bytes(
        self,
        remote: str,
        data: bytes,
        overwrite: bool = False,
        *legacy: Any,
        etag: str | None = None,
        **deprecated: Any,
    ) -> RemoteEntry:
        """Write ``data`` as the file at ``remote`` (same targets and rules as ``upload_file``)."""
        name = self._deprecated_name(deprecated, "write_bytes")
        if isinstance(
            remote, (bytes, bytearray, memoryview)
        ):  # the old order: (data, remote, name, overwrite)
            warn_deprecated("BoxHook.write_bytes(data, remote)", "BoxHook.write_bytes(remote, data)")
            remote, data = data, bytes(remote)
            if legacy or isinstance(overwrite, str):
                name, overwrite = _old_name_and_overwrite(overwrite, legacy)
        return self._upload(io.BytesIO(data), remote, name, None, bool(overwrite), etag)

    @staticmethod
    def _deprecated_name(deprecated: dict[str, Any], method: str) -> str | None:
        name = deprecated.pop("name", None)
        if deprecated:
            raise TypeError(f"BoxHook.{method}() got unexpected keyword argument(s) {sorted(deprecated)}")
        if name is not None:
            warn_deprecated(f"BoxHook.{method}(..., name=...)", f"BoxHook.{method}('<folder>/<name>', ...)")
        return str(name) if name is not None else None

    def _target(
        self, remote: str | int, name: str | None, local_name: str | None
    ) -> tuple[str, str, list[str] | None]:
        """(folder id, file name, folder path parts or None) of an upload target."""
        folder_id = paths.item_id_of(remote)
        if folder_id is not None:
            if not name:
                raise InvalidRemotePath(
                    f"uploading into folder id {remote} needs a file name: pass name='...'"
                )
            return folder_id, name, None
        text = str(remote)
        if text.endswith("/") and (folder_id := paths.item_id_of(text.rstrip("/"))) is not None:
            if not local_name:
                raise InvalidRemotePath(f"uploading into folder id {remote} needs a file name: add it")
            return folder_id, local_name, None
        parts = paths.split_path(text)
        if name is not None:
            return self.mkdir(text).id, name, parts
        if text.endswith("/") or not parts:
            if not local_name:
                raise InvalidRemotePath(
                    f"uploading into the folder {text!r} needs a file name: add it to the path"
                )
            return self.mkdir(text).id, local_name, parts
        existing = self._resolve(text)
        if existing is not None and existing.type == "folder" and local_name:
            warn_deprecated(
                "BoxHook.upload_file() to an existing folder's path without a trailing '/'",
                "BoxHook.upload_file(local, '<folder>/')",
            )
            return existing.id, local_name, parts
        folder = parts[:-1]
        return (self.mkdir(paths.display(folder)).id if folder else paths.ROOT_ID), parts[-1], folder

    def _upload(  # noqa: PLR0917
        self,
        handle: IO[bytes],
        remote: str | int,
        name: str | None,
        local_name: str | None,
        overwrite: bool,
        etag: str | None = None,
    ) -> RemoteEntry:
        folder_id, file_name, folder_parts = self._target(remote, name, local_name)
        size = upload.size_of(handle)
        cached = self._paths.get([*folder_parts, file_name]) if folder_parts is not None else None
        entry: dict[str, Any] | None = None
        if etag is not None:
            entry = self._upload_if_match(handle, size, folder_id, file_name, folder_parts, etag)
        elif cached is not None and cached.type == "file" and overwrite:
            try:
                entry = upload.send_content(self, handle, size, folder_id, file_name, cached.id)
            except ServiceError as exc:
                if exc.status != 404:
                    raise
                assert folder_parts is not None
                self._paths.forget([*folder_parts, file_name])  # deleted elsewhere since it was cached
        if entry is None:
            entry = upload.send_content(self, handle, size, folder_id, file_name, None)
        if "conflict" in entry and etag is None:
            conflict = entry["conflict"]
            same = conflict.get("type") == "file" and conflict.get("sha1") == upload.file_sha1(handle)
            if same and not overwrite:  # a resent or repeated upload of the same bytes: already done
                entry = self._object(f"id:{conflict['id']}", "file")
            elif conflict.get("type") != "file" or not overwrite:
                raise AlreadyExists(
                    f"Box folder {folder_id} already has a {conflict.get('type', 'item')} named "
                    f"{file_name!r} (id {conflict.get('id')}); pass overwrite=True to upload a new version "
                    "of a file, or choose another name",
                    status=409,
                    code="item_name_in_use",
                )
            else:
                entry = upload.send_content(self, handle, size, folder_id, file_name, str(conflict["id"]))
        if "conflict" in entry:
            raise AlreadyExists(
                f"Box kept reporting a conflict for {file_name!r}; run again", 409, "item_name_in_use"
            )
        path = paths.display([*folder_parts, file_name]) if folder_parts is not None else None
        if folder_parts is not None:
            self._paths.remember([*folder_parts, file_name], paths.Item(str(entry["id"]), "file"))
        return paths.entry_of(entry, path)

    def _upload_if_match(  # noqa: PLR0917
        self,
        handle: IO[bytes],
        size: int,
        folder_id: str,
        file_name: str,
        folder_parts: list[str] | None,
        etag: str,
    ) -> dict[str, Any]:
        """A new version over the file whose etag is ``etag``. A 412 whose file now holds these very bytes
        is success: a resend after a lost answer (the first attempt made the version) or the same write."""
        if folder_parts is not None:
            item = self._resolve(paths.display([*folder_parts, file_name]))
        else:
            listed = self.list(f"id:{folder_id}")
            found = next((e for e in listed if e.name.lower() == file_name.lower()), None)
            item = paths.Item(found.id, found.kind) if found is not None else None
        if item is None or item.type != "file":
            raise PreconditionFailed(
                f"Box has no file named {file_name!r} in folder {folder_id} to match etag {etag!r}; upload "
                "without etag= to create it",
                412,
                "precondition_failed",
            )
        try:
            return upload.send_content(self, handle, size, folder_id, file_name, item.id, etag)
        except PreconditionFailed:
            current = self._object(f"id:{item.id}", "file")
            if current.get("sha1") == upload.file_sha1(handle):
                return current
            raise PreconditionFailed(
                f"Box file {file_name!r} ({item.id}) changed since etag {etag!r} was read (its etag is now "
                f"{current.get('etag')!r}); read it again with info(), merge, and retry with the new etag",
                412,
                "precondition_failed",
            ) from None

    # ------------------------------------------------------------------ RemoteFiles: move and copy

    def _relocation(
        self, src: str, dst: str, overwrite: bool, *, keep_source: bool, etag: str | None = None
    ) -> RemoteEntry:
        item = self._lookup(src)
        if item.id == paths.ROOT_ID:
            raise InvalidArgument("the Box root folder cannot be moved or copied")
        parts = paths.split_path(dst)
        if not parts:
            raise InvalidRemotePath("give the destination's full path, e.g. '/archive/report.csv'")
        folder = self.mkdir(paths.display(parts[:-1])).id if len(parts) > 1 else paths.ROOT_ID
        body: dict[str, Any] = {"name": parts[-1], "parent": {"id": folder}}
        if etag is not None and not keep_source:
            # Box honours If-Match on a rename but documents that it cannot prevent a move to another
            # folder: a rename is sent as one (no parent), a move is preceded by the hook's own check.
            current = self._object(f"id:{item.id}", item.type)
            if str((current.get("parent") or {}).get("id")) == folder:
                del body["parent"]
            elif current.get("etag") is not None and str(current["etag"]) != etag:
                return self._moved_before(src, item, parts, folder, etag)
        method, url = (
            ("POST", f"{API}/{item.type}s/{item.id}/copy")
            if keep_source
            else ("PUT", f"{API}/{item.type}s/{item.id}")
        )
        headers = {"If-Match": etag} if etag is not None else {}
        try:
            response = self.request(method, url, json=body, headers=headers, expected=(200, 201, 409))
        except PreconditionFailed:
            return self._moved_before(src, item, parts, folder, etag)
        if response.status_code == 409:
            conflict = upload.conflict_or_raise(self, response)
            if (
                item.type == "file"
                and conflict.get("type") == "file"
                and conflict.get("sha1")
                and conflict.get("sha1") == self._object(f"id:{item.id}", "file").get("sha1")
            ):  # identical content already there (a resent or repeated call): done, nothing replaced
                if not keep_source and str(conflict["id"]) != item.id:
                    self._delete(f"id:{item.id}", False)
                    self._paths.forget(
                        None if paths.item_id_of(src) is not None else paths.split_path(src), item.id
                    )
                found = paths.entry_of(self._object(f"id:{conflict['id']}", "file"), paths.display(parts))
                self._paths.remember(parts, paths.Item(found.id, "file"))
                return found
            if not overwrite or conflict.get("type") != "file" or item.type != "file":
                raise AlreadyExists(
                    f"Box already has a {conflict.get('type', 'item')} at {dst!r}; "
                    + (
                        "pass overwrite=True to replace it"
                        if conflict.get("type") == "file"
                        else "choose another path"
                    ),
                    status=409,
                    code="item_name_in_use",
                )
            self._delete(f"id:{conflict['id']}", False)
            response = self.request(method, url, json=body, expected=(200, 201))
        if not keep_source:
            self._paths.forget(None if paths.item_id_of(src) is not None else paths.split_path(src), item.id)
        self._paths.forget(parts)
        result = paths.entry_of(response.json(), paths.display(parts))
        self._paths.remember(parts, paths.Item(result.id, result.kind))
        return result

    def _moved_before(
        self, src: str, item: paths.Item, parts: list[str], folder_id: str, etag: str | None
    ) -> RemoteEntry:
        """After a 412 on a move: the item already at ``parts`` is success (a resend whose first attempt
        moved it, which changed its etag); otherwise PreconditionFailed saying what to do."""
        moved = self._object(f"id:{item.id}", item.type)
        if str((moved.get("parent") or {}).get("id")) != folder_id or moved.get("name") != parts[-1]:
            raise PreconditionFailed(
                f"Box {item.type} {src!r} changed since etag {etag!r} was read (its etag is now "
                f"{moved.get('etag')!r}); read it again with info() and retry with the new etag",
                412,
                "precondition_failed",
            )
        self._paths.forget(None if paths.item_id_of(src) is not None else paths.split_path(src), item.id)
        self._paths.forget(parts)
        done = paths.entry_of(moved, paths.display(parts))
        self._paths.remember(parts, paths.Item(done.id, done.kind))
        return done

    def move(self, src: str, dst: str, overwrite: bool = False, *, etag: str | None = None) -> RemoteEntry:
        """Move or rename ``src`` to the full path ``dst`` (``PUT`` with a new name and parent); with
        ``etag`` only if the item is still that version (else ``PreconditionFailed``). Box honours
        ``If-Match`` on a rename in place but not on a move to another folder: there the hook compares the
        etag itself just before the move (a change landing between the two is not caught)."""
        return self._relocation(src, dst, overwrite, keep_source=False, etag=etag)

    def copy(self, src: str, dst: str, overwrite: bool = False) -> RemoteEntry:
        """Copy ``src`` to the full path ``dst`` (``POST …/copy``)."""
        return self._relocation(src, dst, overwrite, keep_source=True)

    # ------------------------------------------------------------------ search, links and versions

    def search(self, query: str, path: str | None = None, limit: int | None = None) -> Iterator[RemoteEntry]:
        """Files and folders whose name contains ``query`` (case-insensitive), below the folder ``path`` if
        given, at most ``limit`` (``GET /search`` with ``ancestor_folder_ids``; Box indexes new items after
        a few minutes and matches words, so a fragment inside a word may not be found)."""
        return file_api.search(self, query, path, limit)

    def temporary_link(self, path: str) -> str:
        """A direct download URL of a file: the pre-signed URL behind ``/files/{id}/content`` (no token;
        it expires within minutes)."""
        return file_api.temporary_link(self, path)

    def shared_link(
        self,
        path: str,
        access: SharedLinkAccess = "public",
        password: str | None = None,
        expires: datetime | str | None = None,
    ) -> str:
        """The item's shared link with these settings (``public`` = open, ``team`` = company,
        ``collaborators``); a password needs ``public``. A repeated call keeps the same URL."""
        return file_api.shared_link(self, path, access, password, expires)

    def versions(self, path: str) -> list[RemoteVersion]:
        """The file's versions, newest (current) first (Box keeps earlier versions on paid plans)."""
        return file_api.versions(self, path)

    # ------------------------------------------------------------------ deprecated names

    def get_file_info(self, path_or_id: str | int) -> dict[str, Any]:
        """Deprecated: ``info(path).raw`` (Box's full object)."""
        warn_deprecated("BoxHook.get_file_info()", "BoxHook.info()")
        return self._object(path_or_id)

    async def aget_file_info(self, path_or_id: str | int) -> dict[str, Any]:
        """Deprecated: ``(await ainfo(path)).raw``."""
        warn_deprecated("BoxHook.aget_file_info()", "BoxHook.ainfo()")
        return await self._aobject(path_or_id)

    def list_folder(
        self, path_or_id: str | int = "0", limit: int = LIST_LIMIT, fields: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Deprecated: ``list(path)`` (this yields Box's mini objects, as it always did)."""
        warn_deprecated("BoxHook.list_folder()", "BoxHook.list()")
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

    async def alist_folder(
        self, path_or_id: str | int = "0", limit: int = LIST_LIMIT, fields: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Deprecated: ``alist(path)``."""
        warn_deprecated("BoxHook.alist_folder()", "BoxHook.alist()")
        folder = await self.ainfo(
            str(path_or_id) if paths.item_id_of(path_or_id) is None else f"id:{path_or_id}"
        )
        async for _, entry in self._awalk(folder, False):
            yield dict(entry.raw)

    def create_folder(self, path: str, parents: bool = True, exist_ok: bool = True) -> str:
        """Deprecated: ``mkdir(path, parents, exist_ok).id``."""
        warn_deprecated("BoxHook.create_folder()", "BoxHook.mkdir()")
        return self.mkdir(path, parents, exist_ok).id


def _old_name_and_overwrite(third: Any, rest: tuple[Any, ...]) -> tuple[str | None, bool]:
    """(name, overwrite) of the old positional arguments ``…, name, overwrite``."""
    if len(rest) > 1:
        raise TypeError("BoxHook takes at most (remote, data|local, name, overwrite) in the old order")
    return (str(third) if third not in (None, False) else None), bool(rest[0]) if rest else False


@contextlib.contextmanager
def _explained_precondition(what: str, etag: str | None) -> Iterator[None]:
    """A 412 of an If-Match request as PreconditionFailed that says what to do."""
    try:
        yield
    except PreconditionFailed as exc:
        if etag is None or exc.status != 412:
            raise
        raise PreconditionFailed(
            f"{what} changed since etag {etag!r} was read; read it again with info() and retry with its new "
            "etag (or without etag= to act whatever its state)",
            412,
            exc.code or "precondition_failed",
        ) from exc
