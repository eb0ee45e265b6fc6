"""TokenStore over SQLAlchemy Core for sqlite files and PostgreSQL (imported only when such a store opens).

Every operation is one short transaction; refresh leases are columns of the token row (owner id and
``lease_until`` by the database's clock), so no transaction is open while a token request runs and no
session state is used: PgBouncer in transaction-pooling mode works (server-side prepared statements are off).
Connection-level failures (a killed session, a failover) are retried on a fresh connection.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

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
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

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
from dropbox_box_provider.store.files import create_private_file, tighten_after_first_write
from dropbox_box_provider.store.files import tighten_sidecar_files as _tighten_sidecar_files
from dropbox_box_provider.store.urls import mask_url, url_secrets

# 2: refresh leases (lease_owner, lease_until) replace held transactions; the table is renamed so that a
# worker still running version-1 code fails instead of refreshing under the old locking protocol.
_R = TypeVar("_R")

SCHEMA_VERSION = 2
LOCK_WAIT_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 5
# Short transactions that fail on a dead connection are retried on fresh ones for this long.
TRANSIENT_RETRY_SECONDS = 5.0
LEGACY_TABLE = "oauth_tokens"
# The schema lock key keeps version 1's spelling so both versions serialise their migrations.
SCHEMA_LOCK_NAME = ".oauth_tokens/schema"

metadata = MetaData()
tokens_table = Table(
    "oauth_token_records",
    metadata,
    Column("conn_id", String(250), primary_key=True),
    Column("service", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    # NULL payload: the row holds only a saved connection definition and/or a lease, no tokens yet.
    Column("payload", Text, nullable=True),
    Column("connection", Text, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("refresh_issued_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("seed_fingerprint", String(128), nullable=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_until", Float, nullable=True),
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
# A row that only ever carried a lease is no record to list.
_IS_RECORD = tokens_table.c.payload.is_not(None) | tokens_table.c.connection.is_not(None)


def _is_transient(exc: SQLAlchemyError) -> bool:
    """A failure of the connection rather than of the statement: worth one more try on a fresh one."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


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
        self._db_now: ColumnElement[float] = literal_column(
            "((julianday('now') - 2440587.5) * 86400.0)"
            if self._dialect == "sqlite"
            else "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
            Float,
        )

    def __repr__(self) -> str:
        return f"SqlTokenStore({self.url!r})"

    # -- engine and transactions -------------------------------------------------------------------

    def _create_engine(self) -> Engine:
        if self._dialect == "sqlite":
            return self._create_sqlite_engine()
        # No server-side prepared statements: they are session state, which PgBouncer's transaction
        # pooling cannot keep (and the store's statements are too few to gain from them).
        connect_args: dict[str, Any] = {"prepare_threshold": None}
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
                f"another process held the token store's database lock for more than {LOCK_WAIT_SECONDS} s; "
                "check for a hung process holding the database and retry"
            )
        elif self._dialect == "sqlite":
            hint = "check that the path is a writable sqlite database file (or point the store elsewhere)"
        else:
            hint = (
                "check that PostgreSQL is running and reachable at that address, that the user and database "
                "exist and the credentials are right (the password is not shown), then retry"
            )
        return f"token store {self.url} could not {action}: {reason}. What to do: {hint}."

    def _run(
        self, action: str, work: Callable[[Connection], _R], *, write: bool = False, retry: bool = True
    ) -> _R:
        """Run ``work`` in one short transaction (sqlite: IMMEDIATE when writing) and commit it.

        A connection-level failure is retried on a fresh connection (``retry``): only for work that is
        safe to repeat after a commit whose answer was lost.
        """
        self._ensure_schema()
        return self._retrying(action, work, write=write, retry=retry)

    def _retrying(self, action: str, work: Callable[[Connection], _R], *, write: bool, retry: bool) -> _R:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._engine.connect() as conn:
                    if write and self._dialect == "sqlite":
                        conn.execution_options(sqlite_begin_immediate=True)
                    with conn.begin():
                        return work(conn)
            except SQLAlchemyError as exc:
                delay = min(1.0, 0.05 * 2**attempt) * (0.5 + random.random())  # noqa: S311 - jitter
                again = retry and _is_transient(exc) and not _is_lock_timeout(exc)
                if not again or time.monotonic() - started + delay > TRANSIENT_RETRY_SECONDS:
                    raise TokenStoreError(self._describe(exc, action)) from None
                time.sleep(delay)

    def _lock_key(self, conn: Connection, name: str) -> None:
        """PostgreSQL: wait for the transaction-scoped advisory lock of ``name`` in this schema."""
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
        key_sql = "hashtextextended(coalesce(current_schema(), '') || :name, 0)"
        conn.execute(text(f"SELECT pg_advisory_xact_lock({key_sql})"), {"name": name})

    def _ensure_schema(self) -> None:
        """Create or migrate the tables once per store object (serialised across processes)."""
        if self._schema_ready:
            return
        with self._schema_mutex:
            if self._schema_ready:
                return

            def migrate(conn: Connection) -> None:
                if self._dialect != "sqlite":
                    self._lock_key(conn, SCHEMA_LOCK_NAME)
                self._migrate(conn)

            self._retrying("create or migrate its tables", migrate, write=True, retry=True)
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
        if current == SCHEMA_VERSION:
            return
        if current == 1 and inspector.has_table(LEGACY_TABLE):
            conn.execute(text(f"ALTER TABLE {LEGACY_TABLE} RENAME TO {tokens_table.name}"))
            conn.execute(text(f"ALTER TABLE {tokens_table.name} ADD COLUMN lease_owner VARCHAR(200)"))
            conn.execute(text(f"ALTER TABLE {tokens_table.name} ADD COLUMN lease_until FLOAT"))
        else:
            metadata.create_all(conn, checkfirst=True)
        conn.execute(delete(schema_table))
        conn.execute(insert(schema_table).values(id=1, version=SCHEMA_VERSION))
        # Later schema versions add their steps here: ``if current < 3: ...``.

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
        lease_owner: str | None = None,
    ) -> TokenRecord:
        """Compare-and-swap ``payload`` over ``row`` (as the caller read it) within ``conn``'s transaction.

        With ``lease_owner`` the write also requires that owner's lease and releases it.
        """
        if lease_owner is not None and (row is None or row.lease_owner != lease_owner):
            raise self._lease_lost(conn_id, lease_owner)
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
            conditions = [
                table.c.conn_id == conn_id,
                table.c.version == row.version,
                table.c.payload.is_(None) if expected_version is None else has_tokens,
            ]
            if lease_owner is not None:
                conditions.append(table.c.lease_owner == lease_owner)
                values.update(lease_owner=None, lease_until=None)
            result = conn.execute(update(table).where(*conditions).values(version=version, **values))
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

    def _lease_lost(self, conn_id: str, owner: str) -> LeaseLost:
        return LeaseLost(
            f"the refresh lease of {conn_id!r} in token store {self.url} is no longer held by {owner} "
            "(it lapsed and another worker took it, or the record was deleted); nothing was written"
        )

    # -- the TokenStore protocol -------------------------------------------------------------------

    def read(self, conn_id: str) -> TokenRecord | None:
        """The record of ``conn_id`` with its payload decrypted, or None when it holds no tokens."""
        row = self._run("read a token record", lambda conn: self.fetch_row(conn, conn_id))
        return self.record_from_row(row)

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

        def work(conn: Connection) -> TokenRecord:
            return self.write_row(
                conn,
                conn_id,
                self._fetch_for_update(conn, conn_id),
                service,
                payload,
                expected_version=expected_version,
                expires_at=expires_at,
                refresh_issued_at=refresh_issued_at,
                seed_fingerprint=seed_fingerprint,
                force=force,
                lease_owner=lease_owner,
            )

        # Not retried here: a lost commit answer would turn into a conflict; Lease.write re-checks instead.
        return self._run("write a token record", work, write=True, retry=False)

    def _fetch_for_update(self, conn: Connection, conn_id: str) -> Row[Any] | None:
        query = select(tokens_table).where(tokens_table.c.conn_id == conn_id)
        if self._dialect != "sqlite":  # sqlite's BEGIN IMMEDIATE already excludes other writers
            query = query.with_for_update()
        return conn.execute(query).first()

    def _lease_row(self, conn: Connection, conn_id: str, *, for_update: bool) -> Row[Any] | None:
        table = tokens_table
        query = select(
            table.c.version,
            table.c.payload.is_not(None).label("has_tokens"),
            table.c.lease_owner,
            table.c.lease_until,
            self._db_now.label("now"),
        ).where(table.c.conn_id == conn_id)
        if for_update and self._dialect != "sqlite":
            query = query.with_for_update(of=table)
        return conn.execute(query).first()

    @staticmethod
    def _state(row: Row[Any] | None, *, acquired: bool, owner: str | None = None) -> LeaseState:
        if row is None:
            return LeaseState(acquired=acquired, holder=owner, remaining=None, version=None)
        version = row.version if row.has_tokens else None
        if acquired:
            return LeaseState(acquired=True, holder=owner, remaining=None, version=version)
        live = row.lease_owner is not None and row.lease_until is not None and row.lease_until > row.now
        return LeaseState(
            acquired=False,
            holder=row.lease_owner if live else None,
            remaining=row.lease_until - row.now if live else None,
            version=version,
        )

    def lease_state(self, conn_id: str) -> LeaseState:
        """The connection's lease and record version as they stand (read only)."""
        return self._run(
            "read a refresh lease",
            lambda conn: self._state(self._lease_row(conn, conn_id, for_update=False), acquired=False),
        )

    def claim_lease(self, conn_id: str, owner: str, seconds: float, *, service: str) -> LeaseState:
        """Take the lease of ``conn_id`` for ``seconds`` unless another live lease holds it.

        Safe to repeat: a claim whose commit answer was lost is found held by the same owner next time.
        """
        table = tokens_table

        def work(conn: Connection) -> LeaseState:
            row = self._lease_row(conn, conn_id, for_update=True)
            if row is None:
                conn.execute(
                    insert(table).values(
                        conn_id=conn_id,
                        service=service,
                        version=0,
                        updated_at=time.time(),
                        lease_owner=owner,
                        lease_until=self._db_now + seconds,
                    )
                )
                return self._state(None, acquired=True, owner=owner)
            free = row.lease_owner is None or row.lease_until is None or row.lease_until <= row.now
            if not (free or row.lease_owner == owner):
                return self._state(row, acquired=False)
            conn.execute(
                update(table)
                .where(table.c.conn_id == conn_id)
                .values(lease_owner=owner, lease_until=self._db_now + seconds)
            )
            return self._state(row, acquired=True, owner=owner)

        try:
            return self._run(f"claim the refresh lease of {conn_id!r}", work, write=True)
        except TokenStoreError:
            # Two first claims of a new connection race on the insert: the loser sees the winner's lease.
            return self._run(f"claim the refresh lease of {conn_id!r}", work, write=True)

    def renew_lease(self, conn_id: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease by ``seconds`` from now; False when ``owner`` no longer holds it."""
        table = tokens_table

        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(table)
                .where(table.c.conn_id == conn_id, table.c.lease_owner == owner)
                .values(lease_until=self._db_now + seconds)
            )
            return bool(result.rowcount)

        return self._run(f"renew the refresh lease of {conn_id!r}", work, write=True)

    def release_lease(self, conn_id: str, owner: str) -> None:
        """Give up ``owner``'s lease (no-op when it no longer holds it)."""
        table = tokens_table
        self._run(
            f"release the refresh lease of {conn_id!r}",
            lambda conn: conn.execute(
                update(table)
                .where(table.c.conn_id == conn_id, table.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            ),
            write=True,
        )

    def delete(self, conn_id: str) -> bool:
        """Remove the record (tokens, saved connection, lease); True when there was one."""
        return self._run(
            "delete a token record",
            lambda conn: bool(
                conn.execute(delete(tokens_table).where(tokens_table.c.conn_id == conn_id)).rowcount
            ),
            write=True,
        )

    def list_meta(self) -> list[RecordMeta]:
        """Clear metadata of every record, without decrypting anything."""
        rows = self._run(
            "list its records",
            lambda conn: conn.execute(
                select(*_META_COLUMNS).where(_IS_RECORD).order_by(tokens_table.c.conn_id)
            ).all(),
        )
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

        def work(conn: Connection) -> None:
            now = time.time()
            if self._fetch_for_update(conn, conn_id) is None:
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

        self._run("save a connection", work, write=True)

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        """The saved connection definition, or None."""
        ciphertext = self._run(
            "read a saved connection",
            lambda conn: conn.execute(
                select(tokens_table.c.connection).where(tokens_table.c.conn_id == conn_id)
            ).scalar(),
        )
        return None if ciphertext is None else self._decrypt(conn_id, "connection", ciphertext)

    def rotate_keys(self) -> KeyRotation:
        """Re-encrypt every payload and connection with the first key; rows written meanwhile are
        re-read and rotated again (a few passes), and any still changing are reported as skipped."""
        pending: list[str] | None = None
        rotated = 0
        for _ in range(4):

            def rotate_pass(conn: Connection, ids: list[str] | None = pending) -> tuple[int, list[str]]:
                return self._rotate_pass(conn, ids)

            count, pending = self._run("re-encrypt its records", rotate_pass, write=True)
            rotated += count
            if not pending:
                break
        return KeyRotation(rotated=rotated, skipped=tuple(pending or ()))

    def _rotate_pass(self, conn: Connection, conn_ids: list[str] | None) -> tuple[int, list[str]]:
        """One all-or-nothing pass over ``conn_ids`` (None: all); returns (rotated, changed meanwhile)."""
        table = tokens_table
        query = select(table.c.conn_id, table.c.version, table.c.payload, table.c.connection).where(
            _IS_RECORD
        )
        if conn_ids is not None:
            query = query.where(table.c.conn_id.in_(conn_ids))
        count, changed = 0, []
        for row in conn.execute(query).all():
            try:
                payload = None if row.payload is None else self._cipher.rotate(row.payload)
                connection = None if row.connection is None else self._cipher.rotate(row.connection)
            except UndecryptableError:
                raise TokenStoreError(undecryptable_message(row.conn_id, "record", self.url)) from None
            result = conn.execute(
                update(table)
                .where(table.c.conn_id == row.conn_id, table.c.version == row.version)
                .values(payload=payload, connection=connection)
            )
            if result.rowcount:
                count += 1
            else:  # written by a refresh since the read (PostgreSQL): maybe under an older first key
                changed.append(row.conn_id)
        return count, changed

    def iter_conn_ids(self) -> Iterator[str]:
        """Every connection id with a record."""
        query = select(tokens_table.c.conn_id).where(_IS_RECORD).order_by(tokens_table.c.conn_id)
        return iter(self._run("list its records", lambda conn: list(conn.execute(query).scalars())))

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pooled connections (never close them) and fresh locks."""
        self._engine.dispose(close=False)
        self._schema_mutex = threading.Lock()

    def close(self) -> None:
        """Close every pooled database connection."""
        self._engine.dispose()


def _is_lock_timeout(exc: SQLAlchemyError) -> bool:
    reason = str(getattr(exc, "orig", None) or exc).lower()
    return "lock timeout" in reason or "lock_timeout" in reason or "database is locked" in reason
