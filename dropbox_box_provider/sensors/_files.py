"""The file sensor both services share: poke through the sync hook, or defer to RemoteFileTrigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from dropbox_box_provider.errors import DropboxBoxError
from dropbox_box_provider.operators._transfer import iso_or_none, parse_time
from dropbox_box_provider.sensors.token import default_deferrable
from dropbox_box_provider.triggers.files import FileService, RemoteFileTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class RemoteFileSensor(BaseSensorOperator):
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

    def find(self) -> list[dict[str, Any]]:
        """The matching files now (the service's own file objects)."""
        raise NotImplementedError

    @staticmethod
    def names(found: list[dict[str, Any]]) -> list[str]:
        """Display names of found files (Dropbox paths, Box names)."""
        return [str(e.get("path_display") or e.get("name")) for e in found]

    def poke(self, context: Context) -> PokeReturnValue:
        """One listing or metadata call."""
        found = self.find()
        self.log.info("%d file(s) match %r", len(found), self.path)
        return PokeReturnValue(is_done=bool(found), xcom_value=self.names(found) if found else None)

    def execute(self, context: Context) -> Any:
        """Poke/reschedule as any sensor; deferrable: check once, then wait in the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        found = self.find()
        if found:
            return self.names(found)
        self.log.info("No file matches %r yet; deferring", self.path)
        self.defer(
            trigger=RemoteFileTrigger(
                service=self.service,
                conn_id=self.conn_id,
                path=self.path,
                modified_after=iso_or_none(parse_time(self.modified_after)),
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
