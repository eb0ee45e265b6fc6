"""Dropbox API v2 routes beyond transfers: ``files/search_v2`` (+ ``search/continue_v2``),
``files/get_temporary_link`` (served at ``dl.dropboxusercontent.com``), ``files/list_revisions`` and
``sharing/create_shared_link_with_settings``."""

from __future__ import annotations

import calendar
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropbox_box_provider.emulator.access import Caller, emulator_state
from dropbox_box_provider.emulator.dropbox_api import (
    API,
    _check_path,
    _field,
    _readable,
    _rpc,
    folder_at,
    metadata,
)
from dropbox_box_provider.emulator.files import Node
from dropbox_box_provider.emulator.responses import (
    ApiError,
    download_link_response,
    dropbox_bad_request,
    dropbox_error,
    dropbox_route_error,
)
from dropbox_box_provider.emulator.state import random_token

TEMPORARY_LINK_HOST = "/dl.dropboxusercontent.com"
TEMPORARY_LINK_TTL = 4 * 3600.0
VISIBILITIES = {"public": "public", "team_only": "team", "password": "password"}
AUDIENCES = ("public", "team", "no_one")


def search(caller: Caller, arg: Any, request: Request) -> Any:
    """files/search_v2: items whose name contains every word of ``query`` (case-insensitive), optionally
    below ``options.path``, ``options.max_results`` (1..1000, default 100) per page."""
    route = "files/search_v2"
    query = _field(arg, "query", route)
    if not query.strip():
        return dropbox_route_error("invalid_argument")
    options = _field(arg, "options", route, {}, dict)
    path = _field(options, "path", route, "")
    limit = _field(options, "max_results", route, 100, int)
    if not 1 <= limit <= 1000:
        raise ApiError(
            dropbox_bad_request(route, f"request body: options.max_results: {limit} is not within range")
        )
    at = folder_at(caller, request, path, route)
    if not isinstance(at, tuple):
        return at
    caller, path, folder = at
    words = query.lower().split()
    found = [node.id for node in folder.walk() if all(word in node.name.lower() for word in words)]
    return _search_page(caller, request, found, 0, limit)


def _search_page(caller: Caller, request: Request, ids: list[str], position: int, limit: int) -> Any:
    state = emulator_state(request)
    chunk = [i for i in ids[position : position + limit] if i in caller.tree.index]
    matches = [
        {
            "match_type": {".tag": "filename"},
            "metadata": {".tag": "metadata", "metadata": metadata(caller.tree.index[i])},
        }
        for i in chunk
    ]
    more = position + limit < len(ids)
    result: dict[str, Any] = {"matches": matches, "has_more": more}
    if more:
        cursor = "SRCH" + random_token(60)
        state.cursors[cursor] = {
            "tree": caller.tree_id,
            "ids": ids,
            "position": position + limit,
            "limit": limit,
            "search": True,
        }
        result["cursor"] = cursor
    return result


def search_continue(caller: Caller, arg: Any, request: Request) -> Any:
    """files/search/continue_v2."""
    cursor = _field(arg, "cursor", "files/search/continue_v2")
    saved = emulator_state(request).cursors.get(cursor)
    if saved is None or saved["tree"] != caller.tree_id or not saved.get("search"):
        return dropbox_route_error("invalid_argument")
    return _search_page(caller, request, saved["ids"], saved["position"], saved["limit"])


def _file_at(caller: Caller, request: Request, path: str, route: str) -> Node | Response:
    _check_path(path, route, allow_root=False, allow_rev=True)
    found = _readable(caller, emulator_state(request), path)
    if isinstance(found, Response):
        return found
    node, _ = found
    if node.folder:
        return dropbox_route_error("path", "not_file")
    return node


def get_temporary_link(caller: Caller, arg: Any, request: Request) -> Any:
    """files/get_temporary_link: a 4-hour link to the bytes (no authorization needed to fetch it)."""
    route = "files/get_temporary_link"
    path = _field(arg, "path", route)
    _check_path(path, route, allow_root=False, allow_rev=True)
    found = _readable(caller, emulator_state(request), path)
    if isinstance(found, Response):
        return found
    node, revision = found
    if node.folder:
        return dropbox_route_error("path", "not_file")
    state = emulator_state(request)
    token = random_token(43)
    state.download_links[token] = (node.name, (revision or node).content, time.time() + TEMPORARY_LINK_TTL)
    link = f"{str(request.base_url).rstrip('/')}{TEMPORARY_LINK_HOST}/cd/0/get/{token}/file"
    return {"metadata": metadata(node, tagged=False, revision=revision), "link": link}


async def temporary_link_content(request: Request) -> Response:
    """GET dl.dropboxusercontent.com/cd/0/get/{token}/file: the bytes, Range supported; 410 once expired."""
    state = emulator_state(request)
    with state.lock:
        link = state.download_links.get(request.path_params["token"])
    expired = Response(b"Gone: the temporary link expired", status_code=410, media_type="text/plain")
    return download_link_response(link, request.headers.get("range"), expired)


def list_revisions(caller: Caller, arg: Any, request: Request) -> Any:
    """files/list_revisions: the file's revisions, newest first (``limit`` 1..100, default 10)."""
    route = "files/list_revisions"
    path = _field(arg, "path", route)
    limit = _field(arg, "limit", route, 10, int)
    if not 1 <= limit <= 100:
        raise ApiError(
            dropbox_bad_request(route, f"request body: limit: {limit} is not within range [1, 100]")
        )
    node = _file_at(caller, request, path, route)
    if isinstance(node, Response):
        return node
    entries = [metadata(node, tagged=False)]
    for revision in reversed(list(node.revisions.values())):
        entries.append(metadata(node, tagged=False, revision=revision))
    return {"is_deleted": False, "entries": entries[:limit], "has_more": len(entries) > limit}


def _link_metadata(node: Node, settings: dict[str, Any], request: Request) -> dict[str, Any]:
    visibility = settings["visibility"]
    data: dict[str, Any] = {
        ".tag": "folder" if node.folder else "file",
        "url": f"https://www.dropbox.com/scl/fi/{settings['token']}/{node.name}?rlkey=emulator&dl=0",
        "id": node.id,
        "name": node.name,
        "path_lower": node.path_display().lower(),
        "link_permissions": {
            "can_revoke": True,
            "visibility_policies": [
                {"policy": {".tag": tag}, "resolved_policy": {".tag": tag}, "allowed": True}
                for tag in ("public", "team_only", "password")
            ],
            "can_set_expiry": True,
            "can_remove_expiry": True,
            "can_allow_download": True,
            "can_disallow_download": True,
            "allow_comments": True,
            "team_restricts_comments": False,
            "resolved_visibility": {".tag": visibility},
            "requested_visibility": {".tag": visibility},
            "effective_audience": {".tag": settings["audience"]},
            "link_access_level": {".tag": "viewer"},
            "require_password": visibility == "password",
            "allow_download": True,
        },
    }
    if settings.get("expires"):
        data["expires"] = settings["expires"]
    if not node.folder:
        data.update(
            {
                "client_modified": metadata(node)["client_modified"],
                "server_modified": metadata(node)["server_modified"],
                "rev": node.rev,
                "size": len(node.content),
            }
        )
    return data


def _tag(value: Any, route: str, name: str) -> str | None:
    if value is None:
        return None
    tag = value.get(".tag") if isinstance(value, dict) else value
    if not isinstance(tag, str):
        raise ApiError(dropbox_bad_request(route, f"request body: settings.{name}: expected a union tag"))
    return tag


def create_shared_link(caller: Caller, arg: Any, request: Request) -> Any:
    """sharing/create_shared_link_with_settings: a new link, or 409 ``shared_link_already_exists`` carrying
    the existing link's metadata (Dropbox keeps one link per item)."""
    route = "sharing/create_shared_link_with_settings"
    path = _field(arg, "path", route)
    _check_path(path, route, allow_root=False, allow_rev=True)
    settings = _field(arg, "settings", route, {}, dict)
    found = _readable(caller, emulator_state(request), path)
    if isinstance(found, Response):
        return found
    node, _ = found
    if node.shared_link is not None:
        existing = _link_metadata(node, node.shared_link, request)
        error = {
            ".tag": "shared_link_already_exists",
            "shared_link_already_exists": {".tag": "metadata", "metadata": existing},
        }
        return dropbox_error(409, "shared_link_already_exists", error)
    requested = _tag(settings.get("requested_visibility"), route, "requested_visibility")
    audience = _tag(settings.get("audience"), route, "audience") or (
        VISIBILITIES.get(requested or "public", "public")
    )
    if requested is not None and requested not in VISIBILITIES:
        return dropbox_route_error("settings_error", "invalid_settings")
    if audience not in (*AUDIENCES, "password"):
        return dropbox_route_error("settings_error", "invalid_settings")
    password = settings.get("link_password")
    if requested == "password" and not password:
        return dropbox_route_error("settings_error", "invalid_settings")
    expires = settings.get("expires")
    if expires is not None:
        try:
            when = calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ"))
        except (TypeError, ValueError):
            raise ApiError(
                dropbox_bad_request(route, "request body: settings.expires: bad timestamp")
            ) from None
        if when <= time.time():
            return dropbox_route_error("settings_error", "invalid_settings")
    visibility = "password" if password else {"team": "team_only"}.get(audience, "public")
    node.shared_link = {
        "token": random_token(25).lower(),
        "visibility": visibility,
        "audience": "password" if password else audience,
        "expires": expires,
    }
    emulator_state(request).changed()
    return _link_metadata(node, node.shared_link, request)


def routes() -> list[Route]:
    """The routes above, at api.dropboxapi.com/2/ and the temporary-link host."""
    rpc = {
        "files/search_v2": search,
        "files/search/continue_v2": search_continue,
        "files/get_temporary_link": get_temporary_link,
        "files/list_revisions": list_revisions,
        "sharing/create_shared_link_with_settings": create_shared_link,
    }
    result = [Route(API + name, _rpc(name, handler), methods=["POST"]) for name, handler in rpc.items()]
    result.append(
        Route(f"{TEMPORARY_LINK_HOST}/cd/0/get/{{token}}/file", temporary_link_content, methods=["GET"])
    )
    return result
