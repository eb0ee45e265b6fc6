"""In-memory TokenStore: a process-wide named instance per ``memory://NAME``; tests and single processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from dropbox_box_provider.errors import LeaseLost, StoreConflict, TokenStoreError
from dropbox_box_provider.store.base import (
    KeyRotation,
    LeaseState,
    RecordMeta,
    TokenRecord,
    decrypt_part,
    record_from_row,
    service_of_connection,
)
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
    lease_owner: str | None = None
    lease_until: float | None = None

    @property
    def is_record(self) -> bool:
        return self.payload is not None or self.connection is not None

    @property
    def token_version(self) -> int | None:
        return self.version if self.payload is not None else None


class _MemorySpace:
    """The rows of one ``memory://NAME``, shared by every store opened on that name in this process."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self.mutex = threading.Lock()


_SPACES: dict[str, _MemorySpace] = {}
_SPACES_MUTEX = threading.Lock()


def memory_space(name: str) -> _MemorySpace:
    """The process-wide space of ``memory://name`` (created on first use)."""
    with _SPACES_MUTEX:
        return _SPACES.setdefault(name, _MemorySpace())


class MemoryTokenStore:
    """TokenStore kept in this process's memory; payloads are still encrypted so keys behave as elsewhere.

    Leases are timed by this process's clock.
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
        lease_owner: str | None = None,
    ) -> TokenRecord:
        """Compare-and-swap write: ``expected_version`` None means "no tokens stored yet"."""
        ciphertext = self._cipher.encrypt(payload)
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            if lease_owner is not None and (row is None or row.lease_owner != lease_owner):
                raise LeaseLost(
                    f"the refresh lease of {conn_id!r} in token store {self.url} is no longer held by "
                    f"{lease_owner}; nothing was written"
                )
            current = row.token_version if row is not None else None
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
            if lease_owner is not None:
                row.lease_owner = row.lease_until = None
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

    def lease_state(self, conn_id: str) -> LeaseState:
        """The connection's lease and record version as they stand."""
        with self.space.mutex:
            return self._state(self.space.rows.get(conn_id), time.time())

    @staticmethod
    def _state(row: _Row | None, now: float) -> LeaseState:
        if row is None:
            return LeaseState(acquired=False, holder=None, remaining=None, version=None)
        live = row.lease_owner is not None and row.lease_until is not None and row.lease_until > now
        return LeaseState(
            acquired=False,
            holder=row.lease_owner if live else None,
            remaining=row.lease_until - now if live and row.lease_until is not None else None,
            version=row.token_version,
        )

    def claim_lease(self, conn_id: str, owner: str, seconds: float, *, service: str) -> LeaseState:
        """Take the lease of ``conn_id`` for ``seconds`` unless another live lease holds it."""
        now = time.time()
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            if row is None:
                row = self.space.rows[conn_id] = _Row(service=service, updated_at=now)
            state = self._state(row, now)
            if state.holder is not None and state.holder != owner:
                return state
            row.lease_owner, row.lease_until = owner, now + seconds
            return LeaseState(acquired=True, holder=owner, remaining=seconds, version=row.token_version)

    def renew_lease(self, conn_id: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease by ``seconds`` from now; False when ``owner`` no longer holds it."""
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            if row is None or row.lease_owner != owner:
                return False
            row.lease_until = time.time() + seconds
            return True

    def release_lease(self, conn_id: str, owner: str) -> None:
        """Give up ``owner``'s lease (no-op when it no longer holds it)."""
        with self.space.mutex:
            row = self.space.rows.get(conn_id)
            if row is not None and row.lease_owner == owner:
                row.lease_owner = row.lease_until = None

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
                if row.is_record
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

    def rotate_keys(self) -> KeyRotation:
        """Re-encrypt every payload and connection with the first key, all at once (nothing is skipped)."""
        with self.space.mutex:
            rotated: dict[str, tuple[str | None, str | None]] = {}
            for conn_id, row in self.space.rows.items():
                if not row.is_record:
                    continue
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
        return KeyRotation(rotated=len(rotated))

    def iter_conn_ids(self) -> Iterator[str]:
        """Every connection id with a record."""
        with self.space.mutex:
            ids = sorted(conn_id for conn_id, row in self.space.rows.items() if row.is_record)
        return iter(ids)

    def after_fork(self) -> None:
        """In a forked child: a fresh mutex (a parent thread may have held it at the fork)."""
        self.space.mutex = threading.Lock()

    def close(self) -> None:
        """Nothing to release: the named space lives as long as the process."""
