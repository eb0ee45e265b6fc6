"""DropboxFeed: the shared reader of one connection's Dropbox change feed, long-polled on the notify host."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.triggers.dropbox_changes import DEFAULT_LONGPOLL_TIMEOUT
from dropbox_box_provider.triggers.feeds.base import FeedProducer

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox import DropboxHook


class DropboxFeed(FeedProducer):
    """The shared reader of one connection's Dropbox change feed."""

    service: ClassVar[str] = "dropbox"

    def __init__(self, kwargs: dict[str, Any], key: Any) -> None:
        super().__init__(kwargs, key)
        self.timeout = int(kwargs.get("longpoll_timeout", DEFAULT_LONGPOLL_TIMEOUT))
        self.not_before = 0.0

    def state_key(self) -> str:
        return f"dropbox_box_provider.dropbox.cursor.{self.conn_id}"

    async def start_position(self, hook: DropboxHook) -> tuple[str, list[dict[str, Any]]]:  # type: ignore[override]
        if self.replay:
            page = await hook.alisting_cursor("", recursive=True)
            return page.position, [c.to_dict() for c in page.changes]
        return await hook.alatest_cursor("", recursive=True), []

    async def read(self, hook: DropboxHook, position: str) -> tuple[list[dict[str, Any]], str, bool]:  # type: ignore[override]
        page = await hook.achanges(position)
        return [c.to_dict() for c in page.changes], page.position, page.has_more

    async def wait(self, hook: DropboxHook, position: str) -> bool:  # type: ignore[override]
        delay = self.not_before - time.monotonic()
        if delay > 0:  # Dropbox asked for a pause before the next longpoll (backoff)
            await asyncio.sleep(delay)
        answer = await hook.await_for_changes(position, self.timeout)
        self.not_before = time.monotonic() + (answer.backoff or 0.0)
        return answer.changes

    async def restart_position(self, hook: DropboxHook) -> str:  # type: ignore[override]
        return await hook.alatest_cursor("", recursive=True)
