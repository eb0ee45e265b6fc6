"""Dropbox's change feed on the hook: ``latest_cursor``, ``changes`` (``list_folder/continue``) and
``wait_for_changes`` (the notify host's ``list_folder/longpoll``, which takes no token), sync and async.

Dropbox sends the latest state of each changed path: file or folder metadata (a new file and a new version
look alike, so both come as ``added``; a watcher that saw the path before calls it ``modified``) and
``deleted`` entries; a move arrives as a delete of the old path plus the new path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.errors import CursorReset, InvalidArgument, ServiceError
from dropbox_box_provider.hooks.dropbox.paths import entry_of, normalize_path
from dropbox_box_provider.lazy import lazy_module

# Loaded with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from dropbox_box_provider.auth import transport
    from dropbox_box_provider.errors import DropboxBoxError
    from dropbox_box_provider.hooks import changes
    from dropbox_box_provider.hooks.changes import Change, ChangePage
else:
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())
    changes = lazy_module("dropbox_box_provider.hooks.changes", globals())

NOTIFY_URL = "https://notify.dropboxapi.com/2/files/list_folder/longpoll"
LONGPOLL_MIN, LONGPOLL_MAX = 30, 480
# Dropbox may hold a longpoll up to 90 s past its timeout (jitter); the read timeout covers that.
LONGPOLL_SLACK = 90.0


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
        return changes.Change(kind="deleted", path=path, identity=f"deleted:{path_lower}", raw=raw)
    entry = entry_of(raw)
    version = raw.get("rev") if entry.is_file else f"folder:{entry.id}"
    return changes.Change(
        kind="added", path=entry.path, identity=f"{path_lower}@{version}", entry=entry, raw=raw
    )


def page_of(body: dict[str, Any]) -> ChangePage:
    """A ``list_folder(/continue)`` answer as a ChangePage."""
    return changes.ChangePage(
        changes=[change_of(raw) for raw in body.get("entries", [])],
        position=str(body["cursor"]),
        has_more=bool(body.get("has_more")),
    )


def _check_timeout(timeout: int) -> int:
    if not isinstance(timeout, int) or not LONGPOLL_MIN <= timeout <= LONGPOLL_MAX:
        raise InvalidArgument(
            f"Dropbox long-poll timeout {timeout!r} is out of range: give whole seconds from {LONGPOLL_MIN} "
            f"to {LONGPOLL_MAX}"
        )
    return timeout


def _answer_of(response: httpx.Response, hook: DropboxChanges) -> LongPollAnswer:
    if response.status_code == 409:
        raise _reset(hook)
    if response.status_code != 200:
        raise hook.error_for(response)
    body = response.json()
    backoff = body.get("backoff")
    return LongPollAnswer(bool(body.get("changes")), float(backoff) if backoff is not None else None)


def _reset(hook: DropboxChanges) -> CursorReset:
    return CursorReset(
        f"Dropbox says the change cursor of connection {hook.conn_id!r} is too old (reset): take a new one "
        "with latest_cursor() and list the folder if the changes in between matter",
        status=409,
        code="reset",
    )


class DropboxChanges:
    """The change-feed calls of ``DropboxHook`` (mixed in; ``self`` is the hook)."""

    if TYPE_CHECKING:  # what the hook provides
        conn_id: str

        def rpc(self, route: str, arg: Any = None) -> Any: ...
        async def arpc(self, route: str, arg: Any = None) -> Any: ...
        def api_url(self, real_url: str) -> str: ...
        def error_for(self, response: httpx.Response) -> DropboxBoxError: ...

    def latest_cursor(self, path: str = "", recursive: bool = False) -> str:
        """A cursor at "now" for ``path`` (``list_folder/get_latest_cursor``); later changes come from it."""
        arg = {"path": normalize_path(path, allow_root=True), "recursive": recursive}
        return str(self.rpc("files/list_folder/get_latest_cursor", arg)["cursor"])

    async def alatest_cursor(self, path: str = "", recursive: bool = False) -> str:
        """Async ``latest_cursor``."""
        arg = {"path": normalize_path(path, allow_root=True), "recursive": recursive}
        return str((await self.arpc("files/list_folder/get_latest_cursor", arg))["cursor"])

    def listing_cursor(self, path: str = "", recursive: bool = False) -> ChangePage:
        """The folder's current contents as ``added`` changes (the first page; continue with ``changes``):
        a feed that replays what is already there."""
        folder = normalize_path(path, allow_root=True)
        arg = {"path": folder, "recursive": recursive}
        return self._without_listed_folder(page_of(self.rpc("files/list_folder", arg)), folder)

    async def alisting_cursor(self, path: str = "", recursive: bool = False) -> ChangePage:
        """Async ``listing_cursor``."""
        folder = normalize_path(path, allow_root=True)
        page = page_of(await self.arpc("files/list_folder", {"path": folder, "recursive": recursive}))
        return self._without_listed_folder(page, folder)

    @staticmethod
    def _without_listed_folder(page: ChangePage, path: str) -> ChangePage:
        kept = [c for c in page.changes if not path or c.path.lower() != path.lower()]
        return changes.ChangePage(kept, page.position, page.has_more)

    def changes(self, cursor: str) -> ChangePage:
        """The changes after ``cursor`` (one page; ``has_more`` says another is ready). CursorReset when
        Dropbox no longer knows the cursor."""
        try:
            return page_of(self.rpc("files/list_folder/continue", {"cursor": cursor}))
        except ServiceError as exc:
            if exc.status == 409 and "reset" in (exc.code or ""):
                raise _reset(self) from None
            raise

    async def achanges(self, cursor: str) -> ChangePage:
        """Async ``changes``."""
        try:
            return page_of(await self.arpc("files/list_folder/continue", {"cursor": cursor}))
        except ServiceError as exc:
            if exc.status == 409 and "reset" in (exc.code or ""):
                raise _reset(self) from None
            raise

    def wait_for_changes(self, cursor: str, timeout: int = LONGPOLL_MIN) -> LongPollAnswer:
        """Block until the folder behind ``cursor`` changes or ``timeout`` (30-480 s) passes; no token is
        sent (the notify host takes none). Not retried: the caller's loop decides when to poll again."""
        body = json.dumps({"cursor": cursor, "timeout": _check_timeout(timeout)}).encode()
        limits = httpx.Timeout(timeout + LONGPOLL_SLACK, connect=10.0)
        with transport.new_client(timeout=limits) as client:
            request = client.build_request(
                "POST", self.api_url(NOTIFY_URL), content=body, headers={"Content-Type": "application/json"}
            )
            response = transport.send(client, request, policy=transport.NO_RETRY)
            return _answer_of(response, self)

    async def await_for_changes(self, cursor: str, timeout: int = LONGPOLL_MIN) -> LongPollAnswer:
        """Async ``wait_for_changes``."""
        body = json.dumps({"cursor": cursor, "timeout": _check_timeout(timeout)}).encode()
        limits = httpx.Timeout(timeout + LONGPOLL_SLACK, connect=10.0)
        async with transport.new_async_client(timeout=limits) as client:
            request = client.build_request(
                "POST", self.api_url(NOTIFY_URL), content=body, headers={"Content-Type": "application/json"}
            )
            response = await transport.asend(client, request, policy=transport.NO_RETRY)
            return _answer_of(response, self)
