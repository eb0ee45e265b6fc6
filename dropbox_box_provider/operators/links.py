""" "Open in Dropbox" / "Open in Box" buttons of the file operators: the web page of what a task moved.

Airflow 3 computes a link in the worker when the task ends (from the operator the task ran) and keeps it as
an XCom, so the link reads the remote items the operator recorded and needs no connection or network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

DROPBOX_WEB = "https://www.dropbox.com/home"
BOX_WEB = "https://app.box.com"


def dropbox_web_url(entries: list[dict[str, Any]]) -> str:
    """The Dropbox web page of one file (its folder, previewing it), or of the first file's folder."""
    paths = [str(e.get("path_display") or "") for e in entries if e.get("path_display")]
    if not paths:
        return ""
    folder, _, name = paths[0].rpartition("/")
    url = DROPBOX_WEB + quote(folder, safe="/")
    return f"{url}?{urlencode({'preview': name})}" if len(paths) == 1 else url


def box_web_url(entries: list[dict[str, Any]]) -> str:
    """The Box web page of one file, or of the folder holding the first of several."""
    if not entries:
        return ""
    first = entries[0]
    parent = first.get("parent") or {}
    if len(entries) > 1 and isinstance(parent, dict) and parent.get("id") is not None:
        return f"{BOX_WEB}/folder/{parent['id']}"
    return f"{BOX_WEB}/file/{first['id']}" if first.get("id") is not None else ""


class DropboxFileLink(BaseOperatorLink):
    """Opens the Dropbox file (or folder) the upload or download operator moved."""

    name = "Open in Dropbox"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The recorded files' web page; empty before the task ran or when it moved nothing."""
        return dropbox_web_url(list(getattr(operator, "remote_entries", None) or []))


class BoxFileLink(BaseOperatorLink):
    """Opens the Box file (or folder) the upload or download operator moved."""

    name = "Open in Box"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The recorded files' web page; empty before the task ran or when it moved nothing."""
        return box_web_url(list(getattr(operator, "remote_entries", None) or []))
