"""OAuth HTTP endpoints of both services: consent pages, token endpoints, revocation."""

from __future__ import annotations

import base64
import html
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from dropbox_box_provider.emulator import grants
from dropbox_box_provider.emulator.responses import (
    dropbox_auth_error,
    dropbox_bad_request,
    json_response,
    oauth_error,
)
from dropbox_box_provider.emulator.state import (
    BOX,
    DROPBOX,
    GRANT_CCG,
    GRANT_CODE,
    GRANT_JWT,
    GRANT_REFRESH,
    Account,
    App,
    EmulatorState,
)

AUTHORIZE_PARAMS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "state",
    "scope",
    "token_access_type",
    "include_granted_scopes",
    "force_reapprove",
    "code_challenge",
    "code_challenge_method",
)
DENY_TEXT = {
    DROPBOX: "The user chose not to give your app access to their Dropbox account.",
    BOX: "The user denied access to your application",
}
SERVICE_TITLE = {DROPBOX: "Dropbox", BOX: "Box"}


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    user, _, password = decoded.partition(":")
    return user, password


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status)


def _error_page(service: str, message: str) -> HTMLResponse:
    body = f"<h1>{SERVICE_TITLE[service]}: authorization error</h1><p id='error'>{html.escape(message)}</p>"
    return _page("Authorization error", body, status=400)


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _candidates(state: EmulatorState, app: App) -> list[Account]:
    """Accounts that may click Allow for ``app``."""
    with state.lock:
        accounts = [a for a in state.accounts.values() if a.service == app.service and a.role != "service"]
    if app.service == DROPBOX:
        if app.team:
            return [a for a in accounts if a.team_id is not None and a.role == "admin"]
        return [a for a in accounts if a.team_id is None] or accounts
    return [a for a in accounts if a.enterprise_id == app.enterprise_id] or accounts


def default_user(state: EmulatorState, app: App) -> str | None:
    """Who authorizes when nobody says: the first candidate account."""
    candidates = _candidates(state, app)
    return candidates[0].id if candidates else None


def _validate(state: EmulatorState, service: str, params: Mapping[str, str]) -> tuple[App, str | None] | str:
    """The app and effective redirect URI, or an error message for the error page."""
    client_id = params.get("client_id", "")
    app = grants.find_app(state, service, client_id)
    if app is None:
        return f"Invalid client_id: {client_id!r} is not a registered app."
    if params.get("response_type", "code") != "code":
        return "Invalid response_type: only 'code' is supported."
    redirect_uri = params.get("redirect_uri") or None
    if redirect_uri is not None and redirect_uri not in app.redirect_uris:
        return f"Invalid redirect_uri: {redirect_uri!r} is not registered for this app."
    if redirect_uri is None and service == BOX:
        if not app.redirect_uris:
            return "This app has no redirect URI configured."
        redirect_uri = app.redirect_uris[0]
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method not in (None, "", "S256", "plain"):
        return "Invalid code_challenge_method: use S256."
    return app, redirect_uri


def authorize_page(service: str) -> Callable[[Request], Awaitable[Response]]:
    """GET shows the consent form; POST (Allow/Deny) redirects back or shows the code."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = {key: str(value) for key, value in (await request.form()).items()}
        checked = _validate(state, service, params)
        if isinstance(checked, str):
            return _error_page(service, checked)
        app, redirect_uri = checked
        if request.method == "GET":
            return _consent_form(state, service, app, request.url.path, params)
        decision = params.get("decision", "")
        user_id = params.get("user_id") or default_user(state, app)
        if user_id is None or state.account(service, user_id) is None:
            return _error_page(service, f"Unknown user {user_id!r}.")
        if decision != "allow":
            if redirect_uri is None:
                body = f"<h1>Access denied</h1><p id='denied'>{html.escape(DENY_TEXT[service])}</p>"
                return _page("Access denied", body)
            target = _with_query(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": DENY_TEXT[service],
                    "state": params.get("state"),
                },
            )
            return RedirectResponse(target, status_code=302)
        code = grants.issue_code(
            state,
            service,
            app.client_id,
            user_id,
            redirect_uri if params.get("redirect_uri") or service == BOX else None,
            code_challenge=params.get("code_challenge") or None,
            code_challenge_method=params.get("code_challenge_method") or None,
            scope=params.get("scope") or None,
            token_access_type=params.get("token_access_type") or None,
        )
        if redirect_uri is None:
            body = (
                "<h1>Enter this code into your app</h1>"
                f"<p>Authorization code:</p><code id='code'>{html.escape(code)}</code>"
            )
            return _page("Authorization code", body)
        return RedirectResponse(_with_query(redirect_uri, {"code": code, "state": params.get("state")}), 302)

    return endpoint


def _consent_form(
    state: EmulatorState, service: str, app: App, action: str, params: Mapping[str, str]
) -> HTMLResponse:
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(params[name], quote=True)}'>"
        for name in AUTHORIZE_PARAMS
        if params.get(name)
    )
    options = "".join(
        f"<option value='{html.escape(a.id, quote=True)}'>"
        f"{html.escape(a.name)} ({html.escape(a.email)})</option>"
        for a in _candidates(state, app)
    )
    scope = params.get("scope")
    scope_text = f"<p id='scope'>Requested scope: {html.escape(scope)}</p>" if scope else ""
    body = (
        f"<h1>{SERVICE_TITLE[service]} (emulator)</h1>"
        f"<p>The app <b id='client-id'>{html.escape(app.client_id)}</b> wants to access your "
        f"{SERVICE_TITLE[service]} account.</p>{scope_text}"
        f"<form method='post' action='{html.escape(action, quote=True)}'>{hidden}"
        f"<label>Sign in as <select name='user_id' id='user'>{options}</select></label> "
        "<button type='submit' name='decision' value='allow' id='allow'>Allow</button> "
        "<button type='submit' name='decision' value='deny' id='deny'>Deny</button>"
        "</form>"
    )
    return _page(f"{SERVICE_TITLE[service]} authorization", body)


def token_endpoint(service: str) -> Callable[[Request], Awaitable[Response]]:
    """POST /oauth2/token for ``service``: form-encoded grants, RFC 6749 errors, stats per grant."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        form = {key: str(value) for key, value in (await request.form()).items()}
        grant = form.get("grant_type", "")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if service == DROPBOX and client_id is None:
            client_id, basic_secret = _basic_credentials(request)
            client_secret = client_secret if client_secret is not None else basic_secret
        handlers = {
            GRANT_CODE: lambda: grants.exchange_code(state, service, form, client_id, client_secret),
            GRANT_REFRESH: lambda: grants.refresh_grant(state, service, form, client_id, client_secret),
        }
        if service == BOX:
            handlers[GRANT_JWT] = lambda: grants.jwt_grant(state, form, client_id, client_secret)
            handlers[GRANT_CCG] = lambda: grants.ccg_grant(state, form, client_id, client_secret)
        handler = handlers.get(grant)
        if handler is None:
            state.count_grant(service, grant or "<missing>", "unsupported_grant_type")
            return oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        try:
            body = handler()
        except grants.OAuthError as exc:
            state.count_grant(service, grant, exc.error)
            return oauth_error(exc.error, exc.description, exc.status)
        state.count_grant(service, grant, "ok")
        return json_response(body)

    return endpoint


async def box_revoke(request: Request) -> Response:
    """POST /oauth2/revoke (Box): form client_id, client_secret, token; 200 with an empty body."""
    state = _state(request)
    form = {key: str(value) for key, value in (await request.form()).items()}
    try:
        grants.box_revoke(state, form, form.get("client_id"), form.get("client_secret"))
    except grants.OAuthError as exc:
        return oauth_error(exc.error, exc.description, exc.status)
    return Response(b"", status_code=200)


async def dropbox_revoke(request: Request) -> Response:
    """POST /2/auth/token/revoke: the calling access token, its refresh token and siblings die."""
    state = _state(request)
    try:
        access = grants.authenticate(state, DROPBOX, request.headers.get("authorization"))
    except grants.AuthFailure as exc:
        if exc.kind == "missing":
            return dropbox_bad_request(
                "auth/token/revoke",
                'Must provide HTTP header "Authorization" or URL parameter "authorization".',
            )
        return dropbox_auth_error("expired_access_token" if exc.kind == "expired" else "invalid_access_token")
    with state.lock:
        refresh = next(
            (r for r in state.refresh_tokens.values() if access.family and r.family == access.family), None
        )
        grants.revoke_family(state, access, refresh)
    return json_response(None)


def routes() -> list[Route]:
    """The OAuth routes of both services, at their host-prefixed paths."""
    return [
        Route("/www.dropbox.com/oauth2/authorize", authorize_page(DROPBOX), methods=["GET", "POST"]),
        Route("/account.box.com/api/oauth2/authorize", authorize_page(BOX), methods=["GET", "POST"]),
        Route("/api.dropboxapi.com/oauth2/token", token_endpoint(DROPBOX), methods=["POST"]),
        Route("/api.box.com/oauth2/token", token_endpoint(BOX), methods=["POST"]),
        Route("/api.box.com/oauth2/revoke", box_revoke, methods=["POST"]),
        Route("/api.dropboxapi.com/2/auth/token/revoke", dropbox_revoke, methods=["POST"]),
    ]
