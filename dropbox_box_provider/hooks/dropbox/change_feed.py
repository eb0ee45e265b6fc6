"""Dropbox's change feed without I/O: ``list_folder`` entries as typed changes, long-poll timeouts and
answers, the cursor-reset error. ``DropboxChanges`` (``changes.py``) makes the calls.

Dropbox sends the latest state of each changed path: file or folder metadata (a new file and a new version
look alike, so both come as ``added``; a watcher that saw the path before calls it ``modified``) and
``deleted`` entries; a move arrives as a delete of the old path plus the new path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.errors import CursorReset, InvalidArgument
from dropbox_box_provider.hooks.changes import Change, ChangePage
from dropbox_box_provider.hooks.dropbox.changes import LONGPOLL_MAX, LONGPOLL_MIN
from dropbox_box_provider.hooks.dropbox.paths import entry_of

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox.changes import DropboxChanges


@dataclass(frozen=True)
class LongPollAnswer:
    """What a long-poll said: whether changes are waiting, and how long the service asks us to wait
    before the next call (``backoff`` seconds, or None)."""

    changes: bool
    backoff: float | None = None


def change_of(raw: dict[str, Any]) -> Change:
    """A ``list_folder`` entry as a Change; identity: the path plus the file's rev (or the folder id)."""
    tag = raw.get(".tag")
    path = str(raw.get("path_display") or raw.get("path_lower") or "")
    path_lower = str(raw.get("path_lower") or path.lower())
    if tag == "deleted":
        return Change(kind="deleted", path=path, identity=f"deleted:{path_lower}", raw=raw)
    entry = entry_of(raw)
    version = raw.get("rev") if entry.is_file else f"folder:{entry.id}"
    return Change(kind="added", path=entry.path, identity=f"{path_lower}@{version}", entry=entry, raw=raw)


def page_of(body: dict[str, Any]) -> ChangePage:
    """A ``list_folder(/continue)`` answer as a ChangePage."""
    return ChangePage(
        changes=[change_of(raw) for raw in body.get("entries", [])],
        position=str(body["cursor"]),
        has_more=bool(body.get("has_more")),
    )


def checked_timeout(timeout: int) -> int:
    """``timeout`` when Dropbox accepts it as a long-poll timeout (whole seconds, 30-480)."""
    if not isinstance(timeout, int) or not LONGPOLL_MIN <= timeout <= LONGPOLL_MAX:
        raise InvalidArgument(
            f"Dropbox long-poll timeout {timeout!r} is out of range: give whole seconds from {LONGPOLL_MIN} "
            f"to {LONGPOLL_MAX}"
        )
    return timeout


def answer_of(response: httpx.Response, hook: DropboxChanges) -> LongPollAnswer:
    """What a long-poll answer says; a 409 is a cursor reset, other errors raise as the hook's."""
    if response.status_code == 409:
        raise reset_error(hook)
    if response.status_code != 200:
        raise hook.error_for(response)
    body = response.json()
    backoff = body.get("backoff")
    return LongPollAnswer(bool(body.get("changes")), float(backoff) if backoff is not None else None)


def reset_error(hook: DropboxChanges) -> CursorReset:
    """The error for a cursor Dropbox no longer knows (``reset``)."""
    return CursorReset(
        f"Dropbox says the change cursor of connection {hook.conn_id!r} is too old (reset): take a new one "
        "with latest_cursor() and list the folder if the changes in between matter",
        status=409,
        code="reset",
    )


def without_folder(page: ChangePage, path: str) -> ChangePage:
    """``page`` without the entry of the listed folder ``path`` itself (Dropbox lists it too)."""
    kept = [c for c in page.changes if not path or c.path.lower() != path.lower()]
    return ChangePage(kept, page.position, page.has_more)
