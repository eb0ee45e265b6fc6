"""Dropbox paths and metadata: path normalization, the ``Dropbox-API-Arg`` header, and RemoteEntry."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dropbox_box_provider.errors import AuthConfigError, InvalidRemotePath
from dropbox_box_provider.hooks.files import RemoteEntry
from dropbox_box_provider.hooks.matching import aware_time

ROOT = RemoteEntry(path="/", name="", id="", kind="folder")


def dropbox_api_arg(arg: Any) -> str:
    """JSON for the ``Dropbox-API-Arg`` header: every non-ASCII character and 0x7F escaped as ``\\uXXXX``."""
    return json.dumps(arg, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")


def normalize_path(path: str, *, allow_root: bool = False) -> str:
    """A Dropbox path: ``/a/b`` (leading slash added, trailing removed), ``id:``/``ns:``/``rev:`` kept,
    and the root as ``""`` where the route allows it."""
    if not isinstance(path, str):
        raise InvalidRemotePath(f"a Dropbox path must be text, got {type(path).__name__}")
    text = path
    if text.startswith(("id:", "ns:", "rev:")):
        return text
    text = "/" + text.strip("/") if text.strip("/") else ""
    if not text and not allow_root:
        raise InvalidRemotePath(
            "a Dropbox path is empty: give a file or folder path such as '/reports/a.csv'"
        )
    return text


def is_root(path: str) -> bool:
    """True for the root folder (``""`` or ``"/"``)."""
    return isinstance(path, str) and not path.strip("/")


def path_root_header(value: str) -> str:
    """``path_root`` as the header wants it: JSON as given, ``home``, or a bare namespace id."""
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise AuthConfigError(
                [
                    "path_root is not valid JSON; give a namespace id such as 1234567, 'home', or JSON like "
                    '{".tag": "root", "root": "1234567"}'
                ]
            ) from None
        return dropbox_api_arg(parsed)
    if text.lower() == "home":
        return dropbox_api_arg({".tag": "home"})
    return dropbox_api_arg({".tag": "namespace_id", "namespace_id": text})


def entry_of(metadata: dict[str, Any], kind: str | None = None) -> RemoteEntry:
    """RemoteEntry of Dropbox metadata (``.tag`` where the route has it, else ``kind`` or a file's fields)."""
    tag = metadata.get(".tag") or kind or ("file" if "rev" in metadata or "size" in metadata else "folder")
    is_file = tag == "file"
    modified: datetime | None = aware_time(metadata.get("server_modified")) if is_file else None
    size = metadata.get("size")
    return RemoteEntry(
        path=str(metadata.get("path_display") or metadata.get("path_lower") or ""),
        name=str(metadata.get("name", "")),
        id=str(metadata.get("id", "")),
        kind="file" if is_file else "folder",
        size=size if isinstance(size, int) else None,
        modified=modified,
        content_hash=metadata.get("content_hash") if is_file else None,
        hash_algorithm="dropbox-content-hash" if is_file else None,
        raw=metadata,
    )
