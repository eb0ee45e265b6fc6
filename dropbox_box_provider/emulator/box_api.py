"""Box API 2.0 routes: users/me, folders, items paging, files, multipart and chunked uploads, downloads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import time
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.emulator.access import Caller, box_caller, emulator_state
from dropbox_box_provider.emulator.files import Node
from dropbox_box_provider.emulator.responses import (
    ApiError,
    box_error,
    box_not_found,
    download_link_response,
    json_response,
)
from dropbox_box_provider.emulator.state import BoxUploadSession, random_token

API = "/api.box.com/2.0"
UPLOAD = "/upload.box.com/api/2.0"
DOWNLOAD = "/dl.boxcloud.com"
MIN_CHUNKED_SIZE = 20_000_000
PART_SIZE = 8 * 1024 * 1024
MAX_PART_SIZE = 128 * 1024 * 1024
MAX_LIMIT = 1000
MAX_OFFSET = 10000
MAX_FORM_PART = 1024 * 1024 * 1024
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
ITEMS_ORDER = [{"by": "type", "direction": "ASC"}, {"by": "name", "direction": "ASC"}]


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(timestamp))


def _user_mini(caller: Caller) -> dict[str, Any]:
    account = caller.account
    return {"type": "user", "id": account.id, "name": account.name, "login": account.email}


def mini(node: Node) -> dict[str, Any]:
    """Box's mini item (as in items listings, path collections and conflicts)."""
    if node.parent is None:
        return {"type": "folder", "id": "0", "sequence_id": None, "etag": None, "name": "All Files"}
    data: dict[str, Any] = {
        "type": "folder" if node.folder else "file",
        "id": node.id,
        "sequence_id": str(node.version),
        "etag": str(node.version),
        "name": node.name,
    }
    if not node.folder:
        data["sha1"] = node.sha1
        data["file_version"] = {"type": "file_version", "id": node.version_id, "sha1": node.sha1}
    return data


def full(node: Node, caller: Caller, trashed_at: float | None = None) -> dict[str, Any]:
    """Box's standard file/folder object (as a trashed item when ``trashed_at`` is given)."""
    data = mini(node)
    ancestors = node.ancestors()
    data.update(
        {
            "description": "",
            "size": node.size,
            "path_collection": {"total_count": len(ancestors), "entries": [mini(a) for a in ancestors]},
            "created_at": _iso(node.created_at),
            "modified_at": _iso(node.modified_at),
            "trashed_at": _iso(trashed_at) if trashed_at is not None else None,
            "purged_at": _iso(trashed_at + 30 * 86400) if trashed_at is not None else None,
            "content_created_at": _iso(node.created_at),
            "content_modified_at": _iso(node.modified_at),
            "created_by": _user_mini(caller),
            "modified_by": _user_mini(caller),
            "owned_by": _user_mini(caller),
            "shared_link": node.shared_link,
            "parent": mini(node.parent) if node.parent is not None else None,
            "item_status": "trashed" if trashed_at is not None else "active",
        }
    )
    if node.folder:
        children = _sorted_children(node)
        data["item_collection"] = {
            "total_count": len(children),
            "entries": [mini(c) for c in children[:100]],
            "offset": 0,
            "limit": 100,
            "order": ITEMS_ORDER,
        }
    return data


def _sorted_children(node: Node) -> list[Node]:
    return sorted(node.children.values(), key=lambda n: (not n.folder, n.name.lower()))


def _bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(box_error(400, code, message))


def _folder(caller: Caller, folder_id: str) -> Node:
    node = caller.tree.index.get(folder_id)
    if node is None or not node.folder:
        _raise_if_trashed(caller, folder_id, folder=True)
        raise ApiError(box_not_found("folder", folder_id))
    return node


def _file(caller: Caller, file_id: str) -> Node:
    node = caller.tree.index.get(file_id)
    if node is None or node.folder:
        _raise_if_trashed(caller, file_id, folder=False)
        raise ApiError(box_not_found("file", file_id))
    return node


def _raise_if_trashed(caller: Caller, item_id: str, folder: bool) -> None:
    """A trashed item answers 404 with code ``trashed`` (not ``not_found``) until it is restored."""
    node = caller.tree.trashed.get(item_id)
    if node is not None and node.folder == folder:
        raise ApiError(box_error(404, "trashed", "Item is trashed"))


def _trashed(caller: Caller, item_id: str, folder: bool) -> Node:
    """A restorable item in the trash (the item that was deleted, not something inside it)."""
    entry = caller.tree.trash.get(item_id)
    if entry is None or entry[0].folder != folder:
        raise ApiError(box_not_found("folder" if folder else "file", item_id))
    return entry[0]


def _check_name(name: Any) -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or "/" in name
        or "\\" in name
        or name in (".", "..")
        or name != name.strip()
    ):
        raise _bad_request(f"Item name invalid: {name!r}", "item_name_invalid")
    return name


def _name_conflict(parent: Node, name: str, as_list: bool) -> ApiError | None:
    existing = parent.children.get(name.lower())
    if existing is None:
        return None
    conflicts: Any = [mini(existing)] if as_list else mini(existing)
    message = "Item with the same name already exists"
    return ApiError(box_error(409, "item_name_in_use", message, {"conflicts": conflicts}))


def _check_if_match(request: Request, node: Node) -> None:
    wanted = request.headers.get("if-match")
    if wanted is not None and wanted != str(node.version):
        message = "The resource has been modified. Please retrieve the resource again and retry"
        raise ApiError(box_error(412, "precondition_failed", message))


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise _bad_request("Invalid JSON body") from exc
    if not isinstance(data, dict):
        raise _bad_request("The body must be a JSON object")
    return data


async def users_me(request: Request) -> Response:
    """GET /2.0/users/me."""
    caller = box_caller(request)
    account = caller.account
    return json_response(
        {
            "type": "user",
            "id": account.id,
            "name": account.name,
            "login": account.email,
            "created_at": "2024-01-01T00:00:00+00:00",
            "modified_at": "2024-01-01T00:00:00+00:00",
            "language": "en",
            "timezone": "UTC",
            "space_amount": 10 * 1024**4,
            "space_used": caller.tree.root.size,
            "max_upload_size": 50 * 1024**3,
            "status": "active",
            "job_title": "",
            "phone": "",
            "address": "",
            "avatar_url": "",
            "notification_email": None,
            "enterprise": {"type": "enterprise", "id": account.enterprise_id, "name": "Emulated Enterprise"}
            if account.enterprise_id
            else None,
        }
    )


async def get_folder(request: Request) -> Response:
    """GET /2.0/folders/{id}."""
    caller = box_caller(request)
    with emulator_state(request).lock:
        return json_response(full(_folder(caller, request.path_params["folder_id"]), caller))


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _bad_request(f"Invalid value '{raw}' for query parameter '{name}'") from exc
    if value < 0:
        raise _bad_request(f"Invalid value '{raw}' for query parameter '{name}'")
    return value


async def folder_items(request: Request) -> Response:
    """GET /2.0/folders/{id}/items: offset paging (limit <= 1000, offset <= 10000) or usemarker paging."""
    caller = box_caller(request)
    limit = min(_int_param(request, "limit", 100), MAX_LIMIT) or 100
    use_marker = request.query_params.get("usemarker", "").lower() == "true"
    if use_marker:
        marker = request.query_params.get("marker")
        try:
            offset = int(base64.urlsafe_b64decode(marker.encode()).decode()) if marker else 0
        except ValueError as exc:
            raise _bad_request(f"Invalid marker '{marker}'", "invalid_parameter") from exc
    else:
        offset = _int_param(request, "offset", 0)
        if offset > MAX_OFFSET:
            raise _bad_request(
                f"Invalid value '{offset}'. 'offset' must be at most {MAX_OFFSET}; use marker paging"
            )
    with emulator_state(request).lock:
        children = _sorted_children(_folder(caller, request.path_params["folder_id"]))
        page = children[offset : offset + limit]
        fields = request.query_params.get("fields")
        if fields:  # Box returns the requested fields (plus type, id, etag) instead of the mini object
            wanted = {f.strip() for f in fields.split(",")} | {"type", "id", "etag"}
            entries = [{k: v for k, v in full(c, caller).items() if k in wanted} for c in page]
        else:
            entries = [mini(c) for c in page]
    if use_marker:
        next_offset = offset + len(entries)
        next_marker = (
            base64.urlsafe_b64encode(str(next_offset).encode()).decode()
            if next_offset < len(children)
            else None
        )
        return json_response(
            {"entries": entries, "limit": limit, "next_marker": next_marker, "order": ITEMS_ORDER}
        )
    return json_response(
        {
            "total_count": len(children),
            "entries": entries,
            "offset": offset,
            "limit": limit,
            "order": ITEMS_ORDER,
        }
    )


async def create_folder(request: Request) -> Response:
    """POST /2.0/folders {name, parent: {id}}: 201, or 409 item_name_in_use with the conflicts list."""
    caller = box_caller(request)
    data = await _json_body(request)
    name = _check_name(data.get("name"))
    parent_id = str((data.get("parent") or {}).get("id", ""))
    if not parent_id:
        raise _bad_request("'parent' with an 'id' is required")
    state = emulator_state(request)
    with state.lock:
        parent = _folder(caller, parent_id)
        conflict = _name_conflict(parent, name, as_list=True)
        if conflict is not None:
            raise conflict
        node = caller.tree.add(parent, name, True, state.new_box_id())
        state.changed()
        return json_response(full(node, caller), 201)


async def delete_folder(request: Request) -> Response:
    """DELETE /2.0/folders/{id}?recursive=true: 204; a non-empty folder needs recursive."""
    caller = box_caller(request)
    state = emulator_state(request)
    with state.lock:
        node = _folder(caller, request.path_params["folder_id"])
        if node.parent is None:
            raise ApiError(
                box_error(403, "access_denied_insufficient_permissions", "The root folder cannot be deleted")
            )
        _check_if_match(request, node)
        if node.children and request.query_params.get("recursive", "").lower() != "true":
            raise _bad_request("Folder is not empty: pass recursive=true", "folder_not_empty")
        caller.tree.move_to_trash(node)
        state.changed()
    return Response(status_code=204)


async def _relocate(request: Request, kind: str, keep_source: bool) -> Response:
    """PUT /2.0/{files,folders}/{id} (rename/move by ``name``/``parent``) and POST …/{id}/copy."""
    caller = box_caller(request)
    data = await _json_body(request)
    state = emulator_state(request)
    with state.lock:
        item_id = request.path_params["item_id"]
        node = _folder(caller, item_id) if kind == "folder" else _file(caller, item_id)
        if node.parent is None:
            raise ApiError(box_error(403, "access_denied_insufficient_permissions", "The root cannot move"))
        parent_id = str((data.get("parent") or {}).get("id", "")) or (None if keep_source else node.parent.id)
        if not keep_source and parent_id == node.parent.id:
            # Box: If-Match guards an update of the item's information (a rename), but "cannot prevent
            # moving a file, folder, or web link": a move to another parent ignores it, as does a copy.
            _check_if_match(request, node)
        if parent_id is None:
            raise _bad_request("'parent' with an 'id' is required")
        parent = _folder(caller, parent_id)
        name = _check_name(data.get("name", node.name))
        if caller.tree.is_within(parent, node):
            raise _bad_request("Cannot move or copy a folder into itself", "item_move_into_itself")
        existing = parent.children.get(name.lower())
        if existing is not None and (keep_source or existing is not node):
            conflict = _name_conflict(parent, name, as_list=kind == "folder")
            assert conflict is not None
            raise conflict
        if keep_source:
            moved = caller.tree.copy(node, parent, name, state.new_box_id)
        else:
            moved = caller.tree.move(node, parent, name)
        state.changed()
        return json_response(full(moved, caller), 201 if keep_source else 200)


async def update_file(request: Request) -> Response:
    """PUT /2.0/files/{id}: rename and/or move."""
    return await _relocate(request, "file", keep_source=False)


async def update_folder(request: Request) -> Response:
    """PUT /2.0/folders/{id}: rename and/or move."""
    return await _relocate(request, "folder", keep_source=False)


async def copy_file(request: Request) -> Response:
    """POST /2.0/files/{id}/copy."""
    return await _relocate(request, "file", keep_source=True)


async def copy_folder(request: Request) -> Response:
    """POST /2.0/folders/{id}/copy."""
    return await _relocate(request, "folder", keep_source=True)


async def get_file(request: Request) -> Response:
    """GET /2.0/files/{id}."""
    caller = box_caller(request)
    with emulator_state(request).lock:
        return json_response(full(_file(caller, request.path_params["file_id"]), caller))


async def delete_file(request: Request) -> Response:
    """DELETE /2.0/files/{id}: 204."""
    caller = box_caller(request)
    state = emulator_state(request)
    with state.lock:
        node = _file(caller, request.path_params["file_id"])
        _check_if_match(request, node)
        caller.tree.move_to_trash(node)
        state.changed()
    return Response(status_code=204)


async def get_trashed(request: Request) -> Response:
    """GET /2.0/files/{id}/trash and /2.0/folders/{id}/trash: the item as it lies in the trash."""
    caller = box_caller(request)
    folder = "folder_id" in request.path_params
    item_id = request.path_params["folder_id" if folder else "file_id"]
    with emulator_state(request).lock:
        node = _trashed(caller, item_id, folder)
        return json_response(full(node, caller, trashed_at=caller.tree.trash[item_id][2]))


async def restore_trashed(request: Request) -> Response:
    """POST /2.0/files/{id} or /2.0/folders/{id} {name?, parent?: {id}}: back from the trash, 201."""
    caller = box_caller(request)
    folder = "folder_id" in request.path_params
    item_id = request.path_params["folder_id" if folder else "file_id"]
    data = await _json_body(request)
    state = emulator_state(request)
    with state.lock:
        node = _trashed(caller, item_id, folder)
        parent_id = str((data.get("parent") or {}).get("id") or caller.tree.trash[item_id][1])
        parent = caller.tree.index.get(parent_id)
        if parent is None or not parent.folder:
            message = "The parent folder of the item is gone: give a 'parent' to restore it into"
            raise ApiError(box_error(409, "parent_item_not_found", message))
        name = _check_name(data.get("name") or node.name)
        conflict = _name_conflict(parent, name, as_list=True)
        if conflict is not None:
            raise conflict
        caller.tree.restore(node, parent, name)
        state.changed()
        return json_response(full(node, caller), 201)


async def purge_trashed(request: Request) -> Response:
    """DELETE /2.0/files/{id}/trash and /2.0/folders/{id}/trash: gone for good, 204."""
    caller = box_caller(request)
    folder = "folder_id" in request.path_params
    item_id = request.path_params["folder_id" if folder else "file_id"]
    state = emulator_state(request)
    with state.lock:
        caller.tree.purge(_trashed(caller, item_id, folder))
        state.changed()
    return Response(status_code=204)


async def download_redirect(request: Request) -> Response:
    """GET /2.0/files/{id}/content: 302 to a pre-signed dl.boxcloud.com URL on this emulator."""
    caller = box_caller(request)
    state = emulator_state(request)
    with state.lock:
        node = _file(caller, request.path_params["file_id"])
        token = random_token(40)
        expires_at = time.time() + float(state.config["box_download_link_ttl"])
        state.download_links[token] = (node.name, node.content, expires_at)
        now = time.time()
        for stale in [key for key, link in state.download_links.items() if link[2] < now - 3600]:
            del state.download_links[stale]
    location = f"{str(request.base_url).rstrip('/')}{DOWNLOAD}/d/1/{token}/download"
    return RedirectResponse(location, status_code=302)


async def download_content(request: Request) -> Response:
    """GET dl.boxcloud.com/d/1/{token}/download: the bytes, Range supported (206 + Content-Range)."""
    state = emulator_state(request)
    with state.lock:
        link = state.download_links.get(request.path_params["token"])
    expired = Response(b"Forbidden: the download link has expired", status_code=403, media_type="text/plain")
    return download_link_response(link, request.headers.get("range"), expired)


async def _hashes(content: bytes) -> tuple[str, str]:
    def compute() -> tuple[str, str]:
        return hashlib.sha1(content, usedforsecurity=False).hexdigest(), dropbox_content_hash(content)

    return await asyncio.to_thread(compute) if len(content) > PART_SIZE else compute()


async def _multipart(request: Request, attributes_required: bool) -> tuple[dict[str, Any], bytes]:
    """The ``attributes`` JSON and the ``file`` bytes; attributes must come first."""
    form = await request.form(max_part_size=MAX_FORM_PART)
    try:
        keys = [key for key, _ in form.multi_items()]
        if "file" not in keys:
            raise _bad_request("Missing the 'file' part of the multipart body")
        if "attributes" not in keys:
            if attributes_required:
                raise _bad_request("Missing the 'attributes' part of the multipart body")
            attributes: dict[str, Any] = {}
        else:
            if keys.index("attributes") > keys.index("file"):
                raise _bad_request(
                    "Attributes must be sent before the file contents in the multipart body",
                    "metadata_after_file_contents",
                )
            raw = form["attributes"]
            text = raw if isinstance(raw, str) else (await raw.read()).decode("utf-8")
            try:
                attributes = json.loads(text)
            except ValueError as exc:
                raise _bad_request("The 'attributes' part is not valid JSON") from exc
        part = form["file"]
        content = await part.read() if isinstance(part, UploadFile) else part.encode("utf-8")
    finally:
        await form.close()
    return attributes, content


def _check_content_md5(request: Request, sha1: str) -> None:
    expected = request.headers.get("content-md5")
    if expected is not None and expected.lower() != sha1:
        raise _bad_request(
            "The Content-MD5 header (SHA-1 of the file) does not match the uploaded bytes", "bad_digest"
        )


async def upload_file(request: Request) -> Response:
    """POST upload.box.com/api/2.0/files/content: multipart (attributes, then file) -> 201 entries."""
    caller = box_caller(request)
    attributes, content = await _multipart(request, attributes_required=True)
    name = _check_name(attributes.get("name"))
    parent_id = str((attributes.get("parent") or {}).get("id", ""))
    if not parent_id:
        raise _bad_request("attributes.parent.id is required")
    sha1, content_hash = await _hashes(content)
    _check_content_md5(request, sha1)
    state = emulator_state(request)
    with state.lock:
        parent = _folder(caller, parent_id)
        conflict = _name_conflict(parent, name, as_list=False)
        if conflict is not None:
            raise conflict
        node = caller.tree.add(parent, name, False, state.new_box_id())
        node.set_content(content, sha1, content_hash)
        state.changed()
        return json_response({"total_count": 1, "entries": [full(node, caller)]}, 201)


async def upload_version(request: Request) -> Response:
    """POST upload.box.com/api/2.0/files/{id}/content: a new version (optional attributes.name)."""
    caller = box_caller(request)
    attributes, content = await _multipart(request, attributes_required=False)
    sha1, content_hash = await _hashes(content)
    _check_content_md5(request, sha1)
    state = emulator_state(request)
    with state.lock:
        node = _file(caller, request.path_params["file_id"])
        _check_if_match(request, node)
        new_name = attributes.get("name")
        if new_name and new_name.lower() != node.name.lower() and node.parent is not None:
            conflict = _name_conflict(node.parent, _check_name(new_name), as_list=False)
            if conflict is not None:
                raise conflict
            del node.parent.children[node.name.lower()]
            node.name = new_name
            node.parent.children[new_name.lower()] = node
        node.set_content(content, sha1, content_hash)
        state.changed()
        return json_response({"total_count": 1, "entries": [full(node, caller)]}, 201)


def part_size_for(file_size: int, threshold: int) -> int:
    """Box's part size grows with the file: 8 MiB below ``threshold``, doubling for each 4x larger band
    (with the default 128 MiB threshold a 1 GB file gets 32 MiB parts, as Box answers)."""
    part_size, band = PART_SIZE, max(threshold, 1)
    while file_size >= band and part_size < MAX_PART_SIZE:
        part_size *= 2
        band *= 4
    return part_size


def _session_json(request: Request, session: BoxUploadSession) -> dict[str, Any]:
    base = f"{str(request.base_url).rstrip('/')}{UPLOAD}/files/upload_sessions/{session.id}"
    return {
        "type": "upload_session",
        "id": session.id,
        "session_expires_at": _iso(session.created_at + 7 * 86400),
        "part_size": session.part_size,
        "total_parts": max(1, math.ceil(session.file_size / session.part_size)),
        "num_parts_processed": len(session.parts),
        "session_endpoints": {
            "upload_part": base,
            "commit": f"{base}/commit",
            "abort": base,
            "list_parts": f"{base}/parts",
            "status": base,
            "log_event": f"{base}/log",
        },
    }


async def create_session(request: Request) -> Response:
    """POST upload_sessions (new file) or files/{id}/upload_sessions (new version); files >= 20 MB only."""
    caller = box_caller(request)
    data = await _json_body(request)
    file_size = data.get("file_size")
    if not isinstance(file_size, int) or isinstance(file_size, bool) or file_size < 0:
        raise _bad_request("file_size (an integer) is required")
    if file_size < MIN_CHUNKED_SIZE:
        raise _bad_request(
            f"File size {file_size} less than minimum allowed for this API: {MIN_CHUNKED_SIZE}",
            "file_size_too_small",
        )
    state = emulator_state(request)
    file_id = request.path_params.get("file_id")
    with state.lock:
        if file_id is not None:
            _file(caller, file_id)
            folder_id, name = None, data.get("file_name")
        else:
            name = _check_name(data.get("file_name"))
            folder_id = str(data.get("folder_id", ""))
            conflict = _name_conflict(_folder(caller, folder_id), name, as_list=False)
            if conflict is not None:
                raise conflict
        session = BoxUploadSession(
            id=random_token(32, "0123456789ABCDEF"),
            tree_id=caller.tree_id,
            folder_id=folder_id,
            file_id=file_id,
            file_name=name,
            file_size=file_size,
            part_size=part_size_for(file_size, int(state.config["box_part_size_threshold"])),
        )
        state.box_sessions[session.id] = session
        return json_response(_session_json(request, session), 201)


def _session(request: Request, caller: Caller) -> BoxUploadSession:
    session = emulator_state(request).box_sessions.get(request.path_params["session_id"])
    if session is None or session.tree_id != caller.tree_id:
        raise ApiError(box_not_found("upload_session", request.path_params["session_id"]))
    return session


def _digest(request: Request) -> str | None:
    header = request.headers.get("digest", "")
    for item in header.split(","):
        algorithm, _, value = item.strip().partition("=")
        if algorithm.lower() == "sha":
            return value.strip()
    return None


def _b64_sha1(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode("ascii")


async def upload_part(request: Request) -> Response:
    """PUT a part: Content-Range aligned to part_size, Digest sha=<base64 SHA-1>."""
    caller = box_caller(request)
    content = await request.body()
    state = emulator_state(request)
    with state.lock:
        session = _session(request, caller)
    match = CONTENT_RANGE.match(request.headers.get("content-range", ""))
    if match is None:
        raise _bad_request("Content-Range header 'bytes <start>-<end>/<total>' is required")
    start, end, total = (int(g) for g in match.groups())
    if total != session.file_size or end < start or end >= total:
        raise ApiError(
            box_error(416, "range_not_satisfiable", "The Content-Range does not match the session")
        )
    last = end == total - 1
    if start % session.part_size or (end - start + 1 != session.part_size and not last):
        raise ApiError(box_error(416, "range_not_satisfiable", "Parts must be aligned to part_size"))
    if len(content) != end - start + 1:
        raise _bad_request("The body length does not match the Content-Range")
    digest = _digest(request)
    part_sha = await asyncio.to_thread(_b64_sha1, content)
    if digest is None:
        raise _bad_request("The Digest header 'sha=<base64 SHA-1 of the part>' is required", "bad_digest")
    if digest != part_sha:
        raise _bad_request("The Digest header does not match the part's SHA-1", "bad_digest")
    part_id = hashlib.sha1(f"{session.id}:{start}".encode(), usedforsecurity=False).hexdigest()[:8].upper()
    sha1_hex = base64.b64decode(part_sha).hex()
    with state.lock:
        session.parts[start] = (part_id, content, sha1_hex)
    return json_response(
        {"part": {"part_id": part_id, "offset": start, "size": len(content), "sha1": sha1_hex}}
    )


def _parts_json(session: BoxUploadSession) -> list[dict[str, Any]]:
    return [
        {"part_id": part_id, "offset": offset, "size": len(data), "sha1": sha1}
        for offset, (part_id, data, sha1) in sorted(session.parts.items())
    ]


async def list_parts(request: Request) -> Response:
    """GET …/parts."""
    caller = box_caller(request)
    with emulator_state(request).lock:
        parts = _parts_json(_session(request, caller))
    return json_response({"entries": parts, "limit": 1000, "offset": 0, "total_count": len(parts)})


async def session_status(request: Request) -> Response:
    """GET the upload session."""
    caller = box_caller(request)
    with emulator_state(request).lock:
        return json_response(_session_json(request, _session(request, caller)))


async def abort_session(request: Request) -> Response:
    """DELETE the upload session: 204."""
    caller = box_caller(request)
    state = emulator_state(request)
    with state.lock:
        session = _session(request, caller)
        del state.box_sessions[session.id]
    return Response(status_code=204)


async def commit_session(request: Request) -> Response:
    """POST …/commit {parts, attributes} with Digest of the whole file: 201 entries (or 202 + Retry-After)."""
    caller = box_caller(request)
    data = await _json_body(request)
    state = emulator_state(request)
    with state.lock:
        session = _session(request, caller)
        if session.commit_attempts < int(state.config["box_commit_pending"]):
            session.commit_attempts += 1
            return Response(status_code=202, headers={"Retry-After": "1"})
        listed = data.get("parts")
        if not isinstance(listed, list) or not listed:
            raise _bad_request("'parts' (the list of uploaded parts) is required")
        uploaded = {p["part_id"]: p for p in _parts_json(session)}
        expected_offset = 0
        for part in sorted(listed, key=lambda p: int(p.get("offset", -1))):
            known = uploaded.get(part.get("part_id"))
            if (
                known is None
                or int(part.get("offset", -1)) != known["offset"]
                or int(part.get("size", -1)) != known["size"]
            ):
                raise _bad_request(
                    f"Part {part.get('part_id')!r} does not match an uploaded part", "invalid_parts"
                )
            if known["offset"] != expected_offset:
                raise _bad_request("The parts do not cover the file contiguously", "invalid_parts")
            expected_offset += known["size"]
        if expected_offset != session.file_size:
            raise _bad_request("The parts do not add up to file_size", "invalid_parts")
        chunks = [session.parts[offset][1] for offset in sorted(session.parts)]
    digest = _digest(request)
    if digest is None:
        raise _bad_request("The Digest header 'sha=<base64 SHA-1 of the file>' is required", "bad_digest")

    def join() -> tuple[bytes, str, str]:
        content = b"".join(chunks)
        return (
            content,
            hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            dropbox_content_hash(content),
        )

    content, sha1, content_hash = await asyncio.to_thread(join)
    if base64.b64encode(bytes.fromhex(sha1)).decode("ascii") != digest:
        raise _bad_request(
            "The Digest header does not match the SHA-1 of the assembled file", "digest_mismatch"
        )
    attributes = data.get("attributes") or {}
    with state.lock:
        if session.file_id is not None:
            node = _file(caller, session.file_id)
            _check_if_match(request, node)
        else:
            name = _check_name(attributes.get("name") or session.file_name)
            parent = _folder(caller, str(session.folder_id))
            conflict = _name_conflict(parent, name, as_list=False)
            if conflict is not None:
                raise conflict
            node = caller.tree.add(parent, name, False, state.new_box_id())
        node.set_content(content, sha1, content_hash)
        state.box_sessions.pop(session.id, None)
        state.changed()
        return json_response({"total_count": 1, "entries": [full(node, caller)]}, 201)


def routes() -> list[Route]:
    """Box routes at /api.box.com/2.0, /upload.box.com/api/2.0 and /dl.boxcloud.com."""
    sessions = f"{UPLOAD}/files/upload_sessions"
    return [
        Route(f"{API}/users/me", users_me, methods=["GET"]),
        Route(f"{API}/folders", create_folder, methods=["POST"]),
        Route(f"{API}/folders/{{folder_id}}", get_folder, methods=["GET"]),
        Route(f"{API}/folders/{{folder_id}}", delete_folder, methods=["DELETE"]),
        Route(f"{API}/folders/{{folder_id}}/items", folder_items, methods=["GET"]),
        Route(f"{API}/files/{{file_id}}", get_file, methods=["GET"]),
        Route(f"{API}/files/{{file_id}}", delete_file, methods=["DELETE"]),
        Route(f"{API}/files/{{file_id}}/content", download_redirect, methods=["GET"]),
        Route(f"{API}/files/{{item_id}}", update_file, methods=["PUT"]),
        Route(f"{API}/folders/{{item_id}}", update_folder, methods=["PUT"]),
        Route(f"{API}/files/{{item_id}}/copy", copy_file, methods=["POST"]),
        Route(f"{API}/folders/{{item_id}}/copy", copy_folder, methods=["POST"]),
        Route(f"{API}/files/{{file_id}}", restore_trashed, methods=["POST"]),
        Route(f"{API}/files/{{file_id}}/trash", get_trashed, methods=["GET"]),
        Route(f"{API}/files/{{file_id}}/trash", purge_trashed, methods=["DELETE"]),
        Route(f"{API}/folders/{{folder_id}}", restore_trashed, methods=["POST"]),
        Route(f"{API}/folders/{{folder_id}}/trash", get_trashed, methods=["GET"]),
        Route(f"{API}/folders/{{folder_id}}/trash", purge_trashed, methods=["DELETE"]),
        Route(f"{UPLOAD}/files/content", upload_file, methods=["POST"]),
        Route(sessions, create_session, methods=["POST"]),
        Route(f"{sessions}/{{session_id}}", upload_part, methods=["PUT"]),
        Route(f"{sessions}/{{session_id}}", session_status, methods=["GET"]),
        Route(f"{sessions}/{{session_id}}", abort_session, methods=["DELETE"]),
        Route(f"{sessions}/{{session_id}}/parts", list_parts, methods=["GET"]),
        Route(f"{sessions}/{{session_id}}/commit", commit_session, methods=["POST"]),
        Route(f"{UPLOAD}/files/{{file_id}}/content", upload_version, methods=["POST"]),
        Route(f"{UPLOAD}/files/{{file_id}}/upload_sessions", create_session, methods=["POST"]),
        Route(f"{DOWNLOAD}/d/1/{{token}}/download", download_content, methods=["GET"]),
        *_event_routes(),
    ]


def _event_routes() -> list[Route]:
    from dropbox_box_provider.emulator import box_events

    return box_events.routes()
