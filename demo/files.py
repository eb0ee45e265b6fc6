"""The demo's files: put a few into the Dropbox inbox (as a person would), then check what reached Box.

Both go straight to the emulator's Dropbox/Box file APIs with the access tokens the store holds; the
tokens are used in memory only, never printed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import httpx

INBOX = "/inbox"
BOX_FOLDER = "from-dropbox"
DEMO_FILES: dict[str, bytes] = {
    "orders.csv": b"order_id,amount\n1001,19.90\n1002,5.00\n",
    "customers.csv": b"customer_id,name\n7,Ada\n8,Grace\n",
    "notes.txt": b"Copied from Dropbox to Box by the dropbox_to_box_sync example DAG.\n",
}


@dataclass(frozen=True)
class BoxFile:
    """A file of the Box target folder: its name and SHA-1."""

    name: str
    sha1: str


def upload_to_dropbox(emulator_url: str, access_token: str, files: dict[str, bytes]) -> None:
    """Upload ``files`` into the Dropbox ``/inbox`` folder (``/2/files/upload``, overwrite)."""
    with httpx.Client(base_url=emulator_url, timeout=30) as http:
        for name, content in files.items():
            arg = {"path": f"{INBOX}/{name}", "mode": "overwrite", "mute": True}
            response = http.post(
                "/content.dropboxapi.com/2/files/upload",
                content=content,
                headers={
                    "Authorization": f"Bearer {access_token}",
                    "Dropbox-API-Arg": json.dumps(arg),
                    "Content-Type": "application/octet-stream",
                },
            )
            if response.status_code != 200:
                raise RuntimeError(f"Dropbox upload of {name} answered HTTP {response.status_code}")


def box_folder_files(emulator_url: str, access_token: str, folder: str = BOX_FOLDER) -> list[BoxFile]:
    """The files of the Box folder ``folder`` under the root ([] when the folder does not exist)."""
    headers = {"Authorization": f"Bearer {access_token}"}
    with httpx.Client(base_url=f"{emulator_url}/api.box.com/2.0", timeout=30, headers=headers) as http:
        folder_id = _child_id(http, "0", folder, "folder")
        if folder_id is None:
            return []
        entries = _items(http, folder_id)
    return [BoxFile(str(e["name"]), str(e.get("sha1") or "")) for e in entries if e.get("type") == "file"]


def _items(http: httpx.Client, folder_id: str) -> list[dict[str, object]]:
    response = http.get(f"/folders/{folder_id}/items", params={"fields": "name,sha1,type", "limit": 1000})
    if response.status_code != 200:
        raise RuntimeError(f"Box folder listing answered HTTP {response.status_code}")
    entries: list[dict[str, object]] = response.json()["entries"]
    return entries


def _child_id(http: httpx.Client, parent_id: str, name: str, kind: str) -> str | None:
    for entry in _items(http, parent_id):
        if entry.get("type") == kind and entry.get("name") == name:
            return str(entry["id"])
    return None


def sha1_of(content: bytes) -> str:
    """Box's checksum of ``content``."""
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()
