"""File modes of an sqlite token store: the database and its ``-wal``/``-shm`` side files are 0600.

A new file is created 0600 (its directory 0700). An existing file with looser bits is tightened when this
user owns it; otherwise a warning says what to run. sqlite creates the side files with the main file's
mode, and they are checked again after the first write of each store object (when they exist for sure).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading

log = logging.getLogger(__name__)

SIDE_FILE_SUFFIXES = ("-wal", "-shm")
_CHECKED_AFTER_WRITE: set[str] = set()
_CHECKED_LOCK = threading.Lock()


def tighten(path: str) -> None:
    """Make ``path`` 0600 if it is group/other accessible; warn when this user cannot (not the owner)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    if info.st_uid == os.geteuid():
        try:
            os.chmod(path, 0o600)
            return
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
    else:
        why = f"it belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    log.warning(
        "token store file %s has mode %04o (readable beyond its owner) and could not be tightened: %s. "
        "Run `chmod 600 %s` as its owner",
        path,
        mode,
        why,
        path,
    )


def create_private_file(path: str) -> None:
    """Create an empty file with mode 0600 (and its directory 0700), or tighten an existing one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        tighten(path)


def tighten_sidecar_files(path: str) -> None:
    """sqlite gives ``-wal``/``-shm`` the main file's mode; tighten them anyway if something loosened them."""
    for suffix in SIDE_FILE_SUFFIXES:
        with contextlib.suppress(OSError):
            tighten(path + suffix)


def tighten_after_first_write(path: str) -> None:
    """Once per path and process, after a write created the side files: check their modes."""
    with _CHECKED_LOCK:
        if path in _CHECKED_AFTER_WRITE:
            return
        _CHECKED_AFTER_WRITE.add(path)
    tighten_sidecar_files(path)
