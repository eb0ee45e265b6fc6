"""What the fleet's tasks do inside a worker: authorized Box and Dropbox calls and small transfers through the
provider's hooks, reporting counts and token-store versions (metadata only, never a token)."""

from __future__ import annotations

import os
import time
from typing import Any

DROPBOX_CONN = "dropbox_fleet"
BOX_CONN = "box_fleet"
PAUSE_SECONDS = 0.1


def use_services(
    label: str, seconds: float, transfer_bytes: int = 0, folder: str = "/fleet"
) -> dict[str, float]:
    """Call ``users/me`` (Box) and ``get_current_account`` (Dropbox) in a loop for ``seconds``; with
    ``transfer_bytes`` also write a file of that size to each service and read it back every round.

    Any error propagates and fails the task: the scenarios assert that none happens. The wall-clock times of
    the first and last call bound the window in which the fleet used tokens.
    """
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    box, dropbox = BoxHook(BOX_CONN), DropboxHook(DROPBOX_CONN)
    calls = transfers = 0
    first_call = time.time()
    deadline = time.monotonic() + seconds
    try:
        while calls == 0 or time.monotonic() < deadline:
            box.get_current_user()
            dropbox.get_current_account()
            calls += 2
            if transfer_bytes:
                data = os.urandom(transfer_bytes)
                name = f"{label}-{transfers}.bin"
                dropbox.write_bytes(f"{folder}/{name}", data, mode="overwrite")
                box.write_bytes(data, f"{folder}/{name}", overwrite=True)
                if (
                    dropbox.read_bytes(f"{folder}/{name}") != data
                    or box.read_bytes(f"{folder}/{name}") != data
                ):
                    raise AssertionError(f"{name}: the bytes read back differ from the bytes written")
                transfers += 1
            time.sleep(PAUSE_SECONDS)
    finally:
        box.close()
        dropbox.close()
    return {"calls": calls, "transfers": transfers, "first_call": first_call, "last_call": time.time()}


def store_versions() -> dict[str, int | None]:
    """The token store's record version of each fleet connection (clear metadata: no decryption needed)."""
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    versions: dict[str, int | None] = {}
    for hook in (BoxHook(BOX_CONN), DropboxHook(DROPBOX_CONN)):
        record = hook.token_store.read(hook.conn_id)
        versions[hook.conn_id] = record.version if record is not None else None
    return versions


def refresh_now() -> dict[str, Any]:
    """Force one refresh of each connection through the single-flight manager; the store versions after."""
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    for hook in (BoxHook(BOX_CONN), DropboxHook(DROPBOX_CONN)):
        hook.refresh_access_token()
        hook.close()
    return {"versions": store_versions()}


def use_without_refresh(expected: dict[str, int | None], calls: int) -> dict[str, Any]:
    """Make ``calls`` authorized calls per service with the tokens another worker stored; fail if this
    process refreshed (the store's record version moved) or found other versions than ``expected``."""
    before = store_versions()
    if before != expected:
        raise AssertionError(f"store versions {before} differ from those the refreshing task left {expected}")
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    box, dropbox = BoxHook(BOX_CONN), DropboxHook(DROPBOX_CONN)
    try:
        for _ in range(calls):
            box.get_current_user()
            dropbox.get_current_account()
    finally:
        box.close()
        dropbox.close()
    after = store_versions()
    if after != before:
        raise AssertionError(f"this worker refreshed: store versions moved from {before} to {after}")
    return {"calls": 2 * calls, "versions": after}


def put_files(folder: str, sizes: list[int], seed: int) -> dict[str, str]:
    """Upload files of ``sizes`` bytes (deterministic content) to Dropbox ``folder``; name -> SHA-1."""
    import hashlib
    import random

    from dropbox_box_provider.hooks.dropbox import DropboxHook

    generator = random.Random(seed)
    dropbox = DropboxHook(DROPBOX_CONN)
    digests: dict[str, str] = {}
    try:
        for number, size in enumerate(sizes):
            data = generator.randbytes(size)
            name = f"file-{number:03d}-{size}.bin"
            dropbox.write_bytes(f"{folder}/{name}", data, mode="overwrite")
            digests[name] = hashlib.sha1(data).hexdigest()
    finally:
        dropbox.close()
    return digests


def box_listing(folder: str) -> dict[str, dict[str, str]]:
    """Box ``folder``'s files: name -> {"sha1", "version"} (the file version id moves on every upload)."""
    from dropbox_box_provider.hooks.box import BoxHook

    box = BoxHook(BOX_CONN)
    try:
        if not box.exists(folder):
            return {}
        listing = {}
        for item in box.list_folder(folder):
            if item.get("type") == "file":
                info = box.get_file_info(item["id"])
                version = (info.get("file_version") or {}).get("id", "")
                listing[str(item["name"])] = {"sha1": str(info.get("sha1")), "version": str(version)}
        return listing
    finally:
        box.close()
