"""Where the CLI finds connections and token stores: exactly where Airflow and the hooks do.

Airflow is imported only here and only when a command needs a connection or the configuration, so
``--help`` and commands given ``--store`` and ``--key`` stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.cli.errors import ConnectionNotFound
from dropbox_box_provider.errors import TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import TokenStore


def _enter_server_context() -> None:
    """Read connections like ``airflow connections get``: secrets backends, env vars and the metastore.

    Outside a task Airflow only consults the metastore in a "server" process; its own CLI marks itself so.
    Airflow is imported first: it loads the configured secrets backend while initialising, which fails
    if that backend's module (our token_store) is itself the one importing Airflow.
    """
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    import airflow.sdk  # noqa: F401


def load_connection(conn_id: str) -> Any:
    """The Airflow Connection ``conn_id`` as any Airflow process would resolve it."""
    _enter_server_context()
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionNotFound(conn_id) from None


def load_config(conn_id: str) -> AuthConfig:
    """The parsed, validated auth fields of ``conn_id`` (AuthConfigError lists every problem)."""
    from dropbox_box_provider.provider_config import default_refresh_margin

    return AuthConfig.from_connection(
        load_connection(conn_id), default_refresh_margin=default_refresh_margin()
    )


@dataclass(frozen=True)
class StoreChoice:
    """The ``--store`` / ``--key`` options; both None means "where the hooks keep this connection"."""

    location: str | None = None
    key: str | None = None

    @property
    def overridden(self) -> bool:
        return bool(self.location or self.key)


def _backend() -> Any:
    _enter_server_context()
    from dropbox_box_provider.secrets.token_store import find_configured_backend

    return find_configured_backend()


def _default_key(backend: Any) -> str | None:
    if backend is not None and backend.key:
        return str(backend.key)
    from dropbox_box_provider.secrets._airflow_config import fernet_key

    return fernet_key() or None


def _require(key: str | None) -> str:
    if key:
        return key
    raise TokenStoreError(
        "no encryption key is configured: set [core] fernet_key or the backend's key "
        "(AIRFLOW__CORE__FERNET_KEY, or the token store secrets backend's `key` kwarg), or give this command "
        "--key-file FILE or $DROPBOX_BOX_AUTH_KEY"
    )


def store_for(config: AuthConfig, choice: StoreChoice) -> TokenStore:
    """The token store of ``config``: the hooks' choice (``resolve_token_store``) unless overridden."""
    if not choice.overridden:
        _enter_server_context()
        from dropbox_box_provider.secrets.token_store import resolve_token_store

        return resolve_token_store(config)
    return _open(choice, config.oauth_settings_location)


def default_store(choice: StoreChoice) -> TokenStore:
    """The store of commands without a connection (status of all, rotate-keys, import)."""
    return _open(choice, None)


def _open(choice: StoreChoice, connection_location: str | None) -> TokenStore:
    from dropbox_box_provider.store.factory import open_store

    location, key = choice.location, choice.key
    if location is None or key is None:
        backend = _backend()
        if location is None:
            location = connection_location or (backend.store_location if backend is not None else None)
            if location is None:
                from dropbox_box_provider.provider_config import default_token_store

                location = default_token_store()
        if key is None:
            key = _default_key(backend)
    return open_store(location, _require(key))


def connection_store(choice: StoreChoice) -> tuple[TokenStore, bool]:
    """The store that keeps connection definitions, and whether a configured secrets backend serves it.

    Overridden: that store. Otherwise the configured TokenStoreBackend's store, else the default store.
    """
    if choice.overridden:
        store = _open(choice, None)
        backend = _backend()
        served = backend is not None and _same_store(store, backend)
        return store, served
    backend = _backend()
    if backend is not None:
        return backend.token_store(), True
    return _open(choice, None), False


def _same_store(store: TokenStore, backend: Any) -> bool:
    try:
        return bool(backend.token_store().url == store.url)
    except TokenStoreError:
        return False
