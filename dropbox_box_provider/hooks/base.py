"""BaseOAuthHook: the Airflow side shared by the Dropbox and Box hooks.

Connection -> AuthConfig, token store and TokenManager, an httpx client whose auth hands out valid tokens
(401 -> refresh once), requests through the provider's one retry policy, the reference connectors' OAuth
procedures, and the connection test.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hmac
import math
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Generator, Iterator
from functools import cached_property
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar, cast

import httpx
from airflow.sdk import BaseHook

from dropbox_box_provider.auth import masking, services
from dropbox_box_provider.auth.fields import CONN_TYPE_SERVICE
from dropbox_box_provider.errors import AuthConfigError, DropboxBoxError, InvalidArgument, TransportError
from dropbox_box_provider.forms import connection_form_widgets, hook_field_behaviour
from dropbox_box_provider.lazy import lazy_module

# What a DAG file never uses while it is parsed loads with the first call (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from dropbox_box_provider.auth import flows, transport
    from dropbox_box_provider.auth.config import AuthConfig, Service
    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.auth.tokens import CachedToken, TokenSet
    from dropbox_box_provider.store.base import TokenStore
else:
    flows = lazy_module("dropbox_box_provider.auth.flows", globals())
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())

# Dropbox 401 tags that a new token cannot cure (everything else on a 401 means "token not accepted").
_NOT_TOKEN_PROBLEMS = frozenset(
    {"missing_scope", "user_suspended", "route_access_denied", "no_permission", *services.SELECT_ERRORS}
)

_MANAGERS: dict[str, TokenManager] = {}
_MANAGERS_LOCK = threading.Lock()

_MASKED: set[str] = set()
_MASKED_LOCK = threading.Lock()
_MASKED_LIMIT = 10_000


def mask_secrets(*values: str | None) -> None:
    """Register secrets with Airflow's masker, once per value per process (the check is a set lookup)."""
    fresh = [v for v in values if v and v not in _MASKED]
    if not fresh:
        return
    from airflow.sdk.log import mask_secret

    with _MASKED_LOCK:
        if len(_MASKED) > _MASKED_LIMIT:
            _MASKED.clear()
        for value in fresh:
            mask_secret(value)
            _MASKED.add(value)


masking.register(
    mask_secrets
)  # secrets the OAuth engine reads from files (Box app config) reach Airflow's masker


def manager_for(store: TokenStore) -> TokenManager:
    """The process's one TokenManager of ``store`` (keyed by its URL), so hooks share the token cache."""
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(store.url)
        if manager is None or manager.store is not store:
            from dropbox_box_provider.auth.manager import TokenManager
            from dropbox_box_provider.provider_config import lease_seconds
            from dropbox_box_provider.store.lease import LeaseSettings

            lease = LeaseSettings(seconds=lease_seconds())
            manager = _MANAGERS[store.url] = TokenManager(store, lease=lease)
        return manager


def token_metadata(
    tokens: TokenSet, *, include_tokens: bool = False, now: float | None = None
) -> dict[str, Any]:
    """What the OAuth procedures return: expiry, account, scope; the token values only when asked for.

    ``expires_in`` is the reference connectors' ExpiresIn, ``access_token``/``refresh_token`` their
    OAuthAccessToken/OAuthRefreshToken.
    """
    expires_in = tokens.expires_in(now)
    result: dict[str, Any] = {
        "expires_in": int(expires_in) if expires_in is not None else None,
        "expires_at": tokens.expires_at,
        "account": tokens.account_id,
        "scope": tokens.scope,
        "token_type": tokens.token_type,
        "has_refresh_token": bool(tokens.refresh_token),
    }
    if include_tokens:
        result["access_token"] = tokens.access_token
        result["refresh_token"] = tokens.refresh_token
    return result


class BearerAuth(httpx.Auth):
    """Puts the hook's valid access token on each request; on a 401 replaces it (one fenced renewal through
    the store, shared by every worker that saw the same 401) and retries once.

    The request body is not buffered: uploads pass re-iterable streams so the one retry can resend them.
    """

    def __init__(self, hook: BaseOAuthHook) -> None:
        self.hook = hook

    def _should_retry(self, response: httpx.Response) -> bool:
        """A 401 about the token (not about the app, the user or the path), on a token that can be renewed."""
        if response.status_code != 401 or self.hook.get_auth_config().uses_static_token:
            return False
        code = services.error_details(self.hook.service, response).code
        return code is None or code.split("/", 1)[0] not in _NOT_TOKEN_PROBLEMS

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sync flow: token from the TokenManager (which may refresh under its locks)."""
        token = self.hook.get_access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            response.read()
            if self._should_retry(response):
                fresh = self.hook.replace_rejected_token(token)
                request.headers["Authorization"] = f"Bearer {fresh.access_token}"
                yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async flow: the trusted cached token, else the same sync TokenManager in a worker thread (one
        refresh implementation)."""
        token = self.hook.cached_access_token()
        if token is None:
            token = await asyncio.to_thread(self.hook.get_access_token)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            if await asyncio.to_thread(self._should_retry, response):
                fresh = await asyncio.to_thread(self.hook.replace_rejected_token, token)
                request.headers["Authorization"] = f"Bearer {fresh.access_token}"
                yield request


class _StreamingSender:
    """Lets ``transport.send`` run its retry loop with ``stream=True``: the body is left unread."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def send(self, request: httpx.Request) -> httpx.Response:
        return self._client.send(request, stream=True)


class _AsyncStreamingSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)


class BaseOAuthHook(BaseHook, abc.ABC):
    """One Dropbox or Box connection: validated auth fields, always-valid tokens, HTTP with retries.

    ``verify_checksums`` (None: the connection's ``verify_checksums`` extra, true by default) decides whether
    transfers are checked against the service's checksum; see ``verify_checksums`` below.

    Subclasses set ``service``, ``conn_type``, ``default_conn_name`` and ``hook_name``, and implement
    ``act_as_headers`` and ``describe_account``.
    """

    conn_name_attr = "conn_id"
    default_conn_name: ClassVar[str] = ""
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""
    service: ClassVar[Service]

    conn_id_keyword: ClassVar[str] = ""

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        retry_policy: transport.RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        verify_checksums: bool | None = None,
        **conn_id_keyword: str | None,
    ) -> None:
        super().__init__()
        self.conn_id = self._conn_id_from(conn_id, conn_id_keyword) or self.default_conn_name
        self.retry_policy = retry_policy or transport.DEFAULT_RETRY_POLICY
        self.timeout = timeout or transport.DEFAULT_TIMEOUT
        if verify_checksums is not None and not isinstance(verify_checksums, bool):
            raise InvalidArgument(
                f"verify_checksums must be True, False or None (the connection's setting), got "
                f"{verify_checksums!r}"
            )
        self._verify_checksums = verify_checksums
        self._auth_config: AuthConfig | None = None
        self._cached_token: CachedToken | None = None
        self._client: httpx.Client | None = None
        self._content_client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def _conn_id_from(cls, conn_id: str | None, keywords: dict[str, str | None]) -> str | None:
        """``conn_id``, or Airflow's conventional keyword (``dropbox_conn_id`` / ``box_conn_id``)."""
        alias = keywords.pop(cls.conn_id_keyword, None) if cls.conn_id_keyword else None
        if keywords:
            raise TypeError(f"{cls.__name__}() got unexpected keyword argument(s) {sorted(keywords)}")
        if conn_id and alias and conn_id != alias:
            raise InvalidArgument(
                f"{cls.__name__} got conn_id={conn_id!r} and {cls.conn_id_keyword}={alias!r}; pass only one"
            )
        return conn_id or alias

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    # ------------------------------------------------------------------ configuration and tokens

    def get_auth_config(self) -> AuthConfig:
        """The connection's parsed auth fields (read once per hook); secrets are registered for masking."""
        if self._auth_config is None:
            from dropbox_box_provider.auth.config import AuthConfig
            from dropbox_box_provider.provider_config import default_refresh_margin
            from dropbox_box_provider.store.urls import url_secrets

            connection = self.get_connection(self.conn_id)
            self._check_conn_type(getattr(connection, "conn_type", None))
            config = AuthConfig.from_connection(
                connection, service=self.service, default_refresh_margin=default_refresh_margin()
            )
            secrets = list(config.secrets_to_mask())
            if config.oauth_settings_location:
                secrets += url_secrets(config.oauth_settings_location)
            mask_secrets(*secrets)
            self._auth_config = config
        return self._auth_config

    @property
    def verify_checksums(self) -> bool:
        """True (the default) when transfers are checked against the service's checksum (Dropbox
        content_hash, Box SHA-1): the hook's ``verify_checksums=`` when given, else the connection's extra.

        False skips the hashing the service does not require, saving its CPU time: sizes are still checked
        (a short download raises), but corruption that keeps the size goes unnoticed."""
        if self._verify_checksums is not None:
            return self._verify_checksums
        return self.get_auth_config().verify_checksums

    def _check_conn_type(self, conn_type: str | None) -> None:
        """A connection of the other service's type fails here, naming the type and the right hook."""
        other = CONN_TYPE_SERVICE.get((conn_type or "").strip().lower())
        if other is not None and other != self.service:
            right = "BoxHook" if other == "box" else "DropboxHook"
            raise AuthConfigError(
                [
                    f"connection type {conn_type!r} is a {services.endpoints_for(other).display_name} "
                    f"connection, but {type(self).__name__} needs type {self.conn_type!r}: use {right} for "
                    "it, or point this hook at a connection of the right type"
                ],
                self.conn_id,
            )

    @cached_property
    def token_store(self) -> TokenStore:
        """The store holding this connection's tokens (connection setting, secrets backend, or default)."""
        from dropbox_box_provider.secrets.token_store import resolve_token_store

        return resolve_token_store(self.get_auth_config())

    @cached_property
    def token_manager(self) -> TokenManager:
        """The process-wide TokenManager of this hook's store."""
        return manager_for(self.token_store)

    def get_token_set(self) -> TokenSet:
        """A TokenSet valid beyond the connection's refresh margin (refreshed once per expiry if needed)."""
        config = self.get_auth_config()
        if config.uses_static_token and not config.access_token:
            raise AuthConfigError(
                [
                    "InitiateOAuth is OFF and no access token is set: set access_token, or set InitiateOAuth "
                    f"to REFRESH/GETANDREFRESH and authorize with `dropbox-box-auth authorize {self.conn_id}`"
                ],
                self.conn_id,
            )
        if config.uses_static_token:  # used as given: no store, no key, no refresh
            from dropbox_box_provider.auth.tokens import TokenSet

            return TokenSet(access_token=config.access_token or "")
        tokens = self.token_manager.get_valid_token(self.conn_id, config)
        mask_secrets(tokens.access_token, tokens.refresh_token)
        return tokens

    def get_access_token(self) -> str:
        """A valid access token for this connection: while the cached one is trusted (until its expiry minus
        the effective margin, unless a 401 or a refresh expired it) one monotonic compare, else the full
        path through the token manager (store read, lease, refresh)."""
        cached = self._cached_token
        if cached is not None and monotonic() < cached.deadline:
            return cached.access_token
        return self._fetch_access_token()

    def cached_access_token(self) -> str | None:
        """The cached access token while it is trusted, else None (no I/O, no lock)."""
        cached = self._cached_token
        return cached.access_token if cached is not None and monotonic() < cached.deadline else None

    def _fetch_access_token(self) -> str:
        """The full path: a valid token from the manager, kept with its deadline for the next calls."""
        config = self.get_auth_config()
        if config.uses_static_token:
            from dropbox_box_provider.auth.tokens import CachedToken

            cached = CachedToken(self.get_token_set(), math.inf)  # used as given until it is replaced
        else:
            cached = self.token_manager.cached_token(self.conn_id, config)
            mask_secrets(cached.tokens.access_token, cached.tokens.refresh_token)
        self._cached_token = cached
        return cached.access_token

    async def aget_access_token(self) -> str:
        """Async twin of ``get_access_token`` (the trusted cached token, else the sync manager in a worker
        thread)."""
        cached = self.cached_access_token()
        return cached if cached is not None else await asyncio.to_thread(self.get_access_token)

    def replace_rejected_token(self, access_token: str) -> TokenSet:
        """After a 401: tokens other than ``access_token``. The token manager renews them only if the store
        still holds the refused one (else another worker already did), in one fenced store write."""
        config = self.get_auth_config()
        if config.uses_static_token:
            return self.get_token_set()
        self._cached_token = None
        tokens = self.token_manager.replace_rejected(self.conn_id, config, access_token)
        mask_secrets(tokens.access_token, tokens.refresh_token)
        return tokens

    def invalidate_token(self, access_token: str) -> None:
        """After a 401: stop trusting ``access_token`` (in every hook of this connection) and mark it expired
        in the store, so the next ``get_access_token`` uses a newer stored token or refreshes."""
        cached = self._cached_token
        if cached is not None and hmac.compare_digest(cached.access_token, access_token):
            self._cached_token = None
        if self.get_auth_config().uses_static_token:
            return
        self.token_manager.invalidate(self.conn_id, access_token, self.get_auth_config())

    # ------------------------------------------------------------------ HTTP

    def api_url(self, real_url: str) -> str:
        """The URL to call for a real service URL (the connection's Host override applied)."""
        return services.resolve_url(self.get_auth_config(), real_url)

    def act_as_headers(self) -> dict[str, str]:
        """Headers naming whom calls act as (Dropbox team member / namespace, Box As-User); none here."""
        return {}

    def _client_options(self) -> dict[str, Any]:
        return {
            "auth": BearerAuth(self),
            "timeout": self.timeout,
            "headers": {"User-Agent": transport.USER_AGENT, **self.act_as_headers()},
        }

    def get_conn(self) -> httpx.Client:
        """This hook's httpx.Client: bearer auth with 401 refresh, act-as headers, the provider's timeouts."""
        if self._client is None or self._client.is_closed:
            self._client = transport.new_client(**self._client_options())
        return self._client

    def get_content_conn(self) -> httpx.Client:
        """The client for content streams (``stream``): ``get_conn``'s auth, headers and timeouts, the bytes
        moved by urllib3 where it can (``content_transport``: httpcore's read path is the bottleneck)."""
        if self._content_client is None or self._content_client.is_closed:
            from dropbox_box_provider.auth import content_transport  # urllib3 only once a stream is opened

            self._content_client = content_transport.content_client(**self._client_options())
        return self._content_client

    def get_async_conn(self) -> httpx.AsyncClient:
        """This hook's httpx.AsyncClient for the running event loop (a new loop gets a new client)."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_client.is_closed or self._async_loop is not loop:
            self._async_client = transport.new_async_client(**self._client_options())
            self._async_loop = loop
        return self._async_client

    def close(self) -> None:
        """Close the sync client (the async one closes with ``aclose``)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._content_client is not None:
            self._content_client.close()
            self._content_client = None

    async def aclose(self) -> None:
        """Close the async client."""
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    def error_for(self, response: httpx.Response) -> DropboxBoxError:
        """The typed error of a failed response (``services.error_from_response``; subclasses refine it)."""
        return services.error_from_response(
            self.service, response, self.conn_id, redact=self.get_auth_config().secrets_to_mask()
        )

    def _raise_for(self, response: httpx.Response, expected: Collection[int]) -> None:
        if response.status_code not in expected:
            raise self.error_for(response)

    def request(
        self, method: str, real_url: str, *, expected: Collection[int] = (200,), **httpx_kwargs: Any
    ) -> httpx.Response:
        """Send with the retry policy (429/5xx/connection errors) and bearer auth; unexpected status ->
        typed error (``services.error_from_response``). Returns the read response."""
        client = self.get_conn()
        request = client.build_request(method, self.api_url(real_url), **httpx_kwargs)
        response = transport.send(client, request, policy=self.retry_policy)
        self._raise_for(response, expected)
        return response

    async def arequest(
        self, method: str, real_url: str, *, expected: Collection[int] = (200,), **httpx_kwargs: Any
    ) -> httpx.Response:
        """Async twin of ``request``."""
        client = self.get_async_conn()
        request = client.build_request(method, self.api_url(real_url), **httpx_kwargs)
        response = await transport.asend(client, request, policy=self.retry_policy)
        self._raise_for(response, expected)
        return response

    @contextlib.contextmanager
    def stream(
        self, method: str, real_url: str, *, expected: Collection[int] = (200,), **httpx_kwargs: Any
    ) -> Iterator[httpx.Response]:
        """A response whose body is not read yet (downloads). Retries happen only before the body starts;
        a failure while reading the body is the caller's (``read_error`` turns it into TransportError)."""
        client = self.get_content_conn()
        request = client.build_request(method, self.api_url(real_url), **httpx_kwargs)
        sender = cast(httpx.Client, _StreamingSender(client))
        response = transport.send(sender, request, policy=self.retry_policy)
        try:
            if response.status_code not in expected:
                response.read()
                self._raise_for(response, expected)
            yield response
        finally:
            response.close()

    @contextlib.asynccontextmanager
    async def astream(
        self, method: str, real_url: str, *, expected: Collection[int] = (200,), **httpx_kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        """Async twin of ``stream``."""
        client = self.get_async_conn()
        request = client.build_request(method, self.api_url(real_url), **httpx_kwargs)
        sender = cast(httpx.AsyncClient, _AsyncStreamingSender(client))
        response = await transport.asend(sender, request, policy=self.retry_policy)
        try:
            if response.status_code not in expected:
                await response.aread()
                self._raise_for(response, expected)
            yield response
        finally:
            await response.aclose()

    def read_error(self, exc: httpx.HTTPError, what: str, received: int) -> TransportError:
        """The typed error for a body that broke off after ``received`` bytes (not retried: not resumable)."""
        name = services.endpoints_for(self.service).display_name
        return TransportError(
            f"{name} {what} broke off after {received} bytes ({type(exc).__name__}); nothing was kept. "
            "Run the task again",
            code="interrupted",
        )

    # ------------------------------------------------------------------ reference-connector procedures

    def get_authorization_url(self, callback_url: str | None = None) -> dict[str, Any]:
        """GetOAuthAuthorizationURL: the URL a person opens, plus the state and PKCE verifier to keep."""
        request = flows.authorization_url(self.get_auth_config(), callback_url=callback_url)
        return {
            "url": request.url,
            "state": request.state,
            "code_verifier": request.code_verifier,
            "redirect_uri": request.redirect_uri,
        }

    def get_access_token_from_code(
        self,
        code: str,
        callback_url: str | None = None,
        code_verifier: str | None = None,
        *,
        include_tokens: bool = False,
    ) -> dict[str, Any]:
        """GetOAuthAccessToken: exchange an authorization code, store the tokens, return their metadata."""
        config = self.get_auth_config()
        mask_secrets(code, code_verifier)
        tokens = flows.exchange_code(config, code, callback_url=callback_url, code_verifier=code_verifier)
        mask_secrets(tokens.access_token, tokens.refresh_token)
        stored = self.token_manager.store_tokens(self.conn_id, config, tokens)
        return token_metadata(stored, include_tokens=include_tokens)

    def refresh_access_token(
        self, refresh_token: str | None = None, *, include_tokens: bool = False
    ) -> dict[str, Any]:
        """RefreshOAuthAccessToken: a new access token now (through the manager's locks), or from an
        explicitly given refresh token; the result is stored and its metadata returned."""
        config = self.get_auth_config()
        if refresh_token:
            mask_secrets(refresh_token)
            tokens = self.token_manager.refresh_with(self.conn_id, config, refresh_token)
        else:
            tokens = self.token_manager.force_refresh(self.conn_id, config)
        mask_secrets(tokens.access_token, tokens.refresh_token)
        return token_metadata(tokens, include_tokens=include_tokens)

    def revoke(self) -> None:
        """Revoke the connection's grant at the service and drop its stored tokens; a connection definition
        saved in the store stays (the same procedure as ``dropbox-box-auth revoke``)."""
        from dropbox_box_provider.auth.revocation import revoke_grant

        config = self.get_auth_config()
        tokens = None if config.uses_static_token else self.get_token_set()
        revoke_grant(config, self.token_store, self.conn_id, tokens)
        self.token_manager.forget(self.conn_id)

    # ------------------------------------------------------------------ connection test

    @abc.abstractmethod
    def describe_account(self) -> str:
        """Who the token acts as, e.g. ``Demo User <demo@example.com>``; subclasses call their "me" route."""

    def test_connection(self) -> tuple[bool, str]:
        """(ok, message) for the UI's Test button: who we are connected as and the token's expiry. Never
        raises; the message carries no secret."""
        from dropbox_box_provider.wording import duration

        name = services.endpoints_for(self.service).display_name
        try:
            with transport.quick_answer():  # the Test button answers within seconds, DNS failures at once
                who = self.describe_account()
                tokens = self.get_token_set()
            remaining = tokens.expires_in()
            if remaining is None:
                expiry = "the access token has no expiry"
            else:
                expiry = f"the access token is valid for another {duration(remaining)}"
            return True, f"Connected to {name} as {who}; {expiry}"
        except DropboxBoxError as exc:
            return False, self._clean(f"{name} connection test failed: {exc}")
        except Exception as exc:
            return False, self._clean(f"{name} connection test failed: {type(exc).__name__}: {exc}")

    def _clean(self, message: str) -> str:
        secrets: list[str] = list(_MASKED)
        if self._auth_config is not None:
            secrets.extend(self._auth_config.secrets_to_mask())
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 4:
                message = message.replace(secret, "***")
        return message

    # ------------------------------------------------------------------ connection forms

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """WTForms widgets of the extras, for Airflow < 3.2 (it ignores the declarative conn-fields)."""
        return connection_form_widgets(cls.service)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden and relabelled standard fields, in the hook-method (snake_case) shape."""
        return hook_field_behaviour(cls.service)
