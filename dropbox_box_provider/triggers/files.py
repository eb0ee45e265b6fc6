"""RemoteFileTrigger: polls Dropbox or Box from the triggerer until a file exists (optionally modified after
a time), through the hooks' async ``RemoteFiles`` twins.

The connection is fetched with ``aget_connection`` on the event loop before any request: Airflow's triggerer
must never look a connection up from a worker thread, and the hooks' async auth runs the token manager in
one. The serialized kwargs hold the connection id, the path and times only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from dropbox_box_provider.errors import DropboxBoxError
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles
from dropbox_box_provider.hooks.matching import afind_files, aware_time, iso_or_none

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    FileHook = DropboxHook | BoxHook

FileService = Literal["dropbox", "box"]
SERVICES: tuple[FileService, ...] = ("dropbox", "box")


def hook_for(service: FileService, conn_id: str) -> FileHook:
    """The hook of ``service`` on ``conn_id`` (imported here, so DAG parsing never pays for the hooks)."""
    if service == "dropbox":
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        return DropboxHook(conn_id)
    from dropbox_box_provider.hooks.box import BoxHook

    return BoxHook(conn_id)


def found_names(found: list[RemoteEntry]) -> list[str]:
    """What file sensors and triggers report (XCom): Dropbox display paths, Box names, as always."""
    return [str(e.raw.get("path_display") or e.name) for e in found]


async def prepared_hook(service: FileService, conn_id: str) -> FileHook:
    """A hook whose connection was read on the event loop (``aget_connection``), so no later call in a
    worker thread looks it up again."""
    hook = hook_for(service, conn_id)
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
        self.modified_after = iso_or_none(aware_time(modified_after))
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

    async def find(self, hook: RemoteFiles) -> list[RemoteEntry]:
        """The matching files now."""
        return await afind_files(hook, self.path, aware_time(self.modified_after))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield ``status`` success with the matching files' names, or error with the typed error's text."""
        hook: FileHook | None = None
        try:
            hook = await prepared_hook(self.service, self.conn_id)
            while True:
                found = await self.find(hook)
                if found:
                    names = found_names(found)
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
