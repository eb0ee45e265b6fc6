"""Where the OAuth engine reports secrets it reads from files or pasted text, for the host to mask.

auth/ never imports Airflow: the hooks register Airflow's ``mask_secret`` here (``register``), and code that
reads a secret (e.g. the Box app config JSON) calls ``mask`` the moment it has it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Masker = Callable[..., None]

_MASKERS: list[Masker] = []
_LOCK = threading.Lock()
_MIN_PEM_LINE = 16


def register(masker: Masker) -> None:
    """Call ``masker(*values)`` with every secret reported from now on (once per masker)."""
    with _LOCK:
        if masker not in _MASKERS:
            _MASKERS.append(masker)


def mask(*values: str | None) -> None:
    """Report secret values to every registered masker (empty values are skipped)."""
    present = [v for v in values if v]
    if not present:
        return
    with _LOCK:
        maskers = list(_MASKERS)
    for masker in maskers:
        masker(*present)


def pem_secrets(pem: str | None) -> tuple[str, ...]:
    """A PEM key as a whole and each of its base64 body lines (a log line may hold one line of it)."""
    if not pem:
        return ()
    text = pem.replace("\\n", "\n") if "\\n" in pem and "\n" not in pem else pem
    lines = [
        line.strip()
        for line in text.splitlines()
        if len(line.strip()) >= _MIN_PEM_LINE and not line.startswith("-----") and ":" not in line
    ]
    return (pem, text.strip(), *lines)
