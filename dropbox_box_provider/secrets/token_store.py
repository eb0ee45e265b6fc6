"""TokenStoreBackend: an Airflow secrets backend serving connections saved in the token store, live tokens
included, and the discovery hooks use to keep token state in the configured store.

Configure it with ``[secrets] backend`` (``[workers] secrets_backend`` for task processes) and
``backend_kwargs`` ``{"store": "<URL or path>", "key": "<fernet key[,older keys]>",
"connections_only_from_store": false}``. Importing this module is cheap: the store opens on first use.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk.bases.secrets_backend import BaseSecretsBackend
except ImportError:  # Airflow 3.1: the base class lives in core only
    from airflow.secrets.base_secrets import BaseSecretsBackend  # type: ignore[assignment]

from dropbox_box_provider.errors import TokenStoreError
from dropbox_box_provider.secrets import _airflow_config
from dropbox_box_provider.secrets._connections import definition_from, served_connection_json

if TYPE_CHECKING:
    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.store.base import TokenStore

log = logging.getLogger(__name__)

BACKEND_PATH = f"{__name__}.TokenStoreBackend"
KNOWN_KWARGS = ("store", "key", "connections_only_from_store")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
_WARNED: set[str] = set()
_MASKED_URL_SECRETS: set[str] = set()
_WARNED_MUTEX = threading.Lock()


def _warn_once(message: str) -> None:
    """Log ``message`` at warning level once per process (Airflow logs backend exceptions only at debug)."""
    with _WARNED_MUTEX:
        if message in _WARNED:
            return
        _WARNED.add(message)
    log.warning("%s", message)


def _mask_url_secrets(url: str) -> None:
    """Register the store URL's passwords (userinfo, ``password``/``sslpassword``) with Airflow's masker."""
    from dropbox_box_provider.store.urls import url_secrets

    found = [secret for secret in url_secrets(url) if secret not in _MASKED_URL_SECRETS]
    if not found:
        return
    from airflow.sdk.log import mask_secret

    for secret in found:
        mask_secret(secret)
        _MASKED_URL_SECRETS.add(secret)


def _parse_flag(name: str, value: Any) -> tuple[bool, str | None]:
    if isinstance(value, bool):
        return value, None
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE, None
    return False, f"backend kwarg {name!r} must be true or false"


class TokenStoreBackend(BaseSecretsBackend):
    """Serves connections saved in the token store (with their current tokens); None for any other id.

    Never raises from a lookup: a broken store or configuration logs one warning line and answers None, so
    Airflow falls through to environment variables and the metastore; hooks then raise TokenStoreError with
    the remembered reason (``token_store``). Variables and config options are not served.
    """

    def __init__(
        self,
        store: str | None = None,
        key: str | None = None,
        connections_only_from_store: bool | str = False,
        **unknown: Any,
    ) -> None:
        super().__init__()
        self.store_location = (store or "").strip() or _default_token_store()
        self._key = (key or "").strip() or None
        self.connections_only_from_store, flag_problem = _parse_flag(
            "connections_only_from_store", connections_only_from_store
        )
        problems = [flag_problem] if flag_problem else []
        for name in sorted(unknown):
            close = difflib.get_close_matches(name.lower(), KNOWN_KWARGS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known kwargs: {', '.join(KNOWN_KWARGS)}"
            problems.append(f"unknown backend kwarg {name!r} ({hint})")
        self._config_problem = "; ".join(problems) or None
        self._last_failure: str | None = None

    def __repr__(self) -> str:
        key_state = "set" if self._key else "unset"
        return f"TokenStoreBackend(store={self._describe_location()!r}, key={key_state})"

    # -- building ----------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, worker_mode: bool | None = None) -> TokenStoreBackend | None:
        """A backend built from this process's Airflow configuration, or None when it names another one.

        ``worker_mode`` (default: True unless this is a server process) reads ``[workers] secrets_backend``
        first, as Airflow does in task processes.
        """
        if worker_mode is None:
            worker_mode = not _airflow_config.is_server_process()
        setting = _airflow_config.backend_setting(worker_mode)
        if setting is None or not _names_this_backend(setting.class_path):
            return None
        backend = cls(**setting.kwargs)
        if setting.kwargs_error:
            problems = (setting.kwargs_error, backend._config_problem)
            backend._config_problem = "; ".join(p for p in problems if p)
        return backend

    # -- the secrets backend interface -------------------------------------------------------------

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        """The saved connection's JSON with the store's current tokens in its extras, or None."""
        try:
            store = self._open()
            definition = store.get_connection(conn_id)
            if definition is None:
                return None
            record = store.read(conn_id)
        except TokenStoreError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # Airflow would swallow it at debug level; say it once instead
            self._fail(f"token store {self._describe_location()} failed: {type(exc).__name__}")
            return None
        self._last_failure = None
        return served_connection_json(definition, record.payload if record is not None else None)

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        """Variables are not kept in the token store."""
        return None

    def get_config(self, key: str) -> str | None:
        """Configuration options are not kept in the token store."""
        return None

    # -- the token store ---------------------------------------------------------------------------

    @property
    def key(self) -> str | None:
        """The Fernet key(s) this backend encrypts with: its ``key`` kwarg, else ``[core] fernet_key``."""
        return self._key or _airflow_config.fernet_key() or None

    @property
    def last_failure(self) -> str | None:
        """Why the last lookup failed (no secrets in it), None after a success."""
        return self._config_problem or self._last_failure

    def token_store(self) -> TokenStore:
        """The configured token store (opened once per process); TokenStoreError says what is wrong."""
        try:
            return self._open()
        except TokenStoreError as exc:
            self._fail(str(exc))
            raise TokenStoreError(self._error_text(str(exc))) from None

    def _open(self) -> TokenStore:
        """Open the store; TokenStoreError carries the bare problem (callers log and wrap it)."""
        if self._config_problem:
            raise TokenStoreError(self._config_problem)
        if self.store_location:  # on use, not in __init__: Airflow builds backends while it initialises
            _mask_url_secrets(self.store_location)
        key = self.key
        if not key:
            from dropbox_box_provider.store.crypto import GENERATE_KEY_HINT

            raise TokenStoreError(
                "no encryption key is configured: set [core] fernet_key or the backend's key (the backend "
                "kwarg `key`); " + GENERATE_KEY_HINT
            )
        from dropbox_box_provider.store.factory import open_store

        try:
            return open_store(self.store_location, key)
        except OSError as exc:
            raise TokenStoreError(
                f"token store {self._describe_location()} cannot be created or opened "
                f"({exc.strerror or type(exc).__name__}): point `store` at a writable path or a database URL"
            ) from None

    def save_connection(self, conn_id: str, connection: Mapping[str, Any] | Any) -> None:
        """Save a full connection definition (mapping of columns + ``extra``, or an Airflow Connection).

        Tokens in its extras are kept as the definition's seed; the live tokens stay in the token record.
        """
        definition = definition_from(conn_id, connection)
        self.token_store().save_connection(conn_id, definition)

    def check_store(self, conn_id: str | None = None) -> TokenStore:
        """The store after one round trip to it (raises TokenStoreError naming the backend's failure).

        With ``connections_only_from_store`` the connection must be saved in the store.
        """
        store = self.token_store()
        try:
            saved = store.get_connection(conn_id or "")
        except TokenStoreError as exc:
            self._fail(str(exc))
            raise TokenStoreError(self._error_text(str(exc))) from None
        self._last_failure = None
        if self.connections_only_from_store and conn_id and saved is None:
            raise TokenStoreError(
                f"connection {conn_id!r} is not saved in the token store {store.url}, and the secrets "
                f"backend's connections_only_from_store is true: run `dropbox-box-auth save-connection "
                f"{conn_id}` (or set connections_only_from_store to false)"
            )
        return store

    # -- helpers -----------------------------------------------------------------------------------

    def _describe_location(self) -> str:
        if self.store_location is None:
            return "<default sqlite file $AIRFLOW_HOME/oauth_tokens.db>"
        from dropbox_box_provider.auth.config import redact_url_password

        return redact_url_password(self.store_location)

    def _fail(self, problem: str) -> None:
        if problem != self._config_problem:
            self._last_failure = problem
        _warn_once(
            f"TokenStoreBackend ({BACKEND_PATH}) serves no connections: {problem.rstrip('.')}. Airflow falls "
            "through to "
            "environment variables and the metastore; Dropbox/Box hooks raise TokenStoreError until this is "
            "fixed."
        )

    @staticmethod
    def _error_text(problem: str) -> str:
        return f"the token store secrets backend ({BACKEND_PATH}) is not usable: {problem}"


def _names_this_backend(class_path: str) -> bool:
    """True when ``class_path`` is this backend or a subclass of it (imported only if it looks like one)."""
    if class_path == BACKEND_PATH:
        return True
    module_name, _, attribute = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except Exception:  # a backend that does not import is Airflow's error to report
        return False
    return isinstance(cls, type) and issubclass(cls, TokenStoreBackend)


# -- discovery for hooks ---------------------------------------------------------------------------

# Discovery result per process: {"backend": TokenStoreBackend | None} once looked up.
_configured: dict[str, TokenStoreBackend | None] = {}
_configured_mutex = threading.Lock()


def _airflow_instance() -> TokenStoreBackend | None:
    """The TokenStoreBackend among the backends Airflow loaded for this process, if any."""
    try:
        from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

        backends = ensure_secrets_backend_loaded()
    except Exception:  # fall back to building one from the same configuration
        log.debug("could not load Airflow's secrets backends; building the token store one", exc_info=True)
        return None
    return next((b for b in backends if isinstance(b, TokenStoreBackend)), None)


def find_configured_backend() -> TokenStoreBackend | None:
    """The TokenStoreBackend configured for this process (Airflow's own instance where possible), cached.

    Cheap when none is configured: two configuration reads, no import of other backends.
    """
    if "backend" in _configured:
        return _configured["backend"]
    with _configured_mutex:
        if "backend" not in _configured:
            setting = _airflow_config.backend_setting(not _airflow_config.is_server_process())
            backend = None
            if setting is not None and _names_this_backend(setting.class_path):
                backend = _airflow_instance() or TokenStoreBackend.from_config()
            _configured["backend"] = backend
        return _configured["backend"]


def forget_configured_backend() -> None:
    """Drop the cached discovery result (tests; after changing the configuration in a live process)."""
    with _configured_mutex:
        _configured.clear()
    with _WARNED_MUTEX:
        _WARNED.clear()


def resolve_token_store(config: AuthConfig) -> TokenStore:
    """The token store a hook keeps ``config``'s token state in.

    In order: the connection's ``oauth_settings_location`` (key: the backend's, else ``[core] fernet_key``),
    the configured backend's store, the default sqlite file ``$AIRFLOW_HOME/oauth_tokens.db`` with
    ``[core] fernet_key``. Raises TokenStoreError saying what to do when no key is available or the
    backend's store is broken (naming the backend's failure).
    """
    from dropbox_box_provider.store.factory import open_store

    backend = find_configured_backend()
    if config.oauth_settings_location:
        if backend is not None and backend.connections_only_from_store:
            backend.check_store(config.conn_id)
        key = backend.key if backend is not None else _airflow_config.fernet_key()
        return open_store(config.oauth_settings_location, _require_key(key, config))
    if backend is not None:
        if backend.last_failure is not None or backend.connections_only_from_store:
            return backend.check_store(config.conn_id)
        return backend.token_store()
    return open_store(_default_token_store(), _require_key(_airflow_config.fernet_key(), config))


def _default_token_store() -> str | None:
    """``[dropbox_box] token_store`` (None: the sqlite file in AIRFLOW_HOME)."""
    from dropbox_box_provider.provider_config import default_token_store

    return default_token_store()


def _require_key(key: str | None, config: AuthConfig) -> str:
    if key:
        return key
    from dropbox_box_provider.store.crypto import GENERATE_KEY_HINT

    raise TokenStoreError(
        "no encryption key is configured: set [core] fernet_key or the backend's key (the token store of "
        f"connection {config.conn_id!r} needs one: AIRFLOW__CORE__FERNET_KEY, or the token store secrets "
        f"backend's `key` kwarg); {GENERATE_KEY_HINT}"
    )
