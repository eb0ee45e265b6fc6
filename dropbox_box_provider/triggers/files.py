"""RemoteFileTrigger: polls Dropbox or Box from the triggerer until a file exists (optionally modified after
a time), through the hooks' async twins.

The connection is fetched with ``aget_connection`` on the event loop before any request: Airflow's triggerer
must never look a connection up from a worker thread, and the hooks' async auth runs the token manager in
one. The serialized kwargs hold the connection id, the path and times only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from dropbox_box_provider.errors import DropboxBoxError, ItemNotFound
from dropbox_box_provider.operators._transfer import (
    iso_or_none,
    modified_after,
    name_matches,
    parse_time,
    split_remote_pattern,
)

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.base import BaseOAuthHook
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

FileService = Literal["dropbox", "box"]
SERVICES: tuple[FileService, ...] = ("dropbox", "box")


async def afind_dropbox_files(
    hook: DropboxHook, path: str, after: datetime | None = None
) -> list[dict[str, Any]]:
    """Async twin of ``operators.dropbox.find_dropbox_files``."""
    folder, pattern = split_remote_pattern(path)
    try:
        if pattern is None:
            entries = [await hook.aget_metadata(folder)]
        else:
            entries = [
                e async for e in hook.alist_folder(folder) if name_matches(str(e.get("name", "")), pattern)
            ]
    except ItemNotFound:
        return []
    return [
        e
        for e in entries
        if e.get(".tag", "file") == "file" and modified_after(e.get("server_modified"), after)
    ]


async def afind_box_files(hook: BoxHook, path: str, after: datetime | None = None) -> list[dict[str, Any]]:
    """Async twin of ``operators.box.find_box_files``."""
    folder, pattern = split_remote_pattern(str(path))
    try:
        if pattern is None:
            candidates = [await hook.aget_file_info(folder)]
        else:
            candidates = [
                e
                async for e in hook.alist_folder(folder)
                if e.get("type") == "file" and name_matches(str(e.get("name", "")), pattern)
            ]
            if after is not None:
                candidates = [await hook.aget_file_info(str(e["id"])) for e in candidates]
    except ItemNotFound:
        return []
    return [e for e in candidates if e.get("type") == "file" and modified_after(e.get("modified_at"), after)]


async def prepared_hook(service: FileService, conn_id: str) -> BaseOAuthHook:
    """A hook whose connection was read on the event loop (``aget_connection``), so no later call in a
    worker thread looks it up again."""
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    hook: BaseOAuthHook = DropboxHook(conn_id) if service == "dropbox" else BoxHook(conn_id)
    connection = await hook.aget_connection(conn_id)
    hook.get_connection = lambda conn_id: connection  # type: ignore[method-assign]
    hook.get_auth_config()
    await asyncio.to_thread(lambda: hook.token_store)
    return hook


class RemoteFileTrigger(BaseTrigger):
    """Fires when a Dropbox or Box file exists at ``path`` (or matches its last-segment glob), optionally
    modified after ``modified_after`` (ISO text); re-checks every ``poll_interval`` seconds."""

    def __init__(
        self,
        service: FileService,
        conn_id: str,
        path: str,
        modified_after: str | None = None,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if service not in SERVICES:
            raise ValueError(f"service {service!r} is not one of {', '.join(SERVICES)}")
        self.service: FileService = service
        self.conn_id = conn_id
        self.path = str(path)
        self.modified_after = iso_or_none(parse_time(modified_after))
        self.poll_interval = max(0.05, float(poll_interval))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain-JSON kwargs."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "service": self.service,
                "conn_id": self.conn_id,
                "path": self.path,
                "modified_after": self.modified_after,
                "poll_interval": self.poll_interval,
            },
        )

    async def find(self, hook: BaseOAuthHook) -> list[dict[str, Any]]:
        """The matching files now."""
        after = parse_time(self.modified_after)
        if self.service == "dropbox":
            return await afind_dropbox_files(hook, self.path, after)  # type: ignore[arg-type]
        return await afind_box_files(hook, self.path, after)  # type: ignore[arg-type]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield ``status`` success with the matching files' names, or error with the typed error's text."""
        hook: BaseOAuthHook | None = None
        try:
            hook = await prepared_hook(self.service, self.conn_id)
            while True:
                found = await self.find(hook)
                if found:
                    names = [str(e.get("path_display") or e.get("name")) for e in found]
                    self.log.info("Found %d file(s) for %r: %s", len(found), self.path, names[:10])
                    yield TriggerEvent(  # type: ignore[no-untyped-call]
                        {"status": "success", "path": self.path, "files": names}
                    )
                    return
                await asyncio.sleep(self.poll_interval)
        except DropboxBoxError as exc:
            yield TriggerEvent(  # type: ignore[no-untyped-call]
                {"status": "error", "path": self.path, "message": str(exc)}
            )
        finally:
            if hook is not None:
                await hook.aclose()
