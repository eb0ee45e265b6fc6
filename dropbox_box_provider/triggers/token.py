"""OAuthTokenTrigger: waits, in the triggerer, until a connection's token is due for refresh or authorized.

It reads only the token store's clear metadata (expiry, refresh-token issue time, version): no decryption,
no network call to Dropbox or Box. Its serialized kwargs (kept in Airflow's metadata database) hold the
connection id, a store *reference* and thresholds; never a store URL (it may carry a database password), a
token or a key. The triggerer resolves the reference from its own configuration (``open_referenced_store``).
The rules (``due_reason``, ``is_authorized``) live in ``auth/policy.py``, shared with the sensor's poke and
the refresh operator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from airflow.triggers.base import BaseTrigger, TriggerEvent

from dropbox_box_provider.auth.policy import (
    CONDITIONS,
    DEFAULT_MAX_REFRESH_TOKEN_AGE,
    DEFAULT_WINDOW,
    TokenCondition,
    TokenState,
    due_reason,
    is_authorized,
    meta_due,
)
from dropbox_box_provider.errors import DropboxBoxError, TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import RecordMeta, TokenStore

__all__ = [  # the policy's names, importable from here as before
    "CONDITIONS",
    "DEFAULT_MAX_REFRESH_TOKEN_AGE",
    "DEFAULT_WINDOW",
    "OAuthTokenTrigger",
    "TokenCondition",
    "TokenState",
    "due_reason",
    "is_authorized",
    "meta_due",
]

# Where the sensor found the tokens: the connection's oauth_settings_location, the token store secrets
# backend's store, or the default sqlite file. The triggerer resolves each from its own configuration.
StoreRef = Literal["connection", "backend", "default"]
STORE_REFS: tuple[StoreRef, ...] = ("connection", "backend", "default")
DEFAULT_POLL_INTERVAL = 60.0


def meta_payload(conn_id: str, meta: RecordMeta | None) -> dict[str, Any]:
    """The clear metadata an event or XCom carries (no token)."""
    return {
        "conn_id": conn_id,
        "service": meta.service if meta else None,
        "version": meta.version if meta else None,
        "expires_at": meta.expires_at if meta else None,
        "refresh_issued_at": meta.refresh_issued_at if meta else None,
    }


def read_meta(store: TokenStore, conn_id: str) -> RecordMeta | None:
    """The clear metadata of ``conn_id`` (``list_meta`` decrypts nothing)."""
    return next((meta for meta in store.list_meta() if meta.conn_id == conn_id), None)


_METADATA_ONLY_KEY: list[str] = []


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _metadata_key(keys: list[str]) -> str:
    """A Fernet key to open a store for clear metadata only (any key will do; the configured one first)."""
    from dropbox_box_provider.secrets import _airflow_config

    if keys:
        return keys[0]
    if _airflow_config.fernet_key():
        return _airflow_config.fernet_key()
    if not _METADATA_ONLY_KEY:
        from cryptography.fernet import Fernet

        _METADATA_ONLY_KEY.append(Fernet.generate_key().decode())
    return _METADATA_ONLY_KEY[0]


def store_reference(location: str | None) -> StoreRef:
    """The reference a trigger carries for the store of a connection whose ``oauth_settings_location`` is
    ``location`` (the same order as ``resolve_token_store``)."""
    from dropbox_box_provider.secrets.token_store import find_configured_backend

    if location:
        return "connection"
    return "backend" if find_configured_backend() is not None else "default"


def open_referenced_store(store_ref: str, conn_id: str) -> TokenStore:
    """Open the store a ``store_reference`` names, from this process's configuration (the triggerer's).

    ``connection`` reads the connection's ``oauth_settings_location`` (the URL never leaves the secrets
    backend or metastore); ``backend`` is the configured TokenStoreBackend's store; ``default`` the sqlite
    file ``$AIRFLOW_HOME/oauth_tokens.db``.
    """
    from dropbox_box_provider.secrets.token_store import TokenStoreBackend
    from dropbox_box_provider.store.factory import open_store

    backends = [b for b in (TokenStoreBackend.from_config(worker_mode=m) for m in (True, False)) if b]
    if store_ref == "backend":
        if not backends:
            raise TokenStoreError(
                "the sensor found its tokens in the token store secrets backend's store, but this triggerer "
                "has no TokenStoreBackend configured: configure [secrets] backend and backend_kwargs for "
                "the triggerer as for the workers"
            )
        return backends[0].token_store()
    keys = [b.key for b in backends if b.key]
    if store_ref == "default":
        return open_store(None, _metadata_key(keys))
    if store_ref != "connection":
        raise TokenStoreError(
            f"unknown token store reference {store_ref!r} (expected one of {', '.join(STORE_REFS)}); "
            "clear the task so the sensor defers again"
        )
    from airflow.sdk import BaseHook

    from dropbox_box_provider.auth.config import AuthConfig

    config = AuthConfig.from_connection(BaseHook.get_connection(conn_id))
    return open_store(config.oauth_settings_location, _metadata_key(keys))


def open_metadata_store(store_url: str) -> TokenStore:
    """Open the store named by a password-free URL (triggers serialized before store references existed).

    A configured TokenStoreBackend whose store has that URL is used as is (it knows the password). Otherwise
    the URL is opened directly: only clear metadata is read, so any Fernet key will do.
    """
    from dropbox_box_provider.auth.config import redact_url_password
    from dropbox_box_provider.secrets.token_store import TokenStoreBackend
    from dropbox_box_provider.store.factory import open_store

    keys: list[str] = []
    for worker_mode in (True, False):
        backend = TokenStoreBackend.from_config(worker_mode=worker_mode)
        if backend is None:
            continue
        try:
            store = backend.token_store()
        except TokenStoreError:
            continue
        if redact_url_password(store.url) == store_url:
            return store
        if backend.key:
            keys.append(backend.key)
    if _has_password(store_url):
        raise TokenStoreError(
            f"the token store {store_url} needs a password, which a trigger never carries: configure "
            "TokenStoreBackend with this store (`store` kwarg) for the triggerer too"
        )
    return open_store(store_url, _metadata_key(keys))


class OAuthTokenTrigger(BaseTrigger):
    """Fires once ``conn_id``'s stored token is ``due`` for refresh (sleeping until the expiry window
    opens, re-reading the store at least every ``poll_interval`` s) or ``authorized`` (polling the store)."""

    def __init__(
        self,
        conn_id: str,
        store_url: str | None = None,
        *,
        store_ref: StoreRef = "connection",
        mode: TokenCondition = "due",
        window: float = DEFAULT_WINDOW,
        max_refresh_token_age: float = DEFAULT_MAX_REFRESH_TOKEN_AGE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if mode not in CONDITIONS:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(CONDITIONS)}")
        if store_ref not in STORE_REFS:
            raise ValueError(f"store_ref {store_ref!r} is not one of {', '.join(STORE_REFS)}")
        self.conn_id = conn_id
        self.store_url = store_url  # only in triggers serialized by earlier versions
        self.store_ref: StoreRef = store_ref
        self.mode: TokenCondition = mode
        self.window = float(window)
        self.max_refresh_token_age = float(max_refresh_token_age)
        self.poll_interval = max(0.05, float(poll_interval))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain-JSON kwargs: a store reference, never a store URL, token or key."""
        location = {"store_url": self.store_url} if self.store_url else {"store_ref": self.store_ref}
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                **location,
                "mode": self.mode,
                "window": self.window,
                "max_refresh_token_age": self.max_refresh_token_age,
                "poll_interval": self.poll_interval,
            },
        )

    def evaluate(self, meta: RecordMeta | None, now: float) -> TokenState:
        """The trigger's condition on one metadata reading."""
        if self.mode == "authorized":
            return is_authorized(meta, now=now)
        return meta_due(meta, window=self.window, max_refresh_token_age=self.max_refresh_token_age, now=now)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event: ``status`` success with the metadata, or error with a what-to-do message."""
        try:
            if self.store_url:
                store = await asyncio.to_thread(open_metadata_store, self.store_url)
            else:
                store = await asyncio.to_thread(open_referenced_store, self.store_ref, self.conn_id)
            while True:
                meta = await asyncio.to_thread(read_meta, store, self.conn_id)
                state = self.evaluate(meta, time.time())
                if state.met:
                    self.log.info("Connection %r is %s: %s", self.conn_id, self.mode, state.reason)
                    yield TriggerEvent(  # type: ignore[no-untyped-call]
                        {"status": "success", "mode": self.mode, "reason": state.reason}
                        | meta_payload(self.conn_id, meta)
                    )
                    return
                delay = self.poll_interval
                if state.opens_in is not None:
                    delay = min(delay, max(state.opens_in, 0.0))
                await asyncio.sleep(delay)
        except DropboxBoxError as exc:
            yield TriggerEvent(  # type: ignore[no-untyped-call]
                {"status": "error", "mode": self.mode, "conn_id": self.conn_id, "message": str(exc)}
            )
