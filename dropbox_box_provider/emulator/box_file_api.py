"""Box API 2.0 routes beyond transfers: ``GET /search``, ``GET /files/{id}/versions``, downloads of an
earlier version (``/files/{id}/content?version=``) and shared links (``PUT /files/{id}`` with a
``shared_link`` body). Every other request of those paths goes to ``box_api``."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dropbox_box_provider.emulator import box_api
from dropbox_box_provider.emulator.access import Caller, box_caller, emulator_state
from dropbox_box_provider.emulator.box_api import (
    API,
    DOWNLOAD,
    MAX_OFFSET,
    _bad_request,
    _check_if_match,
    _file,
    _folder,
    _int_param,
    _iso,
    _json_body,
    _user_mini,
    full,
)
from dropbox_box_provider.emulator.files import Node, Revision
from dropbox_box_provider.emulator.responses import ApiError, box_not_found, json_response
from dropbox_box_provider.emulator.state import random_token

SEARCH_DEFAULT_LIMIT = 30
SEARCH_MAX_LIMIT = 200
ACCESS_LEVELS = ("open", "company", "collaborators")


async def search(request: Request) -> Response:
    """GET /2.0/search: items whose name contains ``query`` (case-insensitive), below
    ``ancestor_folder_ids`` when given; offset paging (limit <= 200, offset <= 10000)."""
    caller = box_caller(request)
    query = (request.query_params.get("query") or "").strip()
    if not query:
        raise _bad_request("'query' is required (or 'mdfilters')", "bad_request")
    limit = min(_int_param(request, "limit", SEARCH_DEFAULT_LIMIT), SEARCH_MAX_LIMIT) or SEARCH_DEFAULT_LIMIT
    offset = _int_param(request, "offset", 0)
    if offset > MAX_OFFSET:
        raise _bad_request(f"Invalid value '{offset}'. 'offset' must be at most {MAX_OFFSET}")
    wanted_type = request.query_params.get("type")
    ancestors = [i for i in (request.query_params.get("ancestor_folder_ids") or "").split(",") if i]
    with emulator_state(request).lock:
        roots = [_folder(caller, folder_id) for folder_id in ancestors] or [caller.tree.root]
        words = query.strip('"').lower().split()
        seen: dict[str, Node] = {}
        for root in roots:
            for node in root.walk():
                if all(word in node.name.lower() for word in words):
                    seen.setdefault(node.id, node)
        found = [
            n
            for n in seen.values()
            if wanted_type is None or wanted_type == ("folder" if n.folder else "file")
        ]
        entries = [full(node, caller) for node in found[offset : offset + limit]]
    return json_response(
        {
            "type": "search_results_items",
            "total_count": len(found),
            "limit": limit,
            "offset": offset,
            "entries": entries,
        }
    )


def _version(node: Node, caller: Caller, revision: Revision) -> dict[str, Any]:
    """Box's file version object of an earlier version."""
    sha1, size, when = revision.sha1, len(revision.content), revision.modified_at
    return {
        "type": "file_version",
        "id": revision.version_id,
        "sha1": sha1,
        "name": node.name,
        "size": size,
        "created_at": _iso(when),
        "modified_at": _iso(when),
        "modified_by": _user_mini(caller),
        "trashed_at": None,
        "trashed_by": None,
        "restored_at": None,
        "restored_by": None,
        "purged_at": None,
        "uploader_display_name": caller.account.name,
    }


async def file_versions(request: Request) -> Response:
    """GET /2.0/files/{id}/versions: the file's earlier versions, newest first (not the current one)."""
    caller = box_caller(request)
    limit = min(_int_param(request, "limit", 1000), 1000) or 1000
    offset = _int_param(request, "offset", 0)
    with emulator_state(request).lock:
        node = _file(caller, request.path_params["file_id"])
        earlier = [_version(node, caller, r) for r in reversed(list(node.revisions.values())) if r.version_id]
    return json_response(
        {
            "total_count": len(earlier),
            "entries": earlier[offset : offset + limit],
            "limit": limit,
            "offset": offset,
            "order": [{"by": "created_at", "direction": "DESC"}],
        }
    )


async def download_redirect(request: Request) -> Response:
    """GET /2.0/files/{id}/content?version=<file version id>: 302 to that version's bytes."""
    version_id = request.query_params.get("version")
    if not version_id:
        return await box_api.download_redirect(request)
    caller = box_caller(request)
    state = emulator_state(request)
    with state.lock:
        node = _file(caller, request.path_params["file_id"])
        if version_id == node.version_id:
            content = node.content
        else:
            revision = next((r for r in node.revisions.values() if r.version_id == version_id), None)
            if revision is None:
                raise ApiError(box_not_found("file_version", version_id))
            content = revision.content
        token = random_token(40)
        state.download_links[token] = (
            node.name,
            content,
            time.time() + float(state.config["box_download_link_ttl"]),
        )
    location = f"{str(request.base_url).rstrip('/')}{DOWNLOAD}/d/1/{token}/download"
    return RedirectResponse(location, status_code=302)


def _shared_link(node: Node, asked: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """Box's shared_link object for the settings asked (a link keeps its URL when its settings change)."""
    access = asked.get("access") or (existing or {}).get("access") or "open"
    if access not in ACCESS_LEVELS:
        raise _bad_request(f"Invalid value '{access}' for shared_link.access", "bad_request")
    password = asked.get("password")
    if password is not None and access != "open":
        raise _bad_request("A password can only be set on a shared link with 'open' access", "bad_request")
    token = str((existing or {}).get("url", "")).rpartition("/")[2] or secrets.token_hex(16)
    extension = node.name.rpartition(".")[2] if "." in node.name else ""
    permissions = {"can_download": True, "can_preview": True, "can_edit": False}
    permissions.update(asked.get("permissions") or {})
    return {
        "url": f"https://app.box.com/s/{token}",
        "download_url": f"https://app.box.com/shared/static/{token}{'.' + extension if extension else ''}",
        "vanity_url": None,
        "vanity_name": asked.get("vanity_name"),
        "access": access,
        "effective_access": access,
        "effective_permission": "can_download" if permissions["can_download"] else "can_preview",
        "unshared_at": asked.get("unshared_at"),
        "is_password_enabled": bool(password) or bool((existing or {}).get("is_password_enabled")),
        "permissions": permissions,
        "download_count": 0,
        "preview_count": 0,
    }


async def update_file(request: Request) -> Response:
    """PUT /2.0/files/{id}: a shared link, else the rename/move of ``box_api``."""
    data = await _json_body(request)
    if "shared_link" not in data:
        return await box_api.update_file(request)
    return _set_shared_link(request, data, folder=False)


async def update_folder(request: Request) -> Response:
    """PUT /2.0/folders/{id}: a shared link, else the rename/move of ``box_api``."""
    data = await _json_body(request)
    if "shared_link" not in data:
        return await box_api.update_folder(request)
    return _set_shared_link(request, data, folder=True)


def _set_shared_link(request: Request, data: dict[str, Any], folder: bool) -> Response:
    """``{"shared_link": {...}}`` (or null to remove it); with ``fields`` only those (and type, id, etag)
    come back."""
    caller = box_caller(request)
    state = emulator_state(request)
    item_id = request.path_params["item_id"]
    with state.lock:
        node = _folder(caller, item_id) if folder else _file(caller, item_id)
        if node.parent is None:
            raise _bad_request("The root folder cannot have a shared link", "bad_request")
        _check_if_match(request, node)
        asked = data["shared_link"]
        if asked is None:
            node.shared_link = None
        elif isinstance(asked, dict):
            node.shared_link = _shared_link(node, asked, node.shared_link)
        else:
            raise _bad_request("'shared_link' must be an object or null", "bad_request")
        state.changed()
        body = full(node, caller)
    fields = request.query_params.get("fields")
    if fields:
        wanted = {f.strip() for f in fields.split(",")} | {"type", "id", "etag"}
        body = {k: v for k, v in body.items() if k in wanted}
    return json_response(body)


def routes() -> list[Route]:
    """The routes above; listed before ``box_api``'s so they see these paths first."""
    return [
        Route(f"{API}/search", search, methods=["GET"]),
        Route(f"{API}/files/{{file_id}}/versions", file_versions, methods=["GET"]),
        Route(f"{API}/files/{{file_id}}/content", download_redirect, methods=["GET"]),
        Route(f"{API}/files/{{item_id}}", update_file, methods=["PUT"]),
        Route(f"{API}/folders/{{item_id}}", update_folder, methods=["PUT"]),
    ]
