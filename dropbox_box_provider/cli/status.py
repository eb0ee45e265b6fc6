"""``status``: what the token store knows about each connection and whether a person must act."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import tokens_from_record
from dropbox_box_provider.cli import pending
from dropbox_box_provider.cli.authorize import ACCOUNT_KEY
from dropbox_box_provider.cli.context import StoreChoice, connection_store, load_config, store_for
from dropbox_box_provider.cli.output import duration, iso, say, since, until
from dropbox_box_provider.errors import DropboxBoxError, TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import RecordMeta, TokenStore

BOX_REFRESH_LIFETIME = 60 * 86400  # an unused Box refresh token dies after 60 days


@dataclass
class StatusRow:
    """One connection's state; timestamps are Unix seconds (None when unknown). Holds no token."""

    conn_id: str
    service: str | None = None
    scheme: str | None = None
    account: str | None = None
    expires_at: float | None = None
    refresh_issued_at: float | None = None
    updated_at: float | None = None
    has_refresh_token: bool = False
    store: str | None = None
    needs_reauthorization: bool = False
    problem: str | None = None

    @property
    def needs_action(self) -> bool:
        """True when a person must act: re-authorize, or fix a connection that cannot be read."""
        return self.needs_reauthorization or (self.scheme is None and self.problem is not None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("expires_at", "refresh_issued_at", "updated_at"):
            data[f"{name}_iso"] = iso(data[name])
        return data


@dataclass
class _Tokens:
    """What a decrypted record says (or that it could not be decrypted)."""

    meta: RecordMeta | None
    has_access: bool = False
    has_refresh: bool = False
    account: str | None = None
    undecryptable: str | None = None


def _read(store: TokenStore, conn_id: str, meta: RecordMeta | None) -> _Tokens:
    try:
        record = store.read(conn_id)
    except TokenStoreError as exc:
        return _Tokens(meta, undecryptable=str(exc))
    if record is None:
        return _Tokens(meta)
    tokens = tokens_from_record(record)
    account = tokens.extra.get(ACCOUNT_KEY) or tokens.account_id
    return _Tokens(meta, bool(tokens.access_token), bool(tokens.refresh_token), account)


def _judge(row: StatusRow, config: AuthConfig | None, found: _Tokens, now: float) -> None:
    """Set ``needs_reauthorization`` and ``problem`` from the connection and its stored tokens."""
    if found.undecryptable:
        row.needs_reauthorization, row.problem = True, found.undecryptable
        return
    if config is not None and (config.is_service_account or config.uses_static_token):
        return  # JWT/CCG get tokens on demand; a static token is used as given
    service = row.service
    if found.has_refresh:
        age = now - row.refresh_issued_at if row.refresh_issued_at is not None else None
        if service == "box" and age is not None and age > BOX_REFRESH_LIFETIME:
            row.needs_reauthorization = True
            row.problem = "the Box refresh token is older than 60 days and has expired"
        return
    if config is not None and (config.refresh_token or config.verifier):
        return  # the hooks start from the connection's refresh token or exchange its verifier
    if found.has_access and row.expires_at is not None and row.expires_at > now:
        row.problem = "no refresh token: the access token cannot be renewed once it expires"
        return
    row.needs_reauthorization = True
    row.problem = (
        "the access token expired and no refresh token is stored" if found.has_access else "no tokens yet"
    )


def _row(conn_id: str, config: AuthConfig | None, store: TokenStore, now: float) -> StatusRow:
    meta = next((m for m in store.list_meta() if m.conn_id == conn_id), None)
    found = _read(store, conn_id, meta)
    row = StatusRow(conn_id=conn_id, store=store.url)
    if meta is not None:
        row.service, row.expires_at = meta.service, meta.expires_at
        row.refresh_issued_at, row.updated_at = meta.refresh_issued_at, meta.updated_at
    if config is not None:
        row.service, row.scheme = config.service, config.auth_scheme
    row.account, row.has_refresh_token = found.account, found.has_refresh
    _judge(row, config, found, now)
    return row


def _config_or_problem(conn_id: str) -> tuple[AuthConfig | None, str | None]:
    try:
        return load_config(conn_id), None
    except DropboxBoxError as exc:
        return None, str(exc)


def collect(conn_ids: list[str], choice: StoreChoice) -> list[StatusRow]:
    """Rows for ``conn_ids``, or for every connection in the store when none are named."""
    now = time.time()
    rows: list[StatusRow] = []
    if not conn_ids:
        store, _ = connection_store(choice)
        for meta in store.list_meta():
            if pending.is_pending_id(meta.conn_id):
                continue
            config, problem = _config_or_problem(meta.conn_id)
            row = _row(meta.conn_id, config, store if config is None else store_for(config, choice), now)
            row.problem = row.problem or problem
            rows.append(row)
        return rows
    for conn_id in conn_ids:
        config, problem = _config_or_problem(conn_id)
        if config is None:
            rows.append(StatusRow(conn_id=conn_id, problem=problem))
            continue
        rows.append(_row(conn_id, config, store_for(config, choice), now))
    return rows


def _refresh_age(row: StatusRow, now: float) -> str:
    if not row.has_refresh_token or row.refresh_issued_at is None:
        return "-"
    age = now - row.refresh_issued_at
    text = duration(age)
    if row.service == "box":
        left = BOX_REFRESH_LIFETIME - age
        text += f" ({int(left // 86400)}d left of 60)" if left > 0 else " (expired)"
    return text


def render(rows: list[StatusRow], as_json: bool) -> None:
    """Print the rows as a rich table, or as JSON for machines."""
    if as_json:
        say(json.dumps([row.to_json() for row in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    now = time.time()
    table = Table(title="Dropbox/Box connections")
    for column in (
        "Connection", "Service", "Scheme", "Account", "Access expires", "Refresh token age",
        "Last refresh", "Store", "Status",
    ):  # fmt: skip
        table.add_column(column, overflow="fold")
    for row in rows:
        if row.needs_reauthorization:
            state = f"[red]re-authorize: {row.problem}[/red]"
        elif row.problem:
            state = f"[yellow]{row.problem}[/yellow]"
        else:
            state = "[green]ok[/green]"
        table.add_row(
            row.conn_id,
            row.service or "?",
            row.scheme or "?",
            row.account or "-",
            until(row.expires_at, now) if row.expires_at is not None else "-",
            _refresh_age(row, now),
            since(row.updated_at, now),
            row.store or "-",
            state,
        )
    if not rows:
        say("No connections in the token store yet: run `dropbox-box-auth authorize CONN_ID`.")
        return
    # Piped output (no terminal) gets a wide table instead of rich's 80-column default.
    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240).print(table)
