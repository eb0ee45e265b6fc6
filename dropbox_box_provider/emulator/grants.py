"""OAuth grant logic for both services: codes, token issuance, refresh rotation, JWT, CCG, revocation.

Pure logic over :class:`EmulatorState`; HTTP shapes live in ``oauth.py``. Errors are :class:`OAuthError`
carrying the RFC 6749 code and the description text the real service uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from dropbox_box_provider.emulator.state import (
    BOX,
    DROPBOX,
    AccessToken,
    App,
    AuthCode,
    EmulatorState,
    RefreshToken,
    random_token,
)

DROPBOX_DEFAULT_SCOPE = (
    "account_info.read files.content.read files.content.write files.metadata.read files.metadata.write"
)
BOX_TOKEN_URL = "https://api.box.com/oauth2/token"  # noqa: S105
JWT_ALGORITHMS = ["RS256", "RS384", "RS512"]
JWT_MAX_EXP_SECONDS = 60

BOX_BAD_CLIENT = "The client credentials are invalid"
DROPBOX_BAD_CLIENT = "Invalid client_id or client_secret"
JWT_SIGNATURE_ERROR = (
    'Signature verification error. The public key identified by "kid" must correspond to the private key '
    "used for signing."
)
JWT_EXP_TOO_FAR = (
    "Please check the 'exp' claim. The 'exp' value exceeds the maximum value of 60 seconds beyond the "
    "issued at time."
)
JWT_EXP_PAST = "Current date/time MUST be before the expiration date/time listed in the 'exp' claim"
JWT_JTI_REUSED = "Please check the 'jti' claim. A unique 'jti' value is required."
JWT_JTI_LENGTH = "Please check the 'jti' claim. The 'jti' claim must be between 16 and 128 characters."
JWT_AUD = "Please check the 'aud' claim. Should match the token URL https://api.box.com/oauth2/token."
JWT_ISS = "Please check the 'iss' claim. It must be the client id of the app."
JWT_SUB_TYPE = "Please check the 'box_sub_type' claim. It must be 'enterprise' or 'user'."
JWT_SUB = "Please check the 'sub' claim. The 'sub' specified is invalid."
JWT_MALFORMED = "Invalid JWT: the assertion could not be decoded."
NOT_AUTHORIZED_BY_ADMIN = "This app is not authorized by the enterprise admin."


class OAuthError(Exception):
    """A token-endpoint failure: ``error`` code, ``description`` text, HTTP ``status``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status


class AuthFailure(Exception):
    """An API call's bearer token is missing, unknown/revoked, or expired."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "missing" | "invalid" | "expired"


def access_ttl(state: EmulatorState, service: str) -> float:
    """Configured access-token lifetime for ``service``."""
    return float(state.config[f"{service}_access_token_ttl"])


def find_app(state: EmulatorState, service: str, client_id: str | None) -> App | None:
    """The registered app, or None."""
    if not client_id:
        return None
    return state.apps.get((service, client_id))


def check_client(
    state: EmulatorState, service: str, client_id: str | None, client_secret: str | None, need_secret: bool
) -> App:
    """Authenticate the client; raises ``invalid_client`` with the service's wording."""
    app = find_app(state, service, client_id)
    text = DROPBOX_BAD_CLIENT if service == DROPBOX else BOX_BAD_CLIENT
    if app is None:
        raise OAuthError("invalid_client", text)
    if (need_secret or client_secret is not None) and (
        app.client_secret is None or not hmac.compare_digest(app.client_secret, client_secret or "")
    ):
        raise OAuthError("invalid_client", text)
    return app


def issue_code(
    state: EmulatorState,
    service: str,
    client_id: str,
    account_id: str,
    redirect_uri: str | None,
    *,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
    scope: str | None = None,
    token_access_type: str | None = None,
) -> str:
    """Create a single-use authorization code as if the user clicked Allow."""
    code = random_token(43)
    with state.lock:
        state.codes[code] = AuthCode(
            code=code,
            service=service,
            client_id=client_id,
            account_id=account_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            code_challenge_method=(code_challenge_method or "plain") if code_challenge else None,
            scope=scope,
            token_access_type=token_access_type,
            issued_at=time.time(),
        )
    return code


def _new_access(  # noqa: PLR0917
    state: EmulatorState,
    service: str,
    client_id: str,
    account_id: str,
    family: str | None,
    scope: str | None,
    team: bool = False,
) -> AccessToken:
    token = "sl." + random_token(120) if service == DROPBOX else random_token(32)
    access = AccessToken(
        token=token,
        service=service,
        client_id=client_id,
        account_id=account_id,
        expires_at=time.time() + access_ttl(state, service),
        family=family,
        scope=scope,
        team=team,
    )
    state.access_tokens[token] = access
    return access


def _new_refresh(  # noqa: PLR0917
    state: EmulatorState,
    service: str,
    client_id: str,
    account_id: str,
    family: str,
    scope: str | None,
    team: bool = False,
    pkce: bool = False,
) -> RefreshToken:
    token = random_token(64) if service == BOX else random_token(43)
    refresh = RefreshToken(
        token=token,
        service=service,
        client_id=client_id,
        account_id=account_id,
        issued_at=time.time(),
        family=family,
        scope=scope,
        team=team,
        pkce=pkce,
    )
    state.refresh_tokens[token] = refresh
    return refresh


def _expires_in(access: AccessToken) -> int:
    return max(0, math.floor(access.expires_at - time.time() + 0.5))


def _box_token_body(access: AccessToken, refresh: RefreshToken | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": access.token,
        "expires_in": _expires_in(access),
        "restricted_to": [],
        "token_type": "bearer",
    }
    if refresh is not None:
        body["refresh_token"] = refresh.token
    return body


def _verify_pkce(code: AuthCode, verifier: str | None) -> None:
    if not verifier:
        raise OAuthError("invalid_request", "code_verifier is required for a code issued with code_challenge")
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        expected = verifier
    if not hmac.compare_digest(expected, code.code_challenge or ""):
        raise OAuthError("invalid_grant", "invalid code verifier")


def exchange_code(
    state: EmulatorState,
    service: str,
    form: Mapping[str, str],
    client_id: str | None,
    client_secret: str | None,
) -> dict[str, Any]:
    """``grant_type=authorization_code``: single-use, short-lived, redirect_uri and PKCE checked."""
    with state.lock:
        code = state.codes.get(form.get("code") or "")
        pkce = code is not None and code.code_challenge is not None
        app = check_client(state, service, client_id, client_secret, need_secret=not pkce)
        bad_code = (
            "code doesn't exist or has expired"
            if service == DROPBOX
            else "Auth code doesn't exist or is invalid for the client"
        )
        if not form.get("code"):
            raise OAuthError("invalid_request", "No code provided: add the authorization code as 'code'")
        if code is None or code.used or code.service != service or code.client_id != app.client_id:
            raise OAuthError("invalid_grant", bad_code)
        if time.time() - code.issued_at > float(state.config["code_ttl"]):
            code.used = True
            raise OAuthError("invalid_grant", bad_code)
        code.used = True
        sent_redirect = form.get("redirect_uri") or None
        if service == DROPBOX and sent_redirect != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri mismatch")
        if service == BOX and sent_redirect is not None and sent_redirect != code.redirect_uri:
            raise OAuthError("invalid_grant", "The redirect_uri does not match the one used to authorize")
        if pkce:
            _verify_pkce(code, form.get("code_verifier"))
        family = uuid.uuid4().hex
        account = state.account(service, code.account_id)
        if account is None:
            raise OAuthError("invalid_grant", bad_code)
        if service == BOX:
            access = _new_access(state, BOX, app.client_id, account.id, family, code.scope)
            refresh = _new_refresh(state, BOX, app.client_id, account.id, family, code.scope)
            state.changed()
            return _box_token_body(access, refresh)
        scope = code.scope or (" ".join(app.scopes) if app.scopes is not None else DROPBOX_DEFAULT_SCOPE)
        access = _new_access(state, DROPBOX, app.client_id, account.id, family, scope, team=app.team)
        body: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": _expires_in(access),
            "scope": scope,
            "uid": account.uid,
            "account_id": account.id,
        }
        if app.team:
            body["team_id"] = app.team_id or account.team_id
        if code.token_access_type == "offline":  # noqa: S105
            refresh = _new_refresh(
                state, DROPBOX, app.client_id, account.id, family, scope, team=app.team, pkce=pkce
            )
            body["refresh_token"] = refresh.token
        state.changed()
        return body


def refresh_grant(
    state: EmulatorState,
    service: str,
    form: Mapping[str, str],
    client_id: str | None,
    client_secret: str | None,
) -> dict[str, Any]:
    """``grant_type=refresh_token``: Dropbox reuses the refresh token, Box rotates it (single use)."""
    with state.lock:
        token = form.get("refresh_token") or ""
        stored = state.refresh_tokens.get(token)
        pkce = stored is not None and stored.pkce
        app = check_client(state, service, client_id, client_secret, need_secret=not pkce)
        if service == DROPBOX:
            if (
                stored is None
                or stored.service != DROPBOX
                or stored.client_id != app.client_id
                or stored.revoked
            ):
                raise OAuthError("invalid_grant", "refresh token is invalid or revoked")
            access = _new_access(
                state, DROPBOX, app.client_id, stored.account_id, stored.family, stored.scope, stored.team
            )
            state.changed()
            return {"access_token": access.token, "token_type": "bearer", "expires_in": _expires_in(access)}
        if stored is None or stored.service != BOX or stored.client_id != app.client_id:
            raise OAuthError("invalid_grant", "Invalid refresh token")
        if stored.revoked:
            raise OAuthError("invalid_grant", "Refresh token has expired")
        if stored.consumed_at is not None:
            successor_access = state.access_tokens.get(stored.successor_access or "")
            successor_refresh = state.refresh_tokens.get(stored.successor_refresh or "")
            if (
                state.config["box_refresh_grace"]
                and successor_access is not None
                and successor_refresh is not None
                and not successor_access.used
                and successor_refresh.consumed_at is None
                and not successor_refresh.revoked
            ):
                return _box_token_body(successor_access, successor_refresh)
            raise OAuthError("invalid_grant", "Refresh token has expired")
        if time.time() - stored.issued_at > float(state.config["refresh_token_ttl"]):
            raise OAuthError("invalid_grant", "Refresh token has expired")
        access = _new_access(state, BOX, app.client_id, stored.account_id, stored.family, stored.scope)
        refresh = _new_refresh(state, BOX, app.client_id, stored.account_id, stored.family, stored.scope)
        stored.consumed_at = time.time()
        stored.successor_access, stored.successor_refresh = access.token, refresh.token
        state.changed()
        return _box_token_body(access, refresh)


def jwt_grant(
    state: EmulatorState, form: Mapping[str, str], client_id: str | None, client_secret: str | None
) -> dict[str, Any]:
    """Box ``jwt-bearer``: verify the assertion against the app's registered public key."""
    with state.lock:
        app = check_client(state, BOX, client_id, client_secret, need_secret=True)
        assertion = form.get("assertion") or ""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", JWT_MALFORMED) from exc
        public_key = app.public_keys.get(str(header.get("kid") or ""))
        if public_key is None or header.get("alg") not in JWT_ALGORITHMS:
            raise OAuthError("invalid_grant", JWT_SIGNATURE_ERROR)
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                public_key,
                algorithms=JWT_ALGORITHMS,
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise OAuthError("invalid_grant", JWT_SIGNATURE_ERROR) from exc
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", JWT_MALFORMED) from exc
        if claims.get("iss") != app.client_id:
            raise OAuthError("invalid_grant", JWT_ISS)
        audience = claims.get("aud")
        if audience != BOX_TOKEN_URL and not (isinstance(audience, list) and audience == [BOX_TOKEN_URL]):
            raise OAuthError("invalid_grant", JWT_AUD)
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= now:
            raise OAuthError("invalid_grant", JWT_EXP_PAST)
        if exp - now > JWT_MAX_EXP_SECONDS:
            raise OAuthError("invalid_grant", JWT_EXP_TOO_FAR)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 16 <= len(jti) <= 128:
            raise OAuthError("invalid_grant", JWT_JTI_LENGTH)
        state.used_jtis = {key: until for key, until in state.used_jtis.items() if until > now}
        if f"{app.client_id}:{jti}" in state.used_jtis:
            raise OAuthError("invalid_grant", JWT_JTI_REUSED)
        account_id = _subject(state, app, str(claims.get("box_sub_type") or ""), str(claims.get("sub") or ""))
        state.used_jtis[f"{app.client_id}:{jti}"] = float(exp) + 1
        access = _new_access(state, BOX, app.client_id, account_id, None, None)
        state.changed()
        return _box_token_body(access, None)


def _subject(state: EmulatorState, app: App, sub_type: str, sub: str, ccg: bool = False) -> str:
    """Resolve an enterprise/user subject to the account the token acts as."""
    bad = "Grant credentials are invalid" if ccg else JWT_SUB
    if sub_type == "enterprise":
        if not app.enterprise_id or sub != app.enterprise_id:
            raise OAuthError("unauthorized_client", NOT_AUTHORIZED_BY_ADMIN)
        if app.service_account_id is None:
            raise OAuthError("unauthorized_client", NOT_AUTHORIZED_BY_ADMIN)
        return app.service_account_id
    if sub_type == "user":
        user = state.account(BOX, sub)
        if user is None:
            raise OAuthError("invalid_grant", bad)
        if user.enterprise_id != app.enterprise_id:
            raise OAuthError("unauthorized_client", NOT_AUTHORIZED_BY_ADMIN)
        return user.id
    raise OAuthError("invalid_grant", "Grant credentials are invalid" if ccg else JWT_SUB_TYPE)


def ccg_grant(
    state: EmulatorState, form: Mapping[str, str], client_id: str | None, client_secret: str | None
) -> dict[str, Any]:
    """Box ``client_credentials`` with ``box_subject_type`` / ``box_subject_id``."""
    with state.lock:
        app = check_client(state, BOX, client_id, client_secret, need_secret=True)
        account_id = _subject(
            state, app, form.get("box_subject_type") or "", form.get("box_subject_id") or "", ccg=True
        )
        access = _new_access(state, BOX, app.client_id, account_id, None, None)
        state.changed()
        return _box_token_body(access, None)


def revoke_family(state: EmulatorState, access: AccessToken | None, refresh: RefreshToken | None) -> None:
    """Revoke a token and, through its family, its refresh token and sibling access tokens."""
    with state.lock:
        family = (access.family if access else None) or (refresh.family if refresh else None)
        if access is not None:
            access.revoked = True
        if refresh is not None:
            refresh.revoked = True
        if family is not None:
            for token in state.access_tokens.values():
                if token.family == family:
                    token.revoked = True
            for rtoken in state.refresh_tokens.values():
                if rtoken.family == family:
                    rtoken.revoked = True
        state.changed()


def box_revoke(
    state: EmulatorState, form: Mapping[str, str], client_id: str | None, client_secret: str | None
) -> None:
    """Box ``/oauth2/revoke``: the token and its family die; unknown tokens are ignored."""
    with state.lock:
        app = check_client(state, BOX, client_id, client_secret, need_secret=True)
        token = form.get("token") or ""
        access = state.access_tokens.get(token)
        refresh = state.refresh_tokens.get(token)
        if access is not None and access.client_id != app.client_id:
            access = None
        if refresh is not None and refresh.client_id != app.client_id:
            refresh = None
        if access is not None or refresh is not None:
            revoke_family(state, access, refresh)


def authenticate(state: EmulatorState, service: str, authorization: str | None) -> AccessToken:
    """The live access token named by an ``Authorization: Bearer`` header; marks it used."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthFailure("missing")
    token = authorization[7:].strip()
    with state.lock:
        access = state.access_tokens.get(token)
        if access is None or access.service != service or access.revoked:
            raise AuthFailure("invalid")
        if time.time() >= access.expires_at:
            raise AuthFailure("expired")
        access.used = True
        return access
