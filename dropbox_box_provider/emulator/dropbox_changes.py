"""Dropbox change tracking: ``get_latest_cursor``, ``list_folder/continue`` on a change cursor, and the
notify host's ``list_folder/longpoll`` (no Authorization, ``backoff``).

A change cursor remembers the watched folder as it was (id -> path and rev); ``continue`` answers the
difference with the current tree, as Dropbox does: the latest state of each changed path, deletes (and the
old side of moves) as ``{".tag": "deleted"}`` entries. A cursor older than ``dropbox_cursor_max_age`` answers
409 ``reset``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropbox_box_provider.emulator.access import Caller, emulator_state
from dropbox_box_provider.emulator.files import Node, Tree
from dropbox_box_provider.emulator.responses import dropbox_bad_request, dropbox_route_error, json_response
from dropbox_box_provider.emulator.state import EmulatorState, random_token

NOTIFY = "/notify.dropboxapi.com/2/files/list_folder/longpoll"
LONGPOLL_MIN, LONGPOLL_MAX, LONGPOLL_DEFAULT = 30, 480, 30
TICK = 0.05

# id -> (path_lower, path_display, rev; None for folders)
Snapshot = dict[str, tuple[str, str, str | None]]


def snapshot(folder: Node | None, recursive: bool) -> Snapshot:
    """What a change cursor remembers of ``folder`` (empty when the folder is gone)."""
    if folder is None or not folder.folder:
        return {}
    nodes = folder.walk() if recursive else folder.children.values()
    result: Snapshot = {}
    for node in nodes:
        display = node.path_display()
        result[node.id] = (display.lower(), display, None if node.folder else node.rev)
    return result


def watch_record(caller: Caller, path: str, recursive: bool, folder: Node) -> dict[str, Any]:
    """The change-tracking part of a cursor taken now on ``folder``."""
    return {
        "tree": caller.tree_id,
        "path": path,
        "recursive": recursive,
        "snapshot": snapshot(folder, recursive),
        "created_at": time.time(),
    }


def _current(tree: Tree, watch: dict[str, Any]) -> Snapshot:
    from dropbox_box_provider.emulator.dropbox_api import lookup

    folder = lookup(tree, watch["path"])
    return snapshot(folder if isinstance(folder, Node) else None, watch["recursive"])


def differences(old: Snapshot, new: Snapshot) -> list[tuple[str, str]]:
    """(kind, id) of every change, deletes first: "deleted" (the old path) or "metadata" (the new state)."""
    deleted = [i for i, (path, _, _) in old.items() if i not in new or new[i][0] != path]
    changed = [i for i, state in new.items() if old.get(i) != state]
    deleted.sort(key=lambda i: old[i][0])
    changed.sort(key=lambda i: new[i][0])
    return [("deleted", i) for i in deleted] + [("metadata", i) for i in changed]


def _expired(state: EmulatorState, watch: dict[str, Any]) -> bool:
    max_age = float(state.config.get("dropbox_cursor_max_age") or 0)
    return bool(max_age) and time.time() - watch["created_at"] > max_age


def new_cursor(state: EmulatorState, record: dict[str, Any]) -> str:
    """Store a cursor record and return its opaque cursor string."""
    cursor = "AAF" + random_token(60)
    state.cursors[cursor] = record
    return cursor


def continue_changes(caller: Caller, saved: dict[str, Any], request: Request) -> Any:
    """``list_folder/continue`` on a cursor whose listing is done: the changes since the cursor."""
    from dropbox_box_provider.emulator.dropbox_api import metadata

    state = emulator_state(request)
    watch = saved["watch"]
    if _expired(state, watch):
        return dropbox_route_error("reset")
    old: Snapshot = watch["snapshot"]
    new = _current(caller.tree, watch)
    changes = differences(old, new)
    limit = int(saved.get("limit", 500))
    page, rest = changes[:limit], changes[limit:]
    advanced = dict(old)
    entries: list[dict[str, Any]] = []
    for kind, item_id in page:
        if kind == "deleted":
            path_lower, display, _ = old[item_id]
            name = display.rsplit("/", 1)[-1]
            entries.append(
                {".tag": "deleted", "name": name, "path_lower": path_lower, "path_display": display}
            )
            advanced.pop(item_id, None)
        else:
            entries.append(metadata(caller.tree.index[item_id]))
            advanced[item_id] = new[item_id]
    record = {**saved, "ids": [], "position": 0, "watch": {**watch, "snapshot": advanced}}
    return {"entries": entries, "cursor": new_cursor(state, record), "has_more": bool(rest)}


def get_latest_cursor(caller: Caller, arg: Any, request: Request) -> Any:
    """files/list_folder/get_latest_cursor: a cursor at "now" (the same arguments as list_folder)."""
    from dropbox_box_provider.emulator.dropbox_api import _field, folder_at

    route = "files/list_folder/get_latest_cursor"
    path = _field(arg, "path", route)
    recursive = _field(arg, "recursive", route, False, bool)
    limit = _field(arg, "limit", route, 500, int)
    state = emulator_state(request)
    found = folder_at(caller, request, path, route)
    if not isinstance(found, tuple):
        return found
    caller, path, node = found
    record = {
        "tree": caller.tree_id,
        "ids": [],
        "position": 0,
        "limit": limit,
        "watch": watch_record(caller, path, recursive, node),
    }
    return {"cursor": new_cursor(state, record)}


def _has_changes(state: EmulatorState, saved: dict[str, Any]) -> bool:
    if saved["position"] < len(saved["ids"]):
        return True  # the listing itself is not finished
    watch = saved.get("watch")
    tree = state.trees.get(saved["tree"])
    if watch is None or tree is None:
        return False
    return bool(differences(watch["snapshot"], _current(tree, watch)))


async def longpoll(request: Request) -> Response:
    """notify.dropboxapi.com files/list_folder/longpoll: ``{"changes": bool}`` (+ ``backoff``), no auth.

    Answers as soon as the cursor's folder changed, else after ``timeout`` seconds (30-480; scaled by the
    emulator's ``longpoll_time_scale``).
    """
    route = "files/list_folder/longpoll"
    try:
        arg = json.loads(await request.body() or b"null")
    except ValueError:
        return dropbox_bad_request(route, "request body: could not decode input as JSON")
    if not isinstance(arg, dict) or not isinstance(arg.get("cursor"), str):
        return dropbox_bad_request(route, "request body: missing required field 'cursor'")
    timeout = arg.get("timeout", LONGPOLL_DEFAULT)
    if not isinstance(timeout, int) or not LONGPOLL_MIN <= timeout <= LONGPOLL_MAX:
        return dropbox_bad_request(
            route, f"request body: timeout: {timeout} is not within range [{LONGPOLL_MIN}, {LONGPOLL_MAX}]"
        )
    state = emulator_state(request)
    deadline = time.monotonic() + timeout * float(state.config.get("longpoll_time_scale", 1.0))
    seen = -1
    while True:
        with state.lock:
            saved = state.cursors.get(arg["cursor"])
            watch = (saved or {}).get("watch")
            if saved is None or (watch is not None and _expired(state, watch)):
                return dropbox_route_error("reset")
            if state.changes != seen:
                seen = state.changes
                if _has_changes(state, saved):
                    return json_response(_answer(state, True))
        if time.monotonic() >= deadline or await request.is_disconnected():
            return json_response(_answer(state, False))  # nobody reads it once the client left
        await asyncio.sleep(min(TICK, max(0.0, deadline - time.monotonic())))


def _answer(state: EmulatorState, changes: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"changes": changes}
    backoff = float(state.config.get("dropbox_longpoll_backoff") or 0)
    if backoff:
        answer["backoff"] = int(backoff)
    return answer


def routes() -> list[Route]:
    """``get_latest_cursor`` on the API host and ``longpoll`` on the notify host."""
    from dropbox_box_provider.emulator.dropbox_api import API, _rpc

    route = "files/list_folder/get_latest_cursor"
    return [
        Route(API + route, _rpc(route, get_latest_cursor), methods=["POST"]),
        Route(NOTIFY, longpoll, methods=["POST"]),
    ]
