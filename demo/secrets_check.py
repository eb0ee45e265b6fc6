"""Proof that nothing the demo printed or logged is a secret: every token the store ever held (as seen by
the demo between steps), the store key and the client secrets are searched for; only *where* is reported."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dropbox_box_provider.store.base import TokenStore

MIN_SECRET_LENGTH = 8


def stored_tokens(store: TokenStore, conn_ids: Iterable[str]) -> set[str]:
    """The access and refresh tokens the store holds now for ``conn_ids``."""
    found: set[str] = set()
    for conn_id in conn_ids:
        record = store.read(conn_id)
        if record is None:
            continue
        for name in ("access_token", "refresh_token"):
            value = record.payload.get(name)
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                found.add(value)
    return found


def leaks(secrets: set[str], printed: Iterable[str], log_dirs: Iterable[Path]) -> list[str]:
    """Where any of ``secrets`` appears: "demo output" and/or log file paths. Empty means clean."""
    wanted = [s for s in secrets if len(s) >= MIN_SECRET_LENGTH]
    places: list[str] = []
    if any(secret in line for line in printed for secret in wanted):
        places.append("demo output")
    for directory in log_dirs:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            text = path.read_text(errors="replace")
            if any(secret in text for secret in wanted):
                places.append(str(path))
    return places
