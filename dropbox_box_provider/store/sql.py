"""TokenStore over SQLAlchemy Core for sqlite files and PostgreSQL (imported only when such a store opens).

Cross-process lock per connection: sqlite takes ``BEGIN IMMEDIATE`` (the database's write lock) on a
dedicated connection; PostgreSQL takes ``pg_advisory_xact_lock`` on a key derived from schema, table and
conn_id. Both are released when the transaction ends, including when the holding process dies.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dropbox_box_provider.errors import StoreConflict, TokenStoreError
from dropbox_box_provider.store.base import RecordMeta, TokenRecord, decrypt_part, record_from_row
from dropbox_box_provider.store.crypto import TokenCipher, UndecryptableError, undecryptable_message
from dropbox_box_provider.store.files import create_private_file, tighten_after_first_write
from dropbox_box_provider.store.files import tighten_sidecar_files as _tighten_sidecar_files
from dropbox_box_provider.store.memory import service_of_connection
from dropbox_box_provider.store.urls import mask_url, url_secrets

SCHEMA_VERSION = 1
LOCK_WAIT_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 5

metadata = MetaData()
tokens_table = Table(
    "oauth_tokens",
    metadata,
    Column("conn_id", String(250), primary_key=True),
    Column("service", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    # NULL payload: the row only holds a saved connection definition, no tokens yet.
    Column("payload", Text, nullable=True),
    Column("connection", Text, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("refresh_issued_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("seed_fingerprint", String(128), nullable=True),
)
schema_table = Table(
    "oauth_tokens_schema",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)
_META_COLUMNS = (
    tokens_table.c.conn_id,
    tokens_table.c.service,
    tokens_table.c.version,
    tokens_table.c.expires_at,
    tokens_table.c.refresh_issued_at,
    tokens_table.c.updated_at,
    tokens_table.c.seed_fingerprint,
    tokens_table.c.connection.is_not(None).label("has_connection"),
)


class _SqlLocked:
    """The SQL store's LockedRecord: the raw row as re-read under the lock; writes join that transaction."""

    def __init__(self, store: SqlTokenStore, conn: Connection, conn_id: str, row: Row[Any] | None) -> None:
        self._store = store
        self._conn = conn
        self._conn_id = conn_id
        self._row = row

    @property
    def record(self) -> TokenRecord | None:
        return self._store.record_from_row(self._row)

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
        expected = self._row.version if self._row is not None and self._row.payload is not None else None
        with self._store.translate_errors("write the token record"):
            written = self._store.write_row(
                self._conn,
                self._conn_id,
                self._row,
                service,
                payload,
                expected_version=expected,
                expires_at=expires_at,
                refresh_issued_at=refresh_issued_at,
                seed_fingerprint=seed_fingerprint,
                force=force,
            )
            self._row = self._store.fetch_row(self._conn, self._conn_id)
        return written


class SqlTokenStore:
    """TokenStore on sqlite (file) or PostgreSQL (psycopg) through SQLAlchemy Core."""

    def __init__(self, url: str, cipher: TokenCipher) -> None:
        self._sa_url = make_url(url)
        self.url = mask_url(self._sa_url)
        self._cipher = cipher
        self._dialect = self._sa_url.get_backend_name()
        self._schema_ready = False
        self._schema_mutex = threading.Lock()
        self._engine = self._create_engine()

    def __repr__(self) -> str:
        return f"SqlTokenStore({self.url!r})"

    # -- engine and transactions -------------------------------------------------------------------

    def _create_engine(self) -> Engine:
        if self._dialect == "sqlite":
            return self._create_sqlite_engine()
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in self._sa_url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        return create_engine(
            self._sa_url, pool_pre_ping=True, pool_size=2, max_overflow=32, connect_args=connect_args
        )

    def _create_sqlite_engine(self) -> Engine:
        path = self._sa_url.database
        if not path or path == ":memory:":
            raise TokenStoreError("an in-memory sqlite token store is not shared: use `memory://NAME`")
        try:
            create_private_file(path)
        except OSError as exc:
            raise TokenStoreError(
                f"token store {self.url} could not create its file: {exc.strerror or exc}. What to do: point "
                "the store at a path this user can write (oauth_settings_location or the backend's `store`)."
            ) from None
        engine = create_engine(
            self._sa_url,
            pool_size=2,
            max_overflow=64,
            pool_timeout=LOCK_WAIT_SECONDS,
            connect_args={"timeout": LOCK_WAIT_SECONDS, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let us emit BEGIN ourselves (pysqlite would otherwise defer it and ignore IMMEDIATE).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_SECONDS * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()
            _tighten_sidecar_files(path)

        event.listen(engine, "commit", lambda _conn: tighten_after_first_write(path))

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("sqlite_begin_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def translate_errors(self, action: str) -> Iterator[None]:
        """Turn database errors into TokenStoreError with a what-to-do message and no password."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise TokenStoreError(self._describe(exc, action)) from None

    def _describe(self, exc: SQLAlchemyError, action: str) -> str:
        orig = getattr(exc, "orig", None) or exc
        reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        for secret in url_secrets(self._sa_url.render_as_string(hide_password=False)):
            reason = reason.replace(secret, "***")
        lowered = reason.lower()
        if "locked" in lowered or "lock timeout" in lowered or "lock_timeout" in lowered:
            hint = (
                f"another process held the token store's lock for more than {LOCK_WAIT_SECONDS} s; "
                "check for a hung worker and retry"
            )
        elif self._dialect == "sqlite":
            hint = "check that the path is a writable sqlite database file (or point the store elsewhere)"
        else:
            hint = (
                "check that PostgreSQL is running and reachable at that address, that the user and database "
                "exist and the credentials are right (the password is not shown), then retry"
            )
        return f"token store {self.url} could not {action}: {reason}. What to do: {hint}."

    @contextmanager
    def _transaction(self, action: str, *, write: bool = False) -> Iterator[Connection]:
        """A connection in a transaction (sqlite: IMMEDIATE when writing); commits on success."""
        self._ensure_schema()
        with self.translate_errors(action), self._engine.connect() as conn:
            if write and self._dialect == "sqlite":
                conn.execution_options(sqlite_begin_immediate=True)
            with conn.begin():
                yield conn

    def _lock_key(self, conn: Connection, name: str) -> None:
        """PostgreSQL: wait for the transaction-scoped advisory lock of ``name`` in this schema's table."""
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
        key_sql = "hashtextextended(coalesce(current_schema(), '') || :name, 0)"
        conn.execute(
            text(f"SELECT pg_advisory_xact_lock({key_sql})"), {"name": f".{tokens_table.name}/{name}"}
        )

    def _ensure_schema(self) -> None:
        """Create or migrate the tables once per store object (serialised across processes)."""
        if self._schema_ready:
            return
        with self._schema_mutex:
            if self._schema_ready:
                return
            with self.translate_errors("create or migrate its tables"), self._engine.connect() as conn:
                if self._dialect == "sqlite":
                    conn.execution_options(sqlite_begin_immediate=True)
                with conn.begin():
                    if self._dialect != "sqlite":
                        self._lock_key(conn, "schema")
                    self._migrate(conn)
            self._schema_ready = True

    def _migrate(self, conn: Connection) -> None:
        inspector = inspect(conn)
        current = 0
        if inspector.has_table(schema_table.name):
            current = conn.execute(select(schema_table.c.version).where(schema_table.c.id == 1)).scalar() or 0
        if current > SCHEMA_VERSION:
            raise TokenStoreError(
                f"token store {self.url} has schema version {current}, newer than this provider understands "
                f"({SCHEMA_VERSION}); upgrade airflow-provider-dropbox-box on this machine"
            )
        if current < 1:
            metadata.create_all(conn, checkfirst=True)
            conn.execute(delete(schema_table))
            conn.execute(insert(schema_table).values(id=1, version=1))
        # Later schema versions add their steps here: ``if current < 2: ...``.

    # -- rows and records --------------------------------------------------------------------------

    def fetch_row(self, conn: Connection, conn_id: str) -> Row[Any] | None:
        """The raw row of ``conn_id`` (ciphertexts still encrypted), or None."""
        return conn.execute(select(tokens_table).where(tokens_table.c.conn_id == conn_id)).first()

    def _decrypt(self, conn_id: str, column: str, ciphertext: str) -> dict[str, Any]:
        data: dict[str, Any] = decrypt_part(
            self._cipher, ciphertext, conn_id=conn_id, column=column, store_url=self.url
        )
        return data

    def record_from_row(self, row: Row[Any] | None) -> TokenRecord | None:
        """Decrypt a raw row into a TokenRecord (None when it holds no tokens)."""
        return None if row is None else record_from_row(row.conn_id, row, self._cipher, self.url)

    def write_row(
        self,
        conn: Connection,
        conn_id: str,
        row: Row[Any] | None,
        service: str,
        payload: dict[str, Any],
        *,
        expected_version: int | None,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
        force: bool,
    ) -> TokenRecord:
        """Compare-and-swap ``payload`` over ``row`` (as the caller read it) within ``conn``'s transaction."""
        current = row.version if row is not None and row.payload is not None else None
        if current != expected_version:
            raise self._conflict(conn_id, current, expected_version)
        if row is not None and row.payload is not None and not force:
            try:
                self._cipher.decrypt(row.payload)
            except UndecryptableError:
                raise TokenStoreError(
                    undecryptable_message(conn_id, "token payload", self.url)
                    + " Refusing to overwrite it; a person may re-seed with force=True."
                ) from None
        now = time.time()
        values: dict[str, Any] = {
            "service": service,
            "payload": self._cipher.encrypt(payload),
            "expires_at": expires_at,
            "refresh_issued_at": refresh_issued_at,
            "updated_at": now,
            "seed_fingerprint": seed_fingerprint,
        }
        table = tokens_table
        if row is None:
            version = 1
            try:
                conn.execute(insert(table).values(conn_id=conn_id, version=version, **values))
            except IntegrityError:
                raise self._conflict(conn_id, "new", expected_version) from None
        else:
            version = row.version + 1
            has_tokens = table.c.payload.is_not(None)
            condition = table.c.payload.is_(None) if expected_version is None else has_tokens
            result = conn.execute(
                update(table)
                .where(table.c.conn_id == conn_id, table.c.version == row.version, condition)
                .values(version=version, **values)
            )
            if result.rowcount != 1:
                raise self._conflict(conn_id, "changed", expected_version)
        return TokenRecord(
            conn_id=conn_id,
            service=service,
            version=version,
            payload=dict(payload),
            expires_at=expires_at,
            refresh_issued_at=refresh_issued_at,
            updated_at=now,
            seed_fingerprint=seed_fingerprint,
        )

    @staticmethod
    def _conflict(conn_id: str, current: object, expected: int | None) -> StoreConflict:
        return StoreConflict(
            f"token record of {conn_id!r} changed (now {current}, expected version {expected}); "
            "another process wrote it first: re-read it and retry"
        )

    # -- the TokenStore protocol -------------------------------------------------------------------

    def read(self, conn_id: str) -> TokenRecord | None:
        """The record of ``conn_id`` with its payload decrypted, or None when it holds no tokens."""
        with self._transaction("read a token record") as conn:
            row = self.fetch_row(conn, conn_id)
        return self.record_from_row(row)

    @contextmanager
    def locked(self, conn_id: str) -> Iterator[_SqlLocked]:
        """Hold the cross-process lock of ``conn_id``; yields the row re-read under it. Commits on exit."""
        self._ensure_schema()
        with self.translate_errors(f"lock the token record of {conn_id!r}"):
            conn = self._engine.connect()
        try:
            with self.translate_errors(f"lock the token record of {conn_id!r}"):
                if self._dialect == "sqlite":
                    conn.execution_options(sqlite_begin_immediate=True)
                transaction = conn.begin()
                if self._dialect != "sqlite":
                    self._lock_key(conn, f"conn/{conn_id}")
                row = self.fetch_row(conn, conn_id)
            try:
                yield _SqlLocked(self, conn, conn_id, row)
            except BaseException:
                with contextlib.suppress(SQLAlchemyError):
                    transaction.rollback()
                raise
            with self.translate_errors(f"commit the token record of {conn_id!r}"):
                transaction.commit()
        finally:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

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
        with self._transaction("write a token record", write=True) as conn:
            return self.write_row(
                conn,
                conn_id,
                self.fetch_row(conn, conn_id),
                service,
                payload,
                expected_version=expected_version,
                expires_at=expires_at,
                refresh_issued_at=refresh_issued_at,
                seed_fingerprint=seed_fingerprint,
                force=force,
            )

    def delete(self, conn_id: str) -> bool:
        """Remove the record (tokens and saved connection); True when there was one."""
        with self._transaction("delete a token record", write=True) as conn:
            result = conn.execute(delete(tokens_table).where(tokens_table.c.conn_id == conn_id))
            return bool(result.rowcount)

    def list_meta(self) -> list[RecordMeta]:
        """Clear metadata of every record, without decrypting anything."""
        with self._transaction("list its records") as conn:
            rows = conn.execute(select(*_META_COLUMNS).order_by(tokens_table.c.conn_id)).all()
        return [
            RecordMeta(
                conn_id=row.conn_id,
                service=row.service,
                version=row.version,
                expires_at=row.expires_at,
                refresh_issued_at=row.refresh_issued_at,
                updated_at=row.updated_at,
                seed_fingerprint=row.seed_fingerprint,
                has_connection=bool(row.has_connection),
            )
            for row in rows
        ]

    def save_connection(self, conn_id: str, connection: Mapping[str, Any]) -> None:
        """Store (encrypted) a full connection definition for the secrets backend."""
        ciphertext = self._cipher.encrypt(dict(connection))
        with self._transaction("save a connection", write=True) as conn:
            row = self.fetch_row(conn, conn_id)
            now = time.time()
            if row is None:
                conn.execute(
                    insert(tokens_table).values(
                        conn_id=conn_id,
                        service=service_of_connection(dict(connection)),
                        version=0,
                        connection=ciphertext,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    update(tokens_table)
                    .where(tokens_table.c.conn_id == conn_id)
                    .values(connection=ciphertext, updated_at=now)
                )

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        """The saved connection definition, or None."""
        with self._transaction("read a saved connection") as conn:
            ciphertext = conn.execute(
                select(tokens_table.c.connection).where(tokens_table.c.conn_id == conn_id)
            ).scalar()
        return None if ciphertext is None else self._decrypt(conn_id, "connection", ciphertext)

    def rotate_keys(self) -> int:
        """Re-encrypt every payload and connection with the first key, all or nothing; returns the count."""
        count = 0
        with self._transaction("re-encrypt its records", write=True) as conn:
            rows = conn.execute(
                select(
                    tokens_table.c.conn_id,
                    tokens_table.c.version,
                    tokens_table.c.payload,
                    tokens_table.c.connection,
                )
            ).all()
            for row in rows:
                try:
                    payload = None if row.payload is None else self._cipher.rotate(row.payload)
                    connection = None if row.connection is None else self._cipher.rotate(row.connection)
                except UndecryptableError:
                    raise TokenStoreError(undecryptable_message(row.conn_id, "record", self.url)) from None
                result = conn.execute(
                    update(tokens_table)
                    .where(tokens_table.c.conn_id == row.conn_id, tokens_table.c.version == row.version)
                    .values(payload=payload, connection=connection)
                )
                # A record refreshed meanwhile (PostgreSQL) was written with the current first key already.
                count += result.rowcount
        return count

    def iter_conn_ids(self) -> Iterator[str]:
        """Every connection id with a record."""
        with self._transaction("list its records") as conn:
            query = select(tokens_table.c.conn_id).order_by(tokens_table.c.conn_id)
            ids = list(conn.execute(query).scalars())
        return iter(ids)

    def close(self) -> None:
        """Close every pooled database connection."""
        self._engine.dispose()
