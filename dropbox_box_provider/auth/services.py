"""Dropbox and Box endpoint tables, the endpoint override rule, and HTTP error -> typed error mapping."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from dropbox_box_provider.errors import (
    AuthConfigError,
    DropboxBoxError,
    NotFound,
    PreconditionFailed,
    RateLimited,
    ReauthorizationRequired,
    ServiceError,
)

if TYPE_CHECKING:  # the field table (auth/config.py) loads with the first connection, not with this module
    from dropbox_box_provider.auth.config import AuthConfig, Service

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant name, not a secret
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_CLIENT_CREDENTIALS = "client_credentials"

# The JWT audience is the real token URL even when requests go to an emulator or proxy.
BOX_JWT_AUDIENCE = "https://api.box.com/oauth2/token"

_MAX_TEXT = 300


@dataclass(frozen=True)
class ServiceEndpoints:
    """The real URLs of one service; ``resolve_url`` rewrites them for an endpoint override."""

    service: Service
    display_name: str
    authorize_url: str
    token_url: str
    revoke_url: str
    api_base: str
    content_base: str
    download_host: str | None = None

    @property
    def hosts(self) -> frozenset[str]:
        """Every real host name of the service (authorize page, API, uploads, downloads)."""
        urls = (self.authorize_url, self.token_url, self.api_base, self.content_base, self.download_host)
        return frozenset(urlsplit(url).hostname or "" for url in urls if url)


DROPBOX = ServiceEndpoints(
    service="dropbox",
    display_name="Dropbox",
    authorize_url="https://www.dropbox.com/oauth2/authorize",
    token_url="https://api.dropboxapi.com/oauth2/token",  # noqa: S106 - a URL
    revoke_url="https://api.dropboxapi.com/2/auth/token/revoke",
    api_base="https://api.dropboxapi.com/2",
    content_base="https://content.dropboxapi.com/2",
)

BOX = ServiceEndpoints(
    service="box",
    display_name="Box",
    authorize_url="https://account.box.com/api/oauth2/authorize",
    token_url="https://api.box.com/oauth2/token",  # noqa: S106 - a URL
    revoke_url="https://api.box.com/oauth2/revoke",
    api_base="https://api.box.com/2.0",
    content_base="https://upload.box.com/api/2.0",
    download_host="https://dl.boxcloud.com",
)

ENDPOINTS: dict[str, ServiceEndpoints] = {"dropbox": DROPBOX, "box": BOX}


def endpoints_for(service: str) -> ServiceEndpoints:
    """The endpoint table of ``service`` ("dropbox" or "box")."""
    try:
        return ENDPOINTS[service]
    except KeyError:
        raise AuthConfigError([f"unknown service {service!r}: use 'dropbox' or 'box'"]) from None


def resolve_url(config_or_endpoint: AuthConfig | str | None, real_url: str) -> str:
    """Apply the endpoint override: ``https://<host>/<path>`` -> ``<endpoint>/<host>/<path>``.

    With no override (None or empty) the real URL is returned unchanged.
    """
    if config_or_endpoint is None or isinstance(config_or_endpoint, str):
        endpoint, conn_id = config_or_endpoint, None
    else:
        endpoint = config_or_endpoint.endpoint
        conn_id = config_or_endpoint.conn_id
    if not endpoint or not endpoint.strip():
        return real_url
    base = urlsplit(endpoint.strip())
    if base.scheme not in ("http", "https") or not base.netloc or base.query or base.fragment:
        raise AuthConfigError(
            [
                f"Host {endpoint!r} is not a usable endpoint override: give a base URL such as "
                "'http://127.0.0.1:8765' (scheme and host, no query), "
                "or leave Host empty for the real service"
            ],
            conn_id,
        )
    real = urlsplit(real_url)
    target = f"{base.scheme}://{base.netloc}{base.path.rstrip('/')}/{real.netloc}{real.path}"
    return f"{target}?{real.query}" if real.query else target


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """The ``Retry-After`` hint in seconds (delta-seconds or HTTP-date), or None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class ErrorDetails:
    """What an error response says, read defensively: OAuth error, API code and a human summary."""

    oauth_error: str | None = None
    description: str | None = None
    code: str | None = None
    summary: str | None = None
    retry_after: float | None = None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dropbox_tag_path(error: object) -> str | None:
    """``{".tag": "path", "path": {".tag": "not_found"}}`` -> ``path/not_found``."""
    parts: list[str] = []
    node = error
    while isinstance(node, dict) and len(parts) < 8:
        tag = node.get(".tag")
        if not isinstance(tag, str) or not tag:
            break
        parts.append(tag)
        node = node.get(tag)
    return "/".join(parts) or None


def dropbox_error_details(response: httpx.Response) -> ErrorDetails:
    """Dropbox: OAuth ``error``/``error_description`` or API ``error_summary`` + structured ``error``."""
    body = _json_object(response)
    if body is None:
        return ErrorDetails()
    error = body.get("error")
    if isinstance(error, str):
        return ErrorDetails(oauth_error=error, description=_text(body.get("error_description")), code=error)
    # error_summary ends in a varying run of dots/slashes that carries no meaning: display it, never parse it.
    summary = _text(body.get("error_summary"))
    code = _dropbox_tag_path(error)
    if code is None and isinstance(error, dict):
        code = _dropbox_tag_path(error.get("reason"))
    if code is None and summary:
        code = summary.split("/", 1)[0] or None
    retry_after = None
    if isinstance(error, dict):
        hint = error.get("retry_after")
        if isinstance(hint, (int, float)) and not isinstance(hint, bool) and 0 <= hint < 86400:
            retry_after = float(hint)
    return ErrorDetails(code=code, summary=summary.rstrip("/.") if summary else None, retry_after=retry_after)


WRITE_CONTENTION = "too_many_write_operations"
# Dropbox 401 tags naming a bad team member id in Dropbox-API-Select-User / -Select-Admin (not a token fault).
SELECT_ERRORS = {
    "invalid_select_user": ("Dropbox-API-Select-User", "select_user"),
    "invalid_select_admin": ("Dropbox-API-Select-Admin", "select_admin"),
}


def is_write_contention(response: httpx.Response) -> bool:
    """Dropbox's 409 ``too_many_write_operations`` (nested in write, delete and finish errors): concurrent
    writers were refused before anything was written, so the request may be resent like a 429."""
    if response.status_code != 409:
        return False
    try:
        details = dropbox_error_details(response)
    except httpx.ResponseNotRead:
        return False
    tags = {*(details.code or "").split("/"), *(details.summary or "").split("/")}
    return WRITE_CONTENTION in tags


def box_error_details(response: httpx.Response) -> ErrorDetails:
    """Box: OAuth ``error``/``error_description`` or API ``code``/``message``."""
    body = _json_object(response)
    if body is None:
        return ErrorDetails()
    error = body.get("error")
    if isinstance(error, str):
        return ErrorDetails(oauth_error=error, description=_text(body.get("error_description")), code=error)
    return ErrorDetails(code=_text(body.get("code")), summary=_text(body.get("message")))


def error_details(service: str, response: httpx.Response) -> ErrorDetails:
    """The per-service reading of an error body; never raises."""
    return dropbox_error_details(response) if service == "dropbox" else box_error_details(response)


def _clean(text: str | None, redact: Iterable[str]) -> str | None:
    if text is None:
        return None
    for secret in redact:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _required_scope(response: httpx.Response) -> str:
    """The ``required_scope`` of a Dropbox missing_scope error ("the scope the call needs" if absent)."""
    error = (_json_object(response) or {}).get("error")
    scope = error.get("required_scope") if isinstance(error, dict) else None
    return scope if isinstance(scope, str) and scope else "the scope this call needs"


def _where(response: httpx.Response) -> str:
    try:
        return response.request.url.path
    except RuntimeError:
        return "the request"


def error_from_response(
    service: str,
    response: httpx.Response,
    conn_id: str | None = None,
    *,
    grant: str | None = None,
    redact: Iterable[str] = (),
) -> DropboxBoxError:
    """Map a failed HTTP response to the typed error a caller acts on (returned, not raised).

    ``grant`` names the OAuth grant of a token request (it decides what ``invalid_grant`` means);
    ``redact`` lists secrets that must not appear in the message even if the service echoed them.
    """
    spec = endpoints_for(service)
    name = spec.display_name
    redact = tuple(redact)
    details = error_details(service, response)
    status = response.status_code
    description = _clean(details.description, redact)
    summary = _clean(details.summary, redact)
    said = f"{details.oauth_error}: {description}" if description else details.oauth_error

    if status == 429:
        hint = retry_after_seconds(response)
        if hint is None:
            hint = details.retry_after
        wait = f" (it asked to wait {hint:g} s)" if hint is not None else ""
        return RateLimited(
            f"{name} rate-limited {_where(response)} past the retry budget{wait}; "
            "run the task again later or lower its request rate",
            retry_after=hint,
        )

    if details.oauth_error == "invalid_grant":
        if grant == GRANT_JWT_BEARER:
            return AuthConfigError(
                [
                    f"{name} rejected the JWT assertion ({said}): check that jwt_public_key_id names the "
                    "public key added to the app in the Box developer console, that jwt_cert holds its "
                    "private key, that subject_type/subject_id are right, "
                    "and that this machine's clock is correct"
                ],
                conn_id,
            )
        if grant == GRANT_CLIENT_CREDENTIALS:
            return AuthConfigError(
                [
                    f"{name} rejected the client credentials grant ({said}): check subject_type and "
                    "subject_id (the enterprise id, or a user id the app may act as) and that the app is "
                    "authorized in the Box Admin Console"
                ],
                conn_id,
            )
        what = "authorization code" if grant == GRANT_AUTHORIZATION_CODE else "refresh token"
        return ReauthorizationRequired(conn_id, f"{name} rejected the {what} ({said})")

    if details.oauth_error in ("invalid_client", "unauthorized_client"):
        if details.oauth_error == "invalid_client":
            problem = (
                f"{name} rejected the app credentials ({said}): check that Login holds the app's "
                f"{'app key' if service == 'dropbox' else 'client id'} and Password the secret of the same "
                "app (leave Password empty only for a Dropbox PKCE app), and that Host points at the right "
                "service"
            )
        elif service == "box":
            problem = (
                f"{name} does not allow this app to use this grant ({said}): a Box JWT or client-credentials "
                "app must be authorized by an enterprise admin: Admin Console → Integrations → Platform Apps "
                "Manager → Server Authentication Apps → Add App, with the app's Client ID (the Developer "
                "Console's Authorization tab → Review and Submit sends the request). Re-authorize it after "
                "changing the app's scopes or access; also check that subject_id is that enterprise's id and "
                "that the app's authentication method matches auth_scheme"
            )
        else:
            problem = (
                f"{name} does not allow this app to use this grant ({said}): check the app's authentication "
                "method in the developer console"
            )
        return AuthConfigError([problem], conn_id)

    if details.oauth_error == "invalid_scope":
        return AuthConfigError(
            [f"{name} rejected the requested scopes ({said}): fix the connection's scopes"], conn_id
        )

    if status == 401 and service == "dropbox" and details.code in SELECT_ERRORS:
        header, field = SELECT_ERRORS[details.code]
        try:
            member = response.request.headers.get(header)
        except RuntimeError:
            member = None
        return AuthConfigError(
            [
                f"Dropbox does not know the team member id {member!r} sent as {header} "
                f"({details.code}): set the connection's {field} to a member id of this team "
                "(dbmid:…, as team/members/list shows it); the tokens are fine and were kept"
            ],
            conn_id,
        )

    if details.oauth_error:
        return ServiceError(
            f"{name} refused the token request with HTTP {status} ({said})", status, details.oauth_error
        )

    if service == "dropbox" and is_write_contention(response):
        contention = summary or WRITE_CONTENTION
        return ServiceError(
            f"{name} kept answering {_where(response)} with {contention} past the retry budget: other "
            "clients are writing to the same account at the same time; run the task again later or run "
            "fewer writing tasks at once",
            status,
            contention,
        )

    if service == "dropbox" and status == 401 and (details.code or "").split("/")[0] == "missing_scope":
        scope = _required_scope(response)
        return ReauthorizationRequired(
            conn_id,
            f"Dropbox answered HTTP 401 missing_scope to {_where(response)}: the call needs the scope "
            f"{scope}, which this connection's token was not granted. Tick it in the Dropbox App Console "
            "(your app → Permissions tab → Submit) and add it to the connection's scopes if that field is "
            "set; a token keeps the scopes it was granted",
        )

    detail = summary or details.code or response.reason_phrase or "no details"
    if status >= 500:
        advice = f"{name} is having trouble; run the task again later"
    elif status == 401:
        advice = "the access token was not accepted; refresh it or authorize the connection again"
    else:
        advice = "check the request's arguments"
    message = f"{name} answered HTTP {status} to {_where(response)}: {detail}; {advice}"
    if status == 404:
        return NotFound(message, status, details.code)
    if status == 412:
        return PreconditionFailed(message, status, details.code)
    return ServiceError(message, status, details.code)
