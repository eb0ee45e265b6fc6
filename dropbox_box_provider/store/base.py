"""The TokenStore contract: encrypted token payloads per connection, CAS writes, a cross-process lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TokenRecord:
    """One connection's stored state. ``payload`` is decrypted; the other fields are stored in clear."""

    conn_id: str
    service: str
    version: int
    payload: dict[str, Any] = field(repr=False)
    expires_at: float | None = None
    refresh_issued_at: float | None = None
    updated_at: float | None = None
    seed_fingerprint: str | None = None


@dataclass(frozen=True)
class RecordMeta:
    """The clear metadata of a record, readable without the encryption key (for status displays)."""

    conn_id: str
    service: str
    version: int
    expires_at: float | None
    refresh_issued_at: float | None
    updated_at: float | None
    seed_fingerprint: str | None
    has_connection: bool


class LockedRecord(Protocol):
    """What ``TokenStore.locked`` yields: the record as re-read under the lock, and a write within it."""

    @property
    def record(self) -> TokenRecord | None: ...

    def write(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
    ) -> TokenRecord: ...


class TokenStore(Protocol):
    """Implemented once over SQLAlchemy Core (sqlite, PostgreSQL) and once in memory."""

    url: str

    def read(self, conn_id: str) -> TokenRecord | None: ...

    def locked(self, conn_id: str) -> AbstractContextManager[LockedRecord]: ...

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
    ) -> TokenRecord: ...

    def delete(self, conn_id: str) -> bool: ...

    def list_meta(self) -> list[RecordMeta]: ...

    def save_connection(self, conn_id: str, connection: dict[str, Any]) -> None: ...

    def get_connection(self, conn_id: str) -> dict[str, Any] | None: ...

    def rotate_keys(self) -> int: ...

    def iter_conn_ids(self) -> Iterator[str]: ...

    def close(self) -> None: ...
