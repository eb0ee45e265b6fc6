"""In-memory TokenStore: a process-wide named instance per ``memory://NAME``; tests and single processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from dropbox_box_provider.errors import StoreConflict, TokenStoreError
from dropbox_box_provider.store.base import RecordMeta, TokenRecord, decrypt_part, record_from_row
from dropbox_box_provider.store.crypto import TokenCipher, UndecryptableError, undecryptable_message


@dataclass
class _Row:
    """One stored row: ciphertexts plus clear metadata, as the SQL table holds it."""

    service: str
    version: int = 0
    payload: str | None = field(default=None, repr=False)
    connection: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    refresh_issued_at: float | None = None
    updated_at: float | None = None
    seed_fingerprint: str | None = None


class _MemorySpace:
    """The rows of one ``memory://NAME``, shared by every store opened on that name in this process."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self.mutex = threading.Lock()
        self._conn_locks: dict[str, threading.Lock] = {}

    def conn_lock(self, conn_id: str) -> threading.Lock:
        with self.mutex:
            return self._conn_locks.setdefault(conn_id, threading.Lock())


_SPACES: dict[str, _MemorySpace] = {}
_SPACES_MUTEX = threading.Lock()


def memory_space(name: str) -> _MemorySpace:
    """The process-wide space of ``memory://name`` (created on first use)."""
    with _SPACES_MUTEX:
        return _SPACES.setdefault(name, _MemorySpace())


class _MemoryLocked:
    """The LockedRecord of the memory store: the row as seen under the per-connection lock."""

    def __init__(self, store: MemoryTokenStore, conn_id: str) -> None:
        self._store = store
        self._conn_id = conn_id
        with store.space.mutex:
            row = store.space.rows.get(conn_id)
            self._version = row.version if row is not None and row.payload is not None else None

    @property
    def record(self) -> TokenRecord | None:
        return self._store.read(self._conn_id)

    def write(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
        force: bool = False,
    ) -> TokenRecord:
        written = self._store.write(
            self._conn_id,
            service,
            payload,
            expected_version=self._version,
            expires_at=expires_at,
            refresh_issued_at=refresh_issued_at,
            seed_fingerprint=seed_fingerprint,
            force=force,
        )
        self._version = written.version
        return written


class MemoryTokenStore:
    """TokenStore kept in this process's memory; payloads are still encrypted so keys behave as elsewhere.

    Unlike the SQL store, a write inside ``locked()`` applies at once: an exception does not roll it back.
    """

    def __init__(self, name: str, cipher: TokenCipher) -> None:
        self.url = f"memory://{name}"
        self.space = memory_space(name)
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"MemoryTokenStore({self.url!r})"

    def _decrypt(self, conn_id: str, column: str, ciphertext: str) -> dict[str, Any]:
        data: dict[str, Any] = decrypt_part(
            self._cipher, ciphertext, conn_id=conn_id, column=column, store_url=self.url
        )
        return data

    def read(self, conn_id: str) -> TokenRecord | None:
        """The record of ``conn_id`` with its payload decrypted, or None when it holds no tokens."""
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            row = replace(row) if row is not None else None
        return record_from_row(conn_id, row, self._cipher, self.url)

    @contextmanager
    def locked(self, conn_id: str) -> Iterator[_MemoryLocked]:
        """Hold this connection's lock (threads of this process) while the caller re-reads and writes."""
        with self.space.conn_lock(conn_id):
            yield _MemoryLocked(self, conn_id)

    def write(
        self,
        conn_id: str,
        service: str,
        payload: dict[str, Any],
        *,
        expected_version: int | None,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
        force: bool = False,
    ) -> TokenRecord:
        """Compare-and-swap write: ``expected_version`` None means "no tokens stored yet"."""
        ciphertext = self._cipher.encrypt(payload)
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            current = row.version if row is not None and row.payload is not None else None
            if current != expected_version:
                raise StoreConflict(
                    f"token record of {conn_id!r} changed (version {current}, expected {expected_version}); "
                    "re-read it and retry"
                )
            if row is not None and row.payload is not None and not force:
                try:
                    self._cipher.decrypt(row.payload)
                except UndecryptableError:
                    raise TokenStoreError(
                        undecryptable_message(conn_id, "token payload", self.url)
                        + " Refusing to overwrite it; a person may re-seed with force=True."
                    ) from None
            if row is None:
                row = self.space.rows[conn_id] = _Row(service=service)
            row.service = service
            row.version += 1
            row.payload = ciphertext
            row.expires_at = expires_at
            row.refresh_issued_at = refresh_issued_at
            row.updated_at = time.time()
            row.seed_fingerprint = seed_fingerprint
            version, updated_at = row.version, row.updated_at
        return TokenRecord(
            conn_id=conn_id,
            service=service,
            version=version,
            payload=dict(payload),
            expires_at=expires_at,
            refresh_issued_at=refresh_issued_at,
            updated_at=updated_at,
            seed_fingerprint=seed_fingerprint,
        )

    def delete(self, conn_id: str) -> bool:
        """Remove the record (tokens and saved connection); True when there was one."""
        with self.space.mutex:
            return self.space.rows.pop(conn_id, None) is not None

    def list_meta(self) -> list[RecordMeta]:
        """Clear metadata of every record, without decrypting anything."""
        with self.space.mutex:
            return [
                RecordMeta(
                    conn_id=conn_id,
                    service=row.service,
                    version=row.version,
                    expires_at=row.expires_at,
                    refresh_issued_at=row.refresh_issued_at,
                    updated_at=row.updated_at,
                    seed_fingerprint=row.seed_fingerprint,
                    has_connection=row.connection is not None,
                )
                for conn_id, row in sorted(self.space.rows.items())
            ]

    def save_connection(self, conn_id: str, connection: dict[str, Any]) -> None:
        """Store (encrypted) a full connection definition for the secrets backend."""
        ciphertext = self._cipher.encrypt(connection)
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            if row is None:
                row = self.space.rows[conn_id] = _Row(service=service_of_connection(connection))
            row.connection = ciphertext
            row.updated_at = time.time()

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        """The saved connection definition, or None."""
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            ciphertext = row.connection if row is not None else None
        return None if ciphertext is None else self._decrypt(conn_id, "connection", ciphertext)

    def rotate_keys(self) -> int:
        """Re-encrypt every payload and connection with the first key; returns how many records changed."""
        with self.space.mutex:
            rotated: dict[str, tuple[str | None, str | None]] = {}
            for conn_id, row in self.space.rows.items():
                try:
                    rotated[conn_id] = (
                        None if row.payload is None else self._cipher.rotate(row.payload),
                        None if row.connection is None else self._cipher.rotate(row.connection),
                    )
                except UndecryptableError:
                    raise TokenStoreError(undecryptable_message(conn_id, "record", self.url)) from None
            for conn_id, (payload, connection) in rotated.items():
                self.space.rows[conn_id].payload = payload
                self.space.rows[conn_id].connection = connection
        return len(rotated)

    def iter_conn_ids(self) -> Iterator[str]:
        """Every connection id with a record."""
        with self.space.mutex:
            ids = sorted(self.space.rows)
        return iter(ids)

    def close(self) -> None:
        """Nothing to release: the named space lives as long as the process."""


def service_of_connection(connection: dict[str, Any]) -> str:
    """The service ("dropbox"/"box") of a saved connection definition, from its conn_type."""
    conn_type = str(connection.get("conn_type") or connection.get("service") or "")
    return "box" if conn_type.startswith("box") else conn_type
