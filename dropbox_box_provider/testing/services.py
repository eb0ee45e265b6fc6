"""``emulated_services()``: the Dropbox + Box emulator in a server thread, with ready-made connections.

One object per running emulator: its ``url``, four authorized connections (Dropbox OAuth, Box OAuth, Box JWT,
Box CCG) whose tokens live in a temporary sqlite token store, the environment a subprocess such as
``airflow dags test`` needs to use them, and helpers to arrange files, lifetimes, expiries and faults and to
read the emulator's counters. Nothing heavy is imported until the services start.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.emulator.client import EmulatorClient
    from dropbox_box_provider.emulator.state import EmulatorState
    from dropbox_box_provider.store.base import TokenStore

#: Connection ids of the ready-made connections (the hooks' defaults for Dropbox and Box OAuth).
DROPBOX_CONN_ID = "dropbox_default"
BOX_CONN_ID = "box_default"
BOX_JWT_CONN_ID = "box_jwt"
BOX_CCG_CONN_ID = "box_ccg"

#: The secrets backend that keeps every connection's token state in the kit's store.
BACKEND_PATH = "dropbox_box_provider.secrets.token_store.TokenStoreBackend"

#: Fault routes (globs over the emulator's host-prefixed paths) of each service's file API. The token
#: endpoints are left out, so a storm slows the files down without making authorization impossible.
API_ROUTES = {
    "dropbox": "/*.dropboxapi.com/2/*",
    "box": "/*.box.com/*2.0/*",
}
#: Where a hook's small Dropbox uploads go: the route ``too_many_write_operations`` is answered on.
DROPBOX_WRITE_ROUTE = "/content.dropboxapi.com/2/files/upload*"


def _subtract(total: Any, part: Any) -> Any:
    """``total - part`` for the emulator's nested stats (dicts of counts)."""
    if isinstance(total, dict):
        return {key: _subtract(value, (part or {}).get(key, 0 if not isinstance(value, dict) else {}))
                for key, value in total.items()}  # fmt: skip
    return total - (part or 0)


def _add(total: Any, part: Any) -> Any:
    if isinstance(part, dict):
        base = dict(total or {})
        for key, value in part.items():
            base[key] = _add(base.get(key, 0 if not isinstance(value, dict) else {}), value)
        return base
    return (total or 0) + part


def _nonzero(counts: Mapping[str, Any]) -> dict[str, Any]:
    """Nested counts with the zeros (and then empty groups) left out."""
    result: dict[str, Any] = {}
    for key, value in counts.items():
        if isinstance(value, Mapping):
            inner = _nonzero(value)
            if inner:
                result[key] = inner
        elif value:
            result[key] = value
    return result


class EmulatedServices:
    """A running emulator with four authorized connections on a temporary, encrypted sqlite token store.

    Use it from ``emulated_services()`` (or the pytest plugin's fixture). ``environ()`` is what any process
    needs to use the connections; ``apply_environ()`` sets it in this one. Arrange with ``put_file``,
    ``set_token_lifetimes``, ``expire_tokens`` and the fault helpers; check with ``read_file``, ``requests``,
    ``grants`` and ``refreshes`` (counters leave out the kit's own setup calls); ``reset()`` starts over.
    """

    def __init__(self, data_dir: Path, state: EmulatorState, url: str, client: EmulatorClient) -> None:
        from cryptography.fernet import Fernet

        self.url = url
        self.client = client
        self.data_dir = data_dir
        self._state = state
        self._key = Fernet.generate_key().decode()
        store_path = data_dir / "oauth_tokens.db"
        os.close(os.open(store_path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.store_url = f"sqlite:///{store_path}"
        self._setup_counts: dict[str, Any] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"EmulatedServices(url={self.url!r})"

    # -- connections -------------------------------------------------------------------------------

    @property
    def box_jwt_config(self) -> Path:
        """The Box JWT app's config JSON (its private key; mode 0600), as Box's developer console gives it."""
        from dropbox_box_provider.emulator.seed import BOX_JWT_CONFIG_NAME

        return self.data_dir / BOX_JWT_CONFIG_NAME

    def connection_definitions(self) -> dict[str, dict[str, Any]]:
        """The ready-made connections as JSON-able dicts (``AIRFLOW_CONN_<ID>`` JSON form), by conn id."""
        from dropbox_box_provider.emulator import seed

        return {
            DROPBOX_CONN_ID: {
                "conn_type": "dropbox",
                "host": self.url,
                "login": seed.DEMO_DROPBOX_CLIENT_ID,
                "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
                "extra": {"initiate_oauth": "REFRESH"},
            },
            BOX_CONN_ID: {
                "conn_type": "box_oauth",
                "host": self.url,
                "login": seed.DEMO_BOX_CLIENT_ID,
                "password": seed.DEMO_BOX_CLIENT_SECRET,
                "extra": {
                    "auth_scheme": "oauth",
                    "initiate_oauth": "REFRESH",
                    "callback_url": seed.DEMO_REDIRECT_URIS[1],
                },
            },
            BOX_JWT_CONN_ID: {
                "conn_type": "box_oauth",
                "host": self.url,
                "extra": {
                    "auth_scheme": "jwt",
                    "jwt_cert": str(self.box_jwt_config),
                    "jwt_cert_type": "JSONFILE",
                },
            },
            BOX_CCG_CONN_ID: {
                "conn_type": "box_oauth",
                "host": self.url,
                "login": seed.DEMO_BOX_CCG_CLIENT_ID,
                "password": seed.DEMO_BOX_CCG_CLIENT_SECRET,
                "extra": {
                    "auth_scheme": "ccg",
                    "subject_type": "enterprise",
                    "subject_id": seed.DEMO_BOX_ENTERPRISE_ID,
                },
            },
        }

    @property
    def conn_ids(self) -> list[str]:
        """Ids of the ready-made connections."""
        return list(self.connection_definitions())

    def connection(self, conn_id: str) -> Connection:
        """A ready-made connection as an ``airflow.sdk.Connection``."""
        from airflow.sdk import Connection

        definition = self.connection_definitions()[conn_id]
        return Connection(
            conn_id=conn_id,
            conn_type=definition["conn_type"],
            host=definition.get("host"),
            login=definition.get("login"),
            password=definition.get("password"),
            extra=json.dumps(definition.get("extra") or {}),
        )

    @property
    def connections(self) -> dict[str, Connection]:
        """Every ready-made connection as an ``airflow.sdk.Connection``, by conn id."""
        return {conn_id: self.connection(conn_id) for conn_id in self.connection_definitions()}

    def connection_environ(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` values (JSON) of the ready-made connections."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(definition)
                for conn_id, definition in self.connection_definitions().items()}  # fmt: skip

    def environ(self) -> dict[str, str]:
        """Everything a process needs to use the connections: the ``AIRFLOW_CONN_*`` values and the token
        store secrets backend (store URL and key), e.g. ``subprocess.run(..., env={**os.environ, **env})``.

        The values hold the store's encryption key: pass them to processes, never print them.
        """
        return {
            **self.connection_environ(),
            "AIRFLOW__SECRETS__BACKEND": BACKEND_PATH,
            "AIRFLOW__SECRETS__BACKEND_KWARG__STORE": self.store_url,
            "AIRFLOW__SECRETS__BACKEND_KWARG__KEY": self._key,
        }

    @contextlib.contextmanager
    def apply_environ(self) -> Iterator[dict[str, str]]:
        """Set ``environ()`` in this process (hooks, ``dag.test()``) and restore the previous values after."""
        values = self.environ()
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        _forget_process_caches()
        try:
            yield values
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _forget_process_caches()

    # -- tokens ------------------------------------------------------------------------------------

    @property
    def token_store(self) -> TokenStore:
        """The kit's token store (where every ready-made connection's tokens live)."""
        from dropbox_box_provider.store.factory import open_store

        return open_store(self.store_url, self._key)

    def auth_config(self, conn_id: str) -> AuthConfig:
        """The parsed auth settings of a ready-made connection."""
        from dropbox_box_provider.auth.config import AuthConfig

        return AuthConfig.from_connection(_Definition(conn_id, self.connection_definitions()[conn_id]))

    def oauth_tokens(self, service: str, user_id: str | None = None) -> TokenSet:
        """A fresh user grant of the demo app of ``service``: the emulator's consent (as if a person clicked
        Allow), then the real authorization-code exchange. ``user_id`` picks the Box user."""
        from dropbox_box_provider.emulator import seed

        config = self.auth_config(DROPBOX_CONN_ID if service == "dropbox" else BOX_CONN_ID)
        return user_grant(
            self.client,
            service,
            str(config.client_id),
            config.client_secret,
            redirect_uri=seed.DEMO_REDIRECT_URIS[1],
            user_id=user_id or (seed.DEMO_BOX_USER_ID if service == "box" else None),
        )

    def authorize(self, conn_id: str | None = None) -> None:
        """Authorize the OAuth connections (or one) again, as ``dropbox-box-auth authorize`` would: a new
        grant saved in the store. JWT and CCG connections need no person: their tokens are forgotten. Without
        ``conn_id`` every other connection's token state in the store is dropped too."""
        with self._lock, self._as_setup():
            manager, store = self._manager(), self.token_store
            for cid in [conn_id] if conn_id else {*self.conn_ids, *store.iter_conn_ids()}:
                store.delete(cid)
                manager.forget(cid)
                if cid in (DROPBOX_CONN_ID, BOX_CONN_ID):
                    service = "dropbox" if cid == DROPBOX_CONN_ID else "box"
                    manager.store_tokens(cid, self.auth_config(cid), self.oauth_tokens(service))

    def set_token_lifetimes(
        self,
        access_token: float | None = None,
        refresh_token: float | None = None,
        *,
        service: str | None = None,
        reauthorize: bool = True,
    ) -> None:
        """Seconds the emulator's tokens live from now on (``service``: only Dropbox's or Box's access
        tokens). ``reauthorize`` gives the ready-made connections new tokens that have these lifetimes."""
        lifetimes: dict[str, Any] = {"refresh_token_ttl": refresh_token}
        lifetimes[f"{service}_access_token_ttl" if service else "access_token_ttl"] = access_token
        self.client.configure(**lifetimes)
        if reauthorize:
            for conn_id in self.conn_ids:  # the test's own connections keep their tokens
                self.authorize(conn_id)

    def expire_tokens(self, service: str | None = None) -> int:
        """Expire every access token (of ``service``) now, at the emulator and in the store, as when a token
        ran out: the next call of each connection refreshes once. Returns how many the emulator expired."""
        expired = self.client.expire_access_tokens(service)
        manager = self._manager()
        for conn_id, definition in self.connection_definitions().items():
            conn_service = "dropbox" if definition["conn_type"] == "dropbox" else "box"
            if service in (None, conn_service):
                mark_expired(self.token_store, conn_id)
                manager.forget(conn_id)
        return expired

    # -- files -------------------------------------------------------------------------------------

    def _account(self, service: str, account: str | None) -> tuple[str, str]:
        from dropbox_box_provider.emulator import seed

        accounts = {
            "dropbox": ("dropbox", seed.DEMO_DROPBOX_ACCOUNT_ID),
            DROPBOX_CONN_ID: ("dropbox", seed.DEMO_DROPBOX_ACCOUNT_ID),
            "box": ("box", seed.DEMO_BOX_USER_ID),
            BOX_CONN_ID: ("box", seed.DEMO_BOX_USER_ID),
            BOX_JWT_CONN_ID: ("box", seed.DEMO_BOX_JWT_SERVICE_ACCOUNT_ID),
            BOX_CCG_CONN_ID: ("box", seed.DEMO_BOX_CCG_SERVICE_ACCOUNT_ID),
        }
        if service not in accounts:
            raise ValueError(f"unknown service {service!r}: use 'dropbox', 'box' or a ready-made conn id")
        found_service, default = accounts[service]
        return found_service, account or default

    def put_file(self, service: str, path: str, data: bytes | str, *, account: str | None = None) -> None:
        """Place a file on ``service`` ("dropbox", "box", or a conn id for the account it acts as), creating
        folders and replacing any file there. Not counted, never faulted."""
        from dropbox_box_provider.testing import files

        found, account_id = self._account(service, account)
        content = data.encode() if isinstance(data, str) else data
        files.put_file(self._state, found, account_id, path, content)

    def read_file(self, service: str, path: str, *, account: str | None = None) -> bytes:
        """The bytes of a file on ``service`` (NotFound when none). Not counted, never faulted."""
        from dropbox_box_provider.testing import files

        found, account_id = self._account(service, account)
        return files.read_file(self._state, found, account_id, path)

    def list_files(self, service: str, folder: str = "/", *, account: str | None = None) -> list[str]:
        """Paths of every file below ``folder`` on ``service``, sorted."""
        from dropbox_box_provider.testing import files

        found, account_id = self._account(service, account)
        return files.list_files(self._state, found, account_id, folder)

    # -- faults ------------------------------------------------------------------------------------

    def inject_fault(self, route: str, **fault: Any) -> None:
        """Arm a fault for the next requests whose host-prefixed path matches the glob ``route`` (see
        ``EmulatorClient.fault``: status, retry_after, delay, drop, drop_after, count, error)."""
        self.client.fault(route, **fault)

    def _route(self, service: str, route: str | None) -> str:
        if route is not None:
            return route
        if service not in API_ROUTES:
            raise ValueError(f"unknown service {service!r}: use 'dropbox' or 'box'")
        return API_ROUTES[service]

    def rate_limit(
        self, service: str, count: int = 5, retry_after: int = 1, route: str | None = None
    ) -> None:
        """A 429 storm: the next ``count`` file-API calls of ``service`` answer 429 with Retry-After."""
        self.client.fault(self._route(service, route), status=429, retry_after=retry_after, count=count)

    def server_errors(
        self, service: str, count: int = 3, status: int = 503, route: str | None = None
    ) -> None:
        """The next ``count`` file-API calls of ``service`` answer ``status`` (a 5xx)."""
        self.client.fault(self._route(service, route), status=status, count=count)

    def delay(self, service: str, seconds: float, count: int = 1, route: str | None = None) -> None:
        """The next ``count`` file-API calls of ``service`` wait ``seconds`` before being served."""
        self.client.fault(self._route(service, route), delay=seconds, count=count)

    def drop_connections(
        self, service: str, count: int = 1, *, after_acting: bool = False, route: str | None = None
    ) -> None:
        """Close the connection of the next ``count`` calls without an answer; ``after_acting`` lets the
        service act first (the answer is lost: retries must find their own work already done)."""
        self.client.fault(self._route(service, route), drop=True, drop_after=after_acting, count=count)

    def too_many_write_operations(self, count: int = 1, route: str = DROPBOX_WRITE_ROUTE) -> None:
        """Dropbox's namespace write-lock error (409 ``too_many_write_operations``) for the next writes."""
        self.client.fault(route, error="too_many_write_operations", count=count)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.client.clear_faults()

    # -- counters ----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The emulator's counters per service (requests, token grants per type and outcome, routes per
        status) without the kit's own setup calls."""
        return _subtract(self.client.stats(), self._setup_counts)  # type: ignore[no-any-return]

    def requests(self, service: str) -> dict[str, dict[str, int]]:
        """Requests per route of ``service``: {route: {status: count}} (non-zero only)."""
        return _nonzero(self.stats()[service]["routes"])

    def request_count(self, service: str, route: str | None = None, status: int | None = None) -> int:
        """How many requests ``service`` answered (on ``route`` exactly, with ``status``)."""
        total = 0
        for name, counts in self.stats()[service]["routes"].items():
            if route is None or name == route:
                total += sum(n for code, n in counts.items() if status is None or code == str(status))
        return total

    def grants(self, service: str) -> dict[str, dict[str, int]]:
        """Token-endpoint answers of ``service`` per grant type and outcome (non-zero only)."""
        return _nonzero(self.stats()[service]["token"])

    def refreshes(self, service: str | None = None) -> int:
        """Successful refresh-token grants (of ``service``)."""
        stats = self.stats()
        services = [service] if service else list(API_ROUTES)
        return sum(int(stats[s]["token"].get("refresh_token", {}).get("ok", 0)) for s in services)

    # -- lifecycle ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start: no files, no faults, default lifetimes, zero counters, connections authorized
        again with new tokens."""
        with self._lock:
            self.client.reset()
            self._setup_counts = {}
            self.authorize()

    @contextlib.contextmanager
    def _as_setup(self) -> Iterator[None]:
        """Leave what happens inside out of the counters (the kit's own consent and code exchanges)."""
        before = self.client.stats()
        try:
            yield
        finally:
            self._setup_counts = _add(self._setup_counts, _subtract(self.client.stats(), before))

    def _manager(self) -> TokenManager:
        """The process's TokenManager of the kit's store (the one hooks use), so its cache stays true."""
        from dropbox_box_provider.hooks.base import manager_for

        return manager_for(self.token_store)

    def close(self) -> None:
        """Forget this store's cached state in the process (the thread and files go with the context)."""
        from dropbox_box_provider.store.factory import forget_open_stores

        self.client.close()
        forget_open_stores()


class _Definition:
    """A connection definition with the attributes ``AuthConfig.from_connection`` reads."""

    def __init__(self, conn_id: str, definition: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.conn_type = definition.get("conn_type")
        self.host = definition.get("host")
        self.login = definition.get("login")
        self.password = definition.get("password")
        self.extra_dejson = copy.deepcopy(dict(definition.get("extra") or {}))
        self.extra = json.dumps(self.extra_dejson)


def user_grant(
    client: EmulatorClient,
    service: str,
    client_id: str,
    client_secret: str | None,
    *,
    redirect_uri: str | None = None,
    user_id: str | None = None,
) -> TokenSet:
    """Tokens of a user grant at the emulator behind ``client``: its consent stands in for the person
    clicking Allow, then the real authorization-code exchange (Dropbox: offline access; no ``redirect_uri``:
    Dropbox's no-redirect flow)."""
    from dropbox_box_provider.auth import flows
    from dropbox_box_provider.auth.config import AuthConfig

    config = AuthConfig(
        service=service,  # type: ignore[arg-type]
        client_id=client_id,
        client_secret=client_secret,
        endpoint=client.base_url,
        callback_url=redirect_uri,
    )
    code = client.authorize(
        service,
        client_id,
        redirect_uri=redirect_uri,
        user_id=user_id,
        token_access_type="offline" if service == "dropbox" else None,
    )
    return flows.exchange_code(config, code, callback_url=redirect_uri)


def mark_expired(store: TokenStore, conn_id: str) -> bool:
    """Mark the stored access token of ``conn_id`` expired (a compare-and-swap write, no lease); False when
    the store holds no tokens for it."""
    record = store.read(conn_id)
    if record is None:
        return False
    store.write(
        conn_id,
        record.service,
        {**record.payload, "expires_at": 0.0},
        expected_version=record.version,
        expires_at=0.0,
        refresh_issued_at=record.refresh_issued_at,
        seed_fingerprint=record.seed_fingerprint,
    )
    return True


def _forget_process_caches() -> None:
    """Drop what this process cached from the previous configuration (backend discovery, open stores)."""
    from dropbox_box_provider.secrets.token_store import forget_configured_backend

    forget_configured_backend()


@contextlib.contextmanager
def emulated_services() -> Iterator[EmulatedServices]:
    """Start the emulator in a thread on a free 127.0.0.1 port with authorized connections; stop it after.

    Processes reach it over loopback: pass ``services.environ()`` to ``airflow dags test`` and the like, or
    use ``services.apply_environ()`` for hooks and ``dag.test()`` in this process.
    """
    from dropbox_box_provider.emulator.client import EmulatorClient
    from dropbox_box_provider.emulator.seed import apply_seed
    from dropbox_box_provider.emulator.server import run_in_thread
    from dropbox_box_provider.emulator.state import EmulatorState

    data_dir = Path(tempfile.mkdtemp(prefix="dropbox-box-testing-"))
    try:
        state = EmulatorState()
        apply_seed(state, "demo", data_dir)
        with run_in_thread(seed=None, state=state) as url:
            services = EmulatedServices(data_dir, state, url, EmulatorClient(url))
            try:
                services.authorize()
                yield services
            finally:
                services.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
