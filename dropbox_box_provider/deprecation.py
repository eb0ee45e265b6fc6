"""The deprecation path: an old name keeps working and warns once per process, naming the new call."""

from __future__ import annotations

import threading
import warnings

_WARNED: set[str] = set()
_LOCK = threading.Lock()


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Emit ``DeprecationWarning`` "``old`` is deprecated; use ``new``" the first time ``old`` is used."""
    with _LOCK:
        if old in _WARNED:
            return
        _WARNED.add(old)
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)


def reset_warnings() -> None:
    """Forget which warnings were shown (tests that assert a warning)."""
    with _LOCK:
        _WARNED.clear()
