"""Dropbox API v2 routes: account, folders, metadata, delete, upload (single and sessions), download."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.emulator.access import Caller, dropbox_caller, emulator_state
from dropbox_box_provider.emulator.files import Node, Revision, Tree
from dropbox_box_provider.emulator.responses import (
    ApiError,
    bytes_response,
    dropbox_bad_request,
    dropbox_error,
    dropbox_route_error,
    json_response,
)
from dropbox_box_provider.emulator.state import DROPBOX, DropboxUploadSession, EmulatorState, random_token

API = "/api.dropboxapi.com/2/"
CONTENT = "/content.dropboxapi.com/2/"
MAX_UPLOAD = 150 * 1024 * 1024
LARGE = 8 * 1024 * 1024
# Routes without an argument: the only ones that may come with no body (and no Content-Type) at all.
NO_ARGUMENT_ROUTES = frozenset({"users/get_current_account"})
RPC_CONTENT_TYPES = ("application/json", "text/plain; charset=dropbox-cors-hack")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
REV_PATH = re.compile(r"rev:[0-9a-f]{9,}")
NS_PATH = re.compile(r"ns:[0-9]+(/.*)?", re.DOTALL)


def _iso(timestamp: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(timestamp))


def metadata(node: Node, tagged: bool = True, revision: Revision | None = None) -> dict[str, Any]:
    """Dropbox Metadata of a node (``.tag`` only where the route returns the union), or of one of its
    earlier revisions."""
    display = node.path_display()
    data: dict[str, Any] = {".tag": "folder" if node.folder else "file"} if tagged else {}
    data.update({"name": node.name, "path_lower": display.lower(), "path_display": display, "id": node.id})
    if not node.folder:
        version = revision or node
        data.update(
            {
                "client_modified": _iso(version.modified_at),
                "server_modified": _iso(version.modified_at),
                "rev": version.rev,
                "size": len(version.content),
                "is_downloadable": True,
                "content_hash": version.content_hash,
            }
        )
    return data


async def _rpc_arg(request: Request, route: str) -> Any:
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if (
        body.strip()
        and content_type.split(";")[0].strip() != "application/json"
        and content_type not in RPC_CONTENT_TYPES
    ):
        raise ApiError(
            dropbox_bad_request(
                route,
                f'Bad HTTP "Content-Type" header: "{content_type}".  Expecting one of "application/json", '
                '"application/json; charset=utf-8", "text/plain; charset=dropbox-cors-hack".',
            )
        )
    if not body.strip():
        if route in NO_ARGUMENT_ROUTES and not content_type:
            return None  # Dropbox's own curl example for a no-argument route sends no body at all
        raise ApiError(dropbox_bad_request(route, "request body: could not decode input as JSON"))
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ApiError(dropbox_bad_request(route, "request body: could not decode input as JSON")) from exc


def _content_arg(request: Request, route: str) -> Any:
    raw = next((v for k, v in request.headers.raw if k.lower() == b"dropbox-api-arg"), None)
    if raw is None:
        arg = request.query_params.get("arg")
        if arg is None:
            raise ApiError(
                dropbox_bad_request(
                    route, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".'
                )
            )
        raw = arg.encode("utf-8")
    elif any(byte >= 0x7F for byte in raw):
        raise ApiError(
            dropbox_bad_request(
                route,
                'HTTP header "Dropbox-API-Arg": must be ASCII; escape non-ASCII and 0x7F as \\uXXXX',
            )
        )
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(
            dropbox_bad_request(route, 'HTTP header "Dropbox-API-Arg": could not decode input as JSON')
        ) from exc


def _field(arg: Any, name: str, route: str, default: Any = ..., kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(arg, dict):
        raise ApiError(dropbox_bad_request(route, "request body: expected an object"))
    if name not in arg:
        if default is ...:
            raise ApiError(dropbox_bad_request(route, f"request body: missing required field '{name}'"))
        return default
    value = arg[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(dropbox_bad_request(route, f"request body: {name}: wrong type"))
    return value


def _check_path(path: str, route: str, allow_root: bool, allow_rev: bool = False) -> None:
    """Dropbox's path patterns: ``/…``, ``id:…``, ``ns:<digits>[/…]``; ``rev:<hex>`` only where reading."""
    if path == "" and allow_root:
        return
    if path.startswith("rev:"):
        valid = allow_rev and REV_PATH.fullmatch(path) is not None
    elif path.startswith("ns:"):
        valid = NS_PATH.fullmatch(path) is not None
    else:
        valid = path.startswith(("/", "id:"))
    if not valid:
        ns = "(ns:[0-9]+(/(.|[\\r\\n])*)?)"  # the patterns of dropbox-sdk-python's validators
        if allow_root:
            pattern = "(/(.|[\\r\\n])*)?|id:.*|" + ns
        elif allow_rev:
            pattern = "(/(.|[\\r\\n])*|id:.*)|(rev:[0-9a-f]{9,})|" + ns
        else:
            pattern = "(/(.|[\\r\\n])*)|" + ns + "|(id:.*)"
        raise ApiError(
            dropbox_bad_request(route, f"request body: path: '{path}' did not match pattern '{pattern}'")
        )


def in_namespace(caller: Caller, state: EmulatorState, path: str) -> tuple[Caller, str] | None:
    """(caller working in namespace N, path inside it) for ``ns:N[/…]``; None if N is not the caller's to
    reach (its own, or a team member's for a team caller). Other paths come back unchanged."""
    if not path.startswith("ns:"):
        return caller, path
    namespace, slash, rest = path[3:].partition("/")
    owner = next(
        (a for a in state.accounts.values() if a.service == DROPBOX and a.namespace_id == namespace), None
    )
    if owner is None or not (
        owner.id == caller.account.id
        or (owner.team_id is not None and owner.team_id == caller.account.team_id)
    ):
        return None
    tree_id = state.tree_id(owner)
    return replace(caller, tree_id=tree_id, tree=state.trees[tree_id]), slash + rest


def _components(path: str) -> list[str] | None:
    parts = path.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts):
        return None
    return parts


def lookup(tree: Tree, path: str) -> Node | str | None:
    """The node at ``path`` ("" is the root), None if missing, "malformed" for a bad path."""
    if path == "":
        return tree.root
    if path.startswith("id:"):
        node_id, _, rest = path.partition("/")
        node = tree.index.get(node_id)
        if node is None or not rest:
            return node
        path, start = "/" + rest, node
    else:
        start = tree.root
    parts = _components(path)
    if parts is None:
        return "malformed"
    current: Node | None = start
    for part in parts:
        if current is None or not current.folder:
            return None
        current = current.children.get(part.lower())
    return current


def _autorename(parent: Node, name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    number = 1
    while True:
        candidate = f"{stem} ({number}).{ext}" if ext else f"{stem} ({number})"
        if candidate.lower() not in parent.children:
            return candidate
        number += 1


def _ensure_parent(tree: Tree, path: str) -> tuple[Node, str] | tuple[None, str]:
    """(parent folder, leaf name), creating missing folders; (None, reason) if a file blocks the way."""
    parts = _components(path) if path.startswith("/") else None
    if not parts:
        return None, "malformed_path"
    node = tree.root
    for part in parts[:-1]:
        child = node.children.get(part.lower())
        if child is None:
            child = tree.add(node, part, True, "id:" + random_token(22))
        elif not child.folder:
            return None, "file"
        node = child
    return node, parts[-1]


def _rpc(
    route: str, handler: Callable[[Caller, Any, Request], Any]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        arg = await _rpc_arg(request, route)
        caller = dropbox_caller(request, route)
        with emulator_state(request).lock:
            result = handler(caller, arg, request)
        if isinstance(result, Response):
            return result
        return json_response(result)

    return endpoint


def get_current_account(caller: Caller, arg: Any, request: Request) -> Any:
    """users/get_current_account."""
    account = caller.account
    given, _, surname = account.name.partition(" ")
    data: dict[str, Any] = {
        "account_id": account.id,
        "name": {
            "given_name": given,
            "surname": surname,
            "familiar_name": given,
            "display_name": account.name,
            "abbreviated_name": "".join(word[0] for word in account.name.split() if word),
        },
        "email": account.email,
        "email_verified": True,
        "disabled": False,
        "country": "US",
        "locale": "en",
        "referral_link": "https://db.tt/emulator",
        "is_paired": False,
        "account_type": {".tag": "business" if account.team_id else "basic"},
        "root_info": {
            ".tag": "user",
            "root_namespace_id": account.namespace_id,
            "home_namespace_id": account.namespace_id,
        },
    }
    if account.member_id:
        data["team_member_id"] = account.member_id
    return data


def folder_at(caller: Caller, request: Request, path: str, route: str) -> tuple[Caller, str, Node] | Response:
    """The folder at ``path`` in the caller's namespace (with the caller and path it resolves to), or the
    route error Dropbox answers: ``not_found``, ``malformed_path`` or ``not_folder``."""
    _check_path(path, route, allow_root=True)
    resolved = in_namespace(caller, emulator_state(request), path)
    if resolved is None:
        return dropbox_route_error("path", "not_found")
    caller, path = resolved
    node = lookup(caller.tree, path)
    if node == "malformed":
        return dropbox_route_error("path", "malformed_path")
    if not isinstance(node, Node):
        return dropbox_route_error("path", "not_found")
    if not node.folder:
        return dropbox_route_error("path", "not_folder")
    return caller, path, node


def list_folder(caller: Caller, arg: Any, request: Request) -> Any:
    """files/list_folder: a snapshot of the listing, paged by ``limit`` through cursors."""
    route = "files/list_folder"
    path = _field(arg, "path", route)
    recursive = _field(arg, "recursive", route, False, bool)
    limit = _field(arg, "limit", route, 500, int)
    if not 1 <= limit <= 2000:
        raise ApiError(
            dropbox_bad_request(route, f"request body: limit: {limit} is not within range [1, 2000]")
        )
    found = folder_at(caller, request, path, route)
    if not isinstance(found, tuple):
        return found
    caller, path, node = found
    children = node.walk() if recursive else sorted(node.children.values(), key=lambda n: n.name.lower())
    ids = [child.id for child in children]
    if recursive and node is not caller.tree.root:
        ids.insert(0, node.id)  # Dropbox lists the folder itself first (not the root, which has no entry)
    from dropbox_box_provider.emulator.dropbox_changes import watch_record

    return _page(caller, request, ids, 0, limit, watch_record(caller, path, recursive, node))


def _page(  # noqa: PLR0917
    caller: Caller,
    request: Request,
    ids: list[str],
    position: int,
    limit: int,
    watch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    state = emulator_state(request)
    chunk = ids[position : position + limit]
    entries = [metadata(caller.tree.index[i]) for i in chunk if i in caller.tree.index]
    cursor = "AAE" + random_token(60)
    state.cursors[cursor] = {
        "tree": caller.tree_id,
        "ids": ids,
        "position": position + len(chunk),
        "limit": limit,
    }
    if watch is not None:  # the listing's last cursor goes on to report changes since the listing
        state.cursors[cursor]["watch"] = watch
    return {"entries": entries, "cursor": cursor, "has_more": position + len(chunk) < len(ids)}


def list_folder_continue(caller: Caller, arg: Any, request: Request) -> Any:
    """files/list_folder/continue: the next page of a listing, then the changes since it."""
    cursor = _field(arg, "cursor", "files/list_folder/continue")
    saved = emulator_state(request).cursors.get(cursor)
    if saved is None or saved["tree"] != caller.tree_id:
        return dropbox_route_error("reset")
    if saved["position"] >= len(saved["ids"]) and "watch" in saved:
        from dropbox_box_provider.emulator.dropbox_changes import continue_changes

        return continue_changes(caller, saved, request)
    return _page(caller, request, saved["ids"], saved["position"], saved["limit"], saved.get("watch"))


def get_metadata(caller: Caller, arg: Any, request: Request) -> Any:
    """files/get_metadata."""
    route = "files/get_metadata"
    path = _field(arg, "path", route)
    _check_path(path, route, allow_root=False, allow_rev=True)
    found = _readable(caller, emulator_state(request), path)
    if isinstance(found, Response):
        return found
    node, revision = found
    return metadata(node, revision=revision)


def _readable(caller: Caller, state: EmulatorState, path: str) -> tuple[Node, Revision | None] | Response:
    """The node at a read path (``rev:`` included: then also the revision), or the route's 409 error."""
    if path.startswith("rev:"):
        found = caller.tree.find_revision(path[4:])
        return found if found is not None else dropbox_route_error("path", "not_found")
    resolved = in_namespace(caller, state, path)
    if resolved is None:
        return dropbox_route_error("path", "not_found")
    caller, path = resolved
    node = lookup(caller.tree, path)
    if node == "malformed":
        return dropbox_route_error("path", "malformed_path")
    if node is None or isinstance(node, str) or node is caller.tree.root:
        return dropbox_route_error("path", "not_found")
    return node, None


def create_folder(caller: Caller, arg: Any, request: Request) -> Any:
    """files/create_folder_v2: creates missing parents too."""
    route = "files/create_folder_v2"
    path = _field(arg, "path", route)
    autorename = _field(arg, "autorename", route, False, bool)
    _check_path(path, route, allow_root=False)
    resolved = in_namespace(caller, emulator_state(request), path)
    if resolved is None:
        return dropbox_route_error("path", "no_write_permission")
    caller, path = resolved
    parent, name = _ensure_parent(caller.tree, path)
    if parent is None:
        if name == "malformed_path":
            return dropbox_route_error("path", "malformed_path")
        return dropbox_route_error("path", "conflict", "file")
    existing = parent.children.get(name.lower())
    if existing is not None:
        if not autorename:
            return dropbox_route_error("path", "conflict", "folder" if existing.folder else "file")
        name = _autorename(parent, name)
    node = caller.tree.add(parent, name, True, "id:" + random_token(22))
    emulator_state(request).changed()
    return {"metadata": metadata(node, tagged=False)}


def delete(caller: Caller, arg: Any, request: Request) -> Any:
    """files/delete_v2."""
    route = "files/delete_v2"
    path = _field(arg, "path", route)
    _check_path(path, route, allow_root=False)
    resolved = in_namespace(caller, emulator_state(request), path)
    if resolved is None:
        return dropbox_route_error("path_lookup", "not_found")
    caller, path = resolved
    node = lookup(caller.tree, path)
    if node == "malformed" or node is caller.tree.root:
        return dropbox_route_error("path_lookup", "malformed_path")
    if node is None or isinstance(node, str):
        return dropbox_route_error("path_lookup", "not_found")
    data = metadata(node)
    caller.tree.remove(node)
    emulator_state(request).changed()
    return {"metadata": data}


def _existing(caller: Caller, path: str, tag: str) -> Node | Response:
    """The non-root node at ``path``, or the route error (under ``tag``) for a malformed or missing path."""
    node = lookup(caller.tree, path)
    if node == "malformed":
        return dropbox_route_error(tag, "malformed_path")
    if node is None or isinstance(node, str) or node is caller.tree.root:
        return dropbox_route_error(tag, "not_found")
    return node


def _relocate(caller: Caller, arg: Any, request: Request, route: str, keep_source: bool) -> Any:
    """files/move_v2 and files/copy_v2: ``from_path`` to ``to_path`` (missing parents are created)."""
    source, target = _field(arg, "from_path", route), _field(arg, "to_path", route)
    _check_path(source, route, allow_root=False)
    _check_path(target, route, allow_root=False)
    node = _existing(caller, source, "from_lookup")
    if isinstance(node, Response):
        return node
    parent, name = _ensure_parent(caller.tree, target)
    if parent is None:
        return dropbox_route_error("to", "malformed_path" if name == "malformed_path" else "conflict")
    if caller.tree.is_within(parent, node):
        return dropbox_route_error("cant_move_folder_into_itself")
    existing = parent.children.get(name.lower())
    if existing is not None and existing is not node:
        return dropbox_route_error("to", "conflict", "folder" if existing.folder else "file")
    if keep_source:
        moved = caller.tree.copy(node, parent, name, lambda: "id:" + random_token(22))
    else:
        moved = caller.tree.move(node, parent, name)
    emulator_state(request).changed()
    return {"metadata": metadata(moved)}


def move(caller: Caller, arg: Any, request: Request) -> Any:
    """files/move_v2."""
    return _relocate(caller, arg, request, "files/move_v2", keep_source=False)


def copy(caller: Caller, arg: Any, request: Request) -> Any:
    """files/copy_v2."""
    return _relocate(caller, arg, request, "files/copy_v2", keep_source=True)


def _mode(value: Any) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict):
        tag = str(value.get(".tag", "add"))
        return tag, value.get(tag) if tag == "update" else None
    return "add", None


def commit_file(  # noqa: PLR0917
    caller: Caller,
    commit: Any,
    route: str,
    content: bytes,
    sha1: str,
    content_hash: str,
    session_id: str | None,
    state: EmulatorState,
) -> Response:
    """Write ``content`` at commit["path"] honouring mode/autorename; the file metadata or a route error."""
    path = _field(commit, "path", route)
    mode, rev = _mode(commit.get("mode", "add"))
    autorename = bool(commit.get("autorename", False))
    _check_path(path, route, allow_root=False)
    resolved = in_namespace(caller, state, path)
    if resolved is None:
        if session_id is None:
            error = {".tag": "path", "reason": {".tag": "no_write_permission"}, "upload_session_id": ""}
            return dropbox_error(409, "path/no_write_permission", error)
        return dropbox_route_error("path", "no_write_permission")
    caller, path = resolved

    def conflict(kind: str) -> Response:
        if session_id is None:
            error = {".tag": "conflict", "conflict": {".tag": kind}}
            return dropbox_error(409, f"path/conflict/{kind}", {".tag": "path", "reason": error,
                                                                "upload_session_id": ""})  # fmt: skip
        return dropbox_route_error("path", "conflict", kind)

    if path.startswith("id:"):
        target = lookup(caller.tree, path)
        if not isinstance(target, Node) or target.folder or target.parent is None:
            return conflict("file")
        parent, name = target.parent, target.name
    else:
        found_parent, name = _ensure_parent(caller.tree, path)
        if found_parent is None:
            return (
                dropbox_route_error("path", "malformed_path")
                if name == "malformed_path"
                else conflict("file")
            )
        parent = found_parent
    existing = parent.children.get(name.lower())
    if existing is not None:
        replace = False
        if existing.folder:
            replace = False
        elif mode == "overwrite" or (mode == "update" and rev == existing.rev):
            replace = True
        elif mode == "add" and existing.content_hash == content_hash:
            return json_response(metadata(existing, tagged=False))
        if replace:
            existing.set_content(content, sha1, content_hash)
            return json_response(metadata(existing, tagged=False))
        if not autorename:
            return conflict("folder" if existing.folder else "file")
        name = _autorename(parent, name)
    node = caller.tree.add(parent, name, False, "id:" + random_token(22))
    node.set_content(content, sha1, content_hash)
    return json_response(metadata(node, tagged=False))


async def _hashes(content: bytes) -> tuple[str, str]:
    def compute() -> tuple[str, str]:
        return hashlib.sha1(content, usedforsecurity=False).hexdigest(), dropbox_content_hash(content)

    if len(content) > LARGE:
        return await asyncio.to_thread(compute)
    return compute()


def _check_octet_stream(request: Request, route: str) -> None:
    content_type = request.headers.get("content-type", "application/octet-stream")
    if content_type not in ("application/octet-stream", "text/plain; charset=dropbox-cors-hack"):
        raise ApiError(
            dropbox_bad_request(
                route,
                f'Bad HTTP "Content-Type" header: "{content_type}".  '
                'Expecting one of "application/octet-stream", '
                '"text/plain; charset=dropbox-cors-hack".',
            )
        )


def _too_large(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) > MAX_UPLOAD


async def upload(request: Request) -> Response:
    """files/upload (at most 150 MiB)."""
    route = "files/upload"
    arg = _content_arg(request, route)
    _check_octet_stream(request, route)
    caller = dropbox_caller(request, route)
    if _too_large(request):
        return dropbox_route_error("payload_too_large")
    content = await request.body()
    if len(content) > MAX_UPLOAD:
        return dropbox_route_error("payload_too_large")
    sha1, content_hash = await _hashes(content)
    expected = arg.get("content_hash") if isinstance(arg, dict) else None
    if expected is not None and expected != content_hash:
        return dropbox_route_error("content_hash_mismatch")
    state = emulator_state(request)
    with state.lock:
        response = commit_file(caller, arg, route, content, sha1, content_hash, None, state)
        state.changed()
    return response


def _chunk_hash_matches(arg: Any, content: bytes) -> bool:
    """Sessions' optional ``content_hash`` covers the bytes of this one request, not the whole file."""
    expected = arg.get("content_hash") if isinstance(arg, dict) else None
    return expected is None or expected == dropbox_content_hash(content)


async def session_start(request: Request) -> Response:
    """files/upload_session/start."""
    route = "files/upload_session/start"
    arg = _content_arg(request, route) or {}
    _check_octet_stream(request, route)
    caller = dropbox_caller(request, route)
    if _too_large(request):
        return dropbox_route_error("payload_too_large")
    content = await request.body()
    if not _chunk_hash_matches(arg, content):
        return dropbox_route_error("content_hash_mismatch")
    state = emulator_state(request)
    session = DropboxUploadSession(
        session_id="pid_upload_session:" + random_token(40),
        tree_id=caller.tree_id,
        chunks=[content] if content else [],
        offset=len(content),
        closed=bool(arg.get("close", False)),
    )
    with state.lock:
        state.dropbox_sessions[session.session_id] = session
    return json_response({"session_id": session.session_id})


def _session_lookup(
    caller: Caller, request: Request, cursor: Any, route: str, wrap: str | None
) -> DropboxUploadSession | Response:
    session_id = _field(cursor, "session_id", route)
    offset = _field(cursor, "offset", route, kind=int)
    state = emulator_state(request)
    session = state.dropbox_sessions.get(session_id)
    tags = [wrap] if wrap else []
    if session is None or session.tree_id != caller.tree_id:
        return dropbox_route_error(*tags, "not_found")
    if time.time() - session.created_at > 7 * 86400:
        return dropbox_route_error(*tags, "not_found")
    if offset != session.offset:
        error: dict[str, Any] = {".tag": "incorrect_offset", "correct_offset": session.offset}
        if wrap:
            return dropbox_error(409, f"{wrap}/incorrect_offset", {".tag": wrap, wrap: error})
        return dropbox_error(409, "incorrect_offset", error)
    return session


async def session_append(request: Request) -> Response:
    """files/upload_session/append_v2 (and the legacy append with a bare cursor)."""
    route = "files/upload_session/append_v2"
    arg = _content_arg(request, route)
    _check_octet_stream(request, route)
    caller = dropbox_caller(request, route)
    if _too_large(request):
        return dropbox_route_error("payload_too_large")
    content = await request.body()
    if not _chunk_hash_matches(arg, content):
        return dropbox_route_error("content_hash_mismatch")
    cursor = arg.get("cursor") if isinstance(arg, dict) and "cursor" in arg else arg
    state = emulator_state(request)
    with state.lock:
        found = _session_lookup(caller, request, cursor, route, None)
        if isinstance(found, Response):
            return found
        if found.closed:
            return dropbox_route_error("closed")
        if content:
            found.chunks.append(content)
            found.offset += len(content)
        if isinstance(arg, dict) and arg.get("close"):
            found.closed = True
    return json_response(None)


async def session_finish(request: Request) -> Response:
    """files/upload_session/finish: join the chunks once and commit."""
    route = "files/upload_session/finish"
    arg = _content_arg(request, route)
    _check_octet_stream(request, route)
    caller = dropbox_caller(request, route)
    content = await request.body()
    if not _chunk_hash_matches(arg, content):
        return dropbox_route_error("content_hash_mismatch")
    state = emulator_state(request)
    with state.lock:
        found = _session_lookup(
            caller, request, _field(arg, "cursor", route, kind=dict), route, "lookup_failed"
        )
        if isinstance(found, Response):
            return found
        if content:
            found.chunks.append(content)
            found.offset += len(content)
        chunks = found.chunks
        del state.dropbox_sessions[found.session_id]
    commit = _field(arg, "commit", route, kind=dict)

    def compute() -> tuple[bytes, str, str]:
        data = b"".join(chunks)
        return (
            data,
            hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            dropbox_content_hash(data),
        )

    data, sha1, content_hash = await asyncio.to_thread(compute) if found.offset > LARGE else compute()
    with state.lock:
        response = commit_file(caller, commit, route, data, sha1, content_hash, found.session_id, state)
        state.changed()
    return response


async def download(request: Request) -> Response:
    """files/download: bytes, metadata in the Dropbox-API-Result header (ASCII JSON), Range supported."""
    route = "files/download"
    arg = _content_arg(request, route)
    caller = dropbox_caller(request, route)
    path = _field(arg, "path", route)
    _check_path(path, route, allow_root=False, allow_rev=True)
    state = emulator_state(request)
    with state.lock:
        found = _readable(caller, state, path)
        if isinstance(found, Response):
            return found
        node, revision = found
        if node.folder:
            return dropbox_route_error("path", "not_file")
        result = json.dumps(metadata(node, tagged=False, revision=revision), ensure_ascii=True)
        content = (revision or node).content
    return bytes_response(content, request.headers.get("range"), {"Dropbox-API-Result": result})


def routes() -> list[Route]:
    """Dropbox API routes at /api.dropboxapi.com/2/ and /content.dropboxapi.com/2/."""
    rpc = {
        "users/get_current_account": get_current_account,
        "files/list_folder": list_folder,
        "files/list_folder/continue": list_folder_continue,
        "files/get_metadata": get_metadata,
        "files/create_folder_v2": create_folder,
        "files/delete_v2": delete,
        "files/move_v2": move,
        "files/copy_v2": copy,
    }
    result = [Route(API + name, _rpc(name, handler), methods=["POST"]) for name, handler in rpc.items()]
    content = {
        "files/upload": upload,
        "files/upload_session/start": session_start,
        "files/upload_session/append_v2": session_append,
        "files/upload_session/append": session_append,
        "files/upload_session/finish": session_finish,
        "files/download": download,
    }
    result += [Route(CONTENT + name, handler, methods=["POST"]) for name, handler in content.items()]
    from dropbox_box_provider.emulator import dropbox_changes

    result += dropbox_changes.routes()
    return result
