"""OAuth flows for Dropbox and Box, one token-endpoint call each: authorize URL, code exchange, refresh,
service tokens (Box JWT / CCG), revoke, and a defensive reading of token responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from dropbox_box_provider.auth import services, transport
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.errors import AuthConfigError, ServiceError, StateMismatch

_EXTRA_FIELDS = ("uid", "team_id")

# Every token request ends within store.lease.TOKEN_REQUEST_DEADLINE (60 s), the time a refresh-lease holder
# keeps renewing: retries stop after 30 s and each attempt has 20 s to answer. Module-level so an
# application or a test can tune them.
RETRY_POLICY = replace(transport.DEFAULT_RETRY_POLICY, total_budget=30.0, max_retry_after=25.0)
TOKEN_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization URL plus what the exchange must repeat: state to check, PKCE verifier, redirect."""

    url: str
    state: str
    code_verifier: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None


def _conn(config: AuthConfig) -> str | None:
    return config.conn_id


def _client_id(config: AuthConfig) -> str:
    if not config.client_id:
        name = "app key" if config.service == "dropbox" else "client id"
        raise AuthConfigError([f"Login is empty: fill in the app's {name}"], config.conn_id)
    return config.client_id


def _redirect_uri(config: AuthConfig, callback_url: str | None) -> str | None:
    """The explicit callback, else the connection's; None means Dropbox's no-redirect flow."""
    uri = callback_url if callback_url is not None else config.callback_url
    return uri or None


def pkce_challenge(verifier: str) -> str:
    """S256 code challenge: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    config: AuthConfig,
    callback_url: str | None = None,
    state: str | None = None,
    scopes: Sequence[str] | None = None,
) -> AuthorizationRequest:
    """Build the URL a person opens to authorize the app, with a fresh 256-bit state and PKCE if needed."""
    client_id = _client_id(config)
    endpoints = services.endpoints_for(config.service)
    redirect_uri = _redirect_uri(config, callback_url)
    state = state or secrets.token_urlsafe(32)
    wanted = tuple(scopes) if scopes is not None else config.scopes
    params: dict[str, str] = {"response_type": "code", "client_id": client_id}
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    params["state"] = state
    verifier: str | None = None
    if config.service == "dropbox":
        params["token_access_type"] = "online" if config.access_type == "online" else "offline"
        if config.is_pkce:
            verifier = secrets.token_urlsafe(64)  # 86 chars, within RFC 7636's 43..128
            params["code_challenge"] = pkce_challenge(verifier)
            params["code_challenge_method"] = "S256"
    if wanted:
        params["scope"] = " ".join(wanted)
    url = services.resolve_url(config, endpoints.authorize_url) + "?" + urlencode(params, quote_via=quote)
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier, redirect_uri=redirect_uri)


def verify_state(expected: str, received: str | None, conn_id: str | None = None) -> None:
    """Constant-time check of the ``state`` returned to the callback; a mismatch raises StateMismatch."""
    if not received or not hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8")):
        raise StateMismatch(conn_id)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _body_problem(service: str, response: httpx.Response, problem: str) -> ServiceError:
    name = services.endpoints_for(service).display_name
    kind = response.headers.get("content-type", "no content type").split(";")[0].strip()
    return ServiceError(
        f"{name}'s token endpoint answered HTTP {response.status_code} with {problem} ({kind}, "
        f"{len(response.content)} bytes); check that the connection's Host points at {name} or its emulator, "
        "then try again",
        response.status_code,
        "malformed_token_response",
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def parse_token_response(
    service: str,
    response: httpx.Response,
    *,
    conn_id: str | None = None,
    grant: str | None = None,
    redact: Iterable[str] = (),
    now: float | None = None,
) -> TokenSet:
    """Turn a token-endpoint response into a TokenSet, or raise the typed error it stands for.

    Never raises KeyError/TypeError/ValueError on odd bodies: non-JSON, HTML pages, wrong types all
    become ServiceError.
    """
    if not 200 <= response.status_code < 300:
        raise services.error_from_response(service, response, conn_id, grant=grant, redact=redact)
    try:
        body: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _body_problem(service, response, "a body that is not JSON") from None
    if not isinstance(body, dict):
        raise _body_problem(service, response, "JSON that is not an object")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token.strip():
        raise _body_problem(service, response, "no access_token")
    refresh_token = body.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        raise _body_problem(service, response, "a refresh_token that is not a string")
    refresh_token = refresh_token or None
    expires_in_raw = body.get("expires_in")
    expires_in = _number(expires_in_raw)
    if expires_in_raw is not None and expires_in is None:
        raise _body_problem(service, response, "an expires_in that is not a non-negative number")
    received = _now(now)
    token_type = body.get("token_type")
    scope = body.get("scope")
    account_id = body.get("account_id") if service == "dropbox" else None
    extra = {
        k: body[k]
        for k in _EXTRA_FIELDS
        if isinstance(body.get(k), (str, int)) and not isinstance(body[k], bool)
    }
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=received + expires_in if expires_in is not None else None,
        refresh_issued_at=received if refresh_token else None,
        obtained_at=received,
        scope=scope if isinstance(scope, str) and scope else None,
        account_id=account_id if isinstance(account_id, str) and account_id else None,
        token_type=token_type.lower() if isinstance(token_type, str) and token_type else "bearer",
        extra=extra,
    )


def _token_request(http: httpx.Client, config: AuthConfig, form: dict[str, str]) -> httpx.Request:
    url = services.resolve_url(config, services.endpoints_for(config.service).token_url)
    return http.build_request(
        "POST", url, data=form, headers={"Accept": "application/json"}, timeout=TOKEN_TIMEOUT
    )


def _client(client: httpx.Client | None) -> httpx.Client:
    return client if client is not None else transport.shared_client()


def exchange_code(
    config: AuthConfig,
    code: str,
    callback_url: str | None = None,
    code_verifier: str | None = None,
    *,
    client: httpx.Client | None = None,
) -> TokenSet:
    """Exchange an authorization code for tokens, repeating the redirect URI the authorization URL used.

    Codes are single-use: the request is only resent when it certainly did not reach the service.
    """
    client_id = _client_id(config)
    code = code.strip() if code else ""
    if not code:
        raise AuthConfigError(
            ["the authorization code is empty: paste the code the service showed"], _conn(config)
        )
    form = {"grant_type": services.GRANT_AUTHORIZATION_CODE, "code": code, "client_id": client_id}
    if code_verifier:
        form["code_verifier"] = code_verifier
    elif config.client_secret:
        form["client_secret"] = config.client_secret
    else:
        raise AuthConfigError(
            [
                "Password (client secret) is empty, so this is a PKCE app: the exchange needs the "
                "code_verifier created with the authorization URL; run `dropbox-box-auth authorize` "
                "to do both in one go"
            ],
            _conn(config),
        )
    redirect_uri = _redirect_uri(config, callback_url)
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    http = _client(client)
    response = transport.send(http, _token_request(http, config, form), single_use=True, policy=RETRY_POLICY)
    return parse_token_response(
        config.service,
        response,
        conn_id=_conn(config),
        grant=services.GRANT_AUTHORIZATION_CODE,
        redact=(code, code_verifier or "", config.client_secret or ""),
    )


def refresh(config: AuthConfig, refresh_token: str, *, client: httpx.Client | None = None) -> TokenSet:
    """Use a refresh token once. Box returns a rotated pair (the old token dies); Dropbox keeps the old one.

    A Box refresh is single-use, so it is resent only when it certainly did not reach Box (transport module).
    """
    client_id = _client_id(config)
    if not refresh_token:
        raise AuthConfigError(
            ["there is no refresh token: authorize the connection first (`dropbox-box-auth authorize`)"],
            _conn(config),
        )
    form = {
        "grant_type": services.GRANT_REFRESH_TOKEN,
        "refresh_token": refresh_token,
        "client_id": client_id,
    }
    if config.client_secret:
        form["client_secret"] = config.client_secret
    rotates = config.service == "box"
    http = _client(client)
    response = transport.send(
        http, _token_request(http, config, form), single_use=rotates, policy=RETRY_POLICY
    )
    tokens = parse_token_response(
        config.service,
        response,
        conn_id=_conn(config),
        grant=services.GRANT_REFRESH_TOKEN,
        redact=(refresh_token, config.client_secret or ""),
    )
    return tokens if rotates else tokens.with_refresh_fallback(refresh_token)


def _ccg_form(config: AuthConfig, client_id: str) -> dict[str, str]:
    problems = []
    if not config.client_secret:
        problems.append("Password (client secret) is empty: client credentials need the app's secret")
    subject_type = config.subject_type or "enterprise"
    if not config.subject_id:
        problems.append(
            "subject_id is empty: give the enterprise id (subject_type 'enterprise') "
            "or a user id (subject_type 'user')"
        )
    if problems:
        raise AuthConfigError(problems, _conn(config))
    assert config.client_secret and config.subject_id
    return {
        "grant_type": services.GRANT_CLIENT_CREDENTIALS,
        "client_id": client_id,
        "client_secret": config.client_secret,
        "box_subject_type": subject_type,
        "box_subject_id": config.subject_id,
    }


def _fetch_jwt_token(config: AuthConfig, client: httpx.Client, clock: Callable[[], float]) -> TokenSet:
    # PyJWT and cryptography's key loading cost ~0.5 s to import: only JWT connections pay for them.
    from dropbox_box_provider.auth import jwt as box_jwt

    settings = box_jwt.resolve_jwt_settings(config)
    offset = 0.0
    for attempt in range(box_jwt.MAX_SKEW_RETRIES + 1):

        def build(offset: float = offset) -> httpx.Request:
            form = {
                "grant_type": services.GRANT_JWT_BEARER,
                "assertion": box_jwt.build_assertion(settings, now=clock() + offset),
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
            }
            return _token_request(client, config, form)

        response = transport.send(client, build, policy=RETRY_POLICY)
        details = services.error_details("box", response)
        retry = (
            attempt < box_jwt.MAX_SKEW_RETRIES
            and response.status_code == 400
            and details.oauth_error == "invalid_grant"
            and box_jwt.is_clock_or_jti_rejection(details.description)
        )
        if not retry:
            return parse_token_response(
                "box",
                response,
                conn_id=_conn(config),
                grant=services.GRANT_JWT_BEARER,
                redact=(settings.client_secret,),
            )
        server_now = box_jwt.server_time(response)
        if server_now is not None:
            offset = server_now - clock()
    raise AssertionError("unreachable: the last attempt always returns or raises")  # pragma: no cover


def fetch_service_token(
    config: AuthConfig,
    *,
    client: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """A Box service token by JWT (``auth_scheme='jwt'``) or client credentials (``'ccg'``); no refresh token.

    ``clock`` is the local clock the JWT claims start from (tests shift it to simulate skew).
    """
    if config.service != "box" or config.auth_scheme not in ("jwt", "ccg"):
        raise AuthConfigError(
            [
                f"service tokens exist for Box auth_scheme 'jwt' or 'ccg' only, not {config.service} "
                f"'{config.auth_scheme}': use oauth (authorize + refresh) for this connection"
            ],
            _conn(config),
        )
    http = _client(client)
    if config.auth_scheme == "jwt":
        return _fetch_jwt_token(config, http, clock)
    form = _ccg_form(config, _client_id(config))
    response = transport.send(http, _token_request(http, config, form), policy=RETRY_POLICY)
    return parse_token_response(
        "box",
        response,
        conn_id=_conn(config),
        grant=services.GRANT_CLIENT_CREDENTIALS,
        redact=(form["client_secret"],),
    )


def revoke(config: AuthConfig, token: str, *, client: httpx.Client | None = None) -> None:
    """Revoke a token. Box: access or refresh token. Dropbox: an access token (it also revokes the refresh
    token it came from); a token Dropbox already considers invalid counts as revoked."""
    if not token:
        raise AuthConfigError(["there is no token to revoke"], _conn(config))
    endpoints = services.endpoints_for(config.service)
    url = services.resolve_url(config, endpoints.revoke_url)
    http = _client(client)
    if config.service == "box":
        form = {"client_id": _client_id(config), "token": token}
        if config.client_secret:
            form["client_secret"] = config.client_secret
        request = http.build_request("POST", url, data=form)
    else:
        request = http.build_request(
            "POST",
            url,
            content=b"null",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    response = transport.send(http, request, policy=RETRY_POLICY)
    if 200 <= response.status_code < 300:
        return
    if (
        config.service == "dropbox"
        and response.status_code == 401
        and services.error_details("dropbox", response).code == "invalid_access_token"
    ):
        return
    raise services.error_from_response(
        config.service, response, _conn(config), redact=(token, config.client_secret or "")
    )
