"""The file sensor both services share: poke through the sync hook, or defer to RemoteFileTrigger."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from dropbox_box_provider.errors import DropboxBoxError
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles
from dropbox_box_provider.hooks.matching import aware_time, find_files, iso_or_none
from dropbox_box_provider.sensors.token import default_deferrable
from dropbox_box_provider.triggers.files import FileService, RemoteFileTrigger, found_names, hook_for

if TYPE_CHECKING:
    from airflow.sdk import Context


class RemoteFileSensor(BaseSensorOperator, abc.ABC):
    """Waits for a file at ``path`` (or one matching a glob in its last segment), optionally modified after
    ``modified_after`` (datetime or ISO text; templated). ``deferrable`` (default ``[operators]
    default_deferrable``) waits in the triggerer. Pushes the matching files' names as XCom."""

    service: ClassVar[FileService]
    template_fields: Sequence[str] = ("path", "conn_id", "modified_after")
    ui_color = "#cfe2ff"

    def __init__(
        self,
        *,
        path: str,
        conn_id: str,
        modified_after: datetime | str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.conn_id = conn_id
        self.modified_after = modified_after
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def get_hook(self) -> RemoteFiles:
        """The service's hook of ``conn_id``."""
        return hook_for(self.service, self.conn_id)

    def find(self) -> list[RemoteEntry]:
        """The matching files now."""
        return find_files(self.get_hook(), self.path, aware_time(self.modified_after))

    def poke(self, context: Context) -> PokeReturnValue:
        """One listing or metadata call."""
        found = self.find()
        self.log.info("%d file(s) match %r", len(found), self.path)
        return PokeReturnValue(is_done=bool(found), xcom_value=found_names(found) if found else None)

    def execute(self, context: Context) -> Any:
        """Poke/reschedule as any sensor; deferrable: check once, then wait in the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        found = self.find()
        if found:
            return found_names(found)
        self.log.info("No file matches %r yet; deferring", self.path)
        self.defer(
            trigger=RemoteFileTrigger(
                service=self.service,
                conn_id=self.conn_id,
                path=self.path,
                modified_after=iso_or_none(aware_time(self.modified_after)),
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        """Resume after the trigger: the found names as XCom, or its error."""
        if event.get("status") != "success":
            raise DropboxBoxError(str(event.get("message") or f"the file trigger failed: {event!r}"))
        return [str(name) for name in event.get("files", [])]
