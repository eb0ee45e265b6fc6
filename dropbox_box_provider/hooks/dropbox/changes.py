"""Dropbox's change feed on the hook: ``latest_cursor``, ``changes`` (``list_folder/continue``) and
``wait_for_changes`` (the notify host's ``list_folder/longpoll``, which takes no token), sync and async.
What the answers mean is in ``change_feed.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.errors import ServiceError
from dropbox_box_provider.hooks.dropbox.paths import normalize_path
from dropbox_box_provider.lazy import lazy_module

# Loaded with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from dropbox_box_provider.auth import transport
    from dropbox_box_provider.errors import DropboxBoxError
    from dropbox_box_provider.hooks.changes import ChangePage
    from dropbox_box_provider.hooks.dropbox import change_feed
    from dropbox_box_provider.hooks.dropbox.change_feed import LongPollAnswer
else:
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())
    change_feed = lazy_module("dropbox_box_provider.hooks.dropbox.change_feed", globals())

NOTIFY_URL = "https://notify.dropboxapi.com/2/files/list_folder/longpoll"
LONGPOLL_MIN, LONGPOLL_MAX = 30, 480
# Dropbox may hold a longpoll up to 90 s past its timeout (jitter); the read timeout covers that.
LONGPOLL_SLACK = 90.0


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
        return change_feed.without_folder(change_feed.page_of(self.rpc("files/list_folder", arg)), folder)

    async def alisting_cursor(self, path: str = "", recursive: bool = False) -> ChangePage:
        """Async ``listing_cursor``."""
        folder = normalize_path(path, allow_root=True)
        page = change_feed.page_of(
            await self.arpc("files/list_folder", {"path": folder, "recursive": recursive})
        )
        return change_feed.without_folder(page, folder)

    def changes(self, cursor: str) -> ChangePage:
        """The changes after ``cursor`` (one page; ``has_more`` says another is ready). CursorReset when
        Dropbox no longer knows the cursor."""
        try:
            return change_feed.page_of(self.rpc("files/list_folder/continue", {"cursor": cursor}))
        except ServiceError as exc:
            if exc.status == 409 and "reset" in (exc.code or ""):
                raise change_feed.reset_error(self) from None
            raise

    async def achanges(self, cursor: str) -> ChangePage:
        """Async ``changes``."""
        try:
            return change_feed.page_of(await self.arpc("files/list_folder/continue", {"cursor": cursor}))
        except ServiceError as exc:
            if exc.status == 409 and "reset" in (exc.code or ""):
                raise change_feed.reset_error(self) from None
            raise

    def wait_for_changes(self, cursor: str, timeout: int = LONGPOLL_MIN) -> LongPollAnswer:
        """Block until the folder behind ``cursor`` changes or ``timeout`` (30-480 s) passes; no token is
        sent (the notify host takes none). Not retried: the caller's loop decides when to poll again."""
        body = json.dumps({"cursor": cursor, "timeout": change_feed.checked_timeout(timeout)}).encode()
        limits = httpx.Timeout(timeout + LONGPOLL_SLACK, connect=10.0)
        with transport.new_client(timeout=limits) as client:
            request = client.build_request(
                "POST", self.api_url(NOTIFY_URL), content=body, headers={"Content-Type": "application/json"}
            )
            response = transport.send(client, request, policy=transport.NO_RETRY)
            return change_feed.answer_of(response, self)

    async def await_for_changes(self, cursor: str, timeout: int = LONGPOLL_MIN) -> LongPollAnswer:
        """Async ``wait_for_changes``."""
        body = json.dumps({"cursor": cursor, "timeout": change_feed.checked_timeout(timeout)}).encode()
        limits = httpx.Timeout(timeout + LONGPOLL_SLACK, connect=10.0)
        async with transport.new_async_client(timeout=limits) as client:
            request = client.build_request(
                "POST", self.api_url(NOTIFY_URL), content=body, headers={"Content-Type": "application/json"}
            )
            response = await transport.asend(client, request, policy=transport.NO_RETRY)
            return change_feed.answer_of(response, self)
