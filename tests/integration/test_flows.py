"""OAuth flows against the emulator over loopback: authorize URL, exchanges, refresh, CCG, revoke, errors.

Only ``parse_token_response`` robustness uses hand-made responses (the emulator never sends HTML or garbage).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropbox_box_provider import errors
from dropbox_box_provider.auth import flows, services, transport
from dropbox_box_provider.auth.config import AuthConfig, Service
from dropbox_box_provider.auth.tokens import TokenSet
from tests.fixtures.environment import free_port

CONN = "flows_test_conn"
CALLBACK = "http://127.0.0.1:33333"
FAST = transport.RetryPolicy(base_delay=0.05, max_delay=0.2, max_retry_after=2.0, total_budget=5.0)
BOX_ENTERPRISE = "900001"  # the demo seed's enterprise
BOX_USER = "10001"  # a demo-seed Box user in that enterprise


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep backoff short; Retry-After values up to 2 s are still honoured exactly."""
    monkeypatch.setattr(flows, "RETRY_POLICY", FAST)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with transport.new_client() as client:
        yield client


def register(emu: Any, service: Service, *, secret: bool = True, **fields: Any) -> AuthConfig:
    """A fresh app on the emulator and the connection config that points at it."""
    client_id = f"t-{service}-{uuid.uuid4().hex[:12]}"
    client_secret = f"s-{uuid.uuid4().hex}" if secret else None
    emu.client.register_app(service, client_id, client_secret=client_secret, redirect_uris=[CALLBACK])
    return AuthConfig(
        service=service,
        conn_id=CONN,
        client_id=client_id,
        client_secret=client_secret,
        endpoint=emu.url,
        **fields,
    )


def authorize(emu: Any, config: AuthConfig, request: flows.AuthorizationRequest) -> str:
    """Play the user clicking Allow for ``request`` (its redirect URI, PKCE challenge and access type)."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
    assert config.client_id
    return str(
        emu.client.authorize(
            config.service,
            config.client_id,
            redirect_uri=params.get("redirect_uri"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method"),
            scope=params.get("scope"),
            user_id=BOX_USER if config.service == "box" else None,
            token_access_type=params.get("token_access_type"),
        )
    )


def grant_stats(emu: Any, service: str, grant: str) -> dict[str, int]:
    stats: dict[str, Any] = emu.client.stats()
    return dict(stats[service]["token"].get(grant, {}))


def authorized(emu: Any, config: AuthConfig, http: httpx.Client, callback: str | None = CALLBACK) -> TokenSet:
    request = flows.authorization_url(config, callback_url=callback)
    code = authorize(emu, config, request)
    return flows.exchange_code(
        config, code, callback_url=callback, code_verifier=request.code_verifier, client=http
    )


def assert_no_secret(error: BaseException, *secrets: str | None) -> None:
    text = str(error) + repr(error)
    for secret in secrets:
        if secret:
            assert secret not in text


# --- endpoint override ------------------------------------------------------------------------------------


def test_resolve_url_endpoint_override() -> None:
    assert (
        services.resolve_url("http://127.0.0.1:8765", "https://api.box.com/oauth2/token")
        == "http://127.0.0.1:8765/api.box.com/oauth2/token"
    )
    assert (
        services.resolve_url("http://proxy:1/base/", "https://www.dropbox.com/oauth2/authorize?x=1")
        == "http://proxy:1/base/www.dropbox.com/oauth2/authorize?x=1"
    )
    assert services.resolve_url(None, services.BOX.token_url) == services.BOX.token_url
    assert services.resolve_url("", services.BOX.token_url) == services.BOX.token_url
    config = AuthConfig(service="box", conn_id="c1", endpoint="ftp://nope")
    with pytest.raises(errors.AuthConfigError, match="endpoint override"):
        services.resolve_url(config, services.BOX.token_url)


# --- authorization URL ------------------------------------------------------------------------------------


def query(url: str) -> dict[str, str]:
    params = parse_qs(urlsplit(url).query)
    assert all(len(v) == 1 for v in params.values())
    return {k: v[0] for k, v in params.items()}


def test_dropbox_pkce_authorization_url() -> None:
    config = AuthConfig(service="dropbox", conn_id=CONN, client_id="app-key", endpoint="http://127.0.0.1:1")
    request = flows.authorization_url(config, scopes=["files.content.read", "account_info.read"])
    assert request.url.startswith("http://127.0.0.1:1/www.dropbox.com/oauth2/authorize?")
    params = query(request.url)
    assert request.code_verifier and 43 <= len(request.code_verifier) <= 128
    assert params["code_challenge"] == flows.pkce_challenge(request.code_verifier)
    assert params["code_challenge_method"] == "S256"
    assert params["token_access_type"] == "offline"
    assert params["client_id"] == "app-key" and params["response_type"] == "code"
    assert params["scope"] == "files.content.read account_info.read"
    assert "redirect_uri" not in params and request.redirect_uri is None  # no-redirect (headless) flow
    assert params["state"] == request.state and len(request.state) >= 43  # 32 random bytes
    assert request.code_verifier not in repr(request)  # the state is in the URL anyway


def test_pkce_challenge_matches_rfc7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert flows.pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_dropbox_confidential_online_authorization_url() -> None:
    config = AuthConfig(
        service="dropbox", client_id="k", client_secret="s", access_type="online", callback_url=CALLBACK
    )
    request = flows.authorization_url(config, state="fixed-state")
    params = query(request.url)
    assert request.url.startswith("https://www.dropbox.com/oauth2/authorize?")
    assert "code_challenge" not in params and request.code_verifier is None
    assert params["token_access_type"] == "online"
    assert params["redirect_uri"] == CALLBACK == request.redirect_uri
    assert params["state"] == "fixed-state"
    assert "s" not in params.values()


def test_box_authorization_url() -> None:
    config = AuthConfig(service="box", client_id="bx", client_secret="sec", endpoint="http://127.0.0.1:2/")
    request = flows.authorization_url(config, callback_url=CALLBACK)
    assert request.url.startswith("http://127.0.0.1:2/account.box.com/api/oauth2/authorize?")
    params = query(request.url)
    assert params == {
        "response_type": "code",
        "client_id": "bx",
        "redirect_uri": CALLBACK,
        "state": request.state,
    }
    assert flows.authorization_url(config).state != request.state


def test_authorization_url_without_client_id_is_a_config_error() -> None:
    with pytest.raises(errors.AuthConfigError, match="Login is empty"):
        flows.authorization_url(AuthConfig(service="dropbox", conn_id=CONN))


def test_verify_state() -> None:
    flows.verify_state("abc" * 15, "abc" * 15)
    for received in ("abc" * 14 + "abd", "", None, "x"):
        with pytest.raises(errors.StateMismatch, match=f"dropbox-box-auth authorize {CONN}"):
            flows.verify_state("abc" * 15, received, CONN)


# --- code exchange ----------------------------------------------------------------------------------------


def test_dropbox_web_flow_exchange(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox")
    before = time.time()
    tokens = authorized(emulator, config, http)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.account_id and tokens.account_id.startswith("dbid:")
    assert (
        tokens.expires_at is not None and before + 14400 - 5 <= tokens.expires_at <= time.time() + 14400 + 5
    )
    assert tokens.refresh_issued_at is not None and before <= tokens.refresh_issued_at <= time.time()
    assert tokens.token_type == "bearer"
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)


def test_dropbox_no_redirect_exchange(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox")
    tokens = authorized(emulator, config, http, callback=None)
    assert tokens.refresh_token


def test_dropbox_exchange_uses_connection_callback_url(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox", callback_url=CALLBACK)
    request = flows.authorization_url(config)
    assert request.redirect_uri == CALLBACK
    code = authorize(emulator, config, request)
    assert flows.exchange_code(config, code, client=http).refresh_token


def test_dropbox_online_access_has_no_refresh_token(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox", access_type="online")
    tokens = authorized(emulator, config, http)
    assert tokens.refresh_token is None and tokens.refresh_issued_at is None


def test_exchange_must_repeat_the_redirect_uri(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox")
    request = flows.authorization_url(config, callback_url=CALLBACK)
    code = authorize(emulator, config, request)
    with pytest.raises(errors.ReauthorizationRequired, match="authorization code") as info:
        flows.exchange_code(config, code, callback_url="", client=http)
    assert f"dropbox-box-auth authorize {CONN}" in str(info.value)
    assert_no_secret(info.value, code, config.client_secret)


def test_codes_are_single_use(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "box")
    request = flows.authorization_url(config, callback_url=CALLBACK)
    code = authorize(emulator, config, request)
    assert flows.exchange_code(config, code, callback_url=CALLBACK, client=http).refresh_token
    with pytest.raises(errors.ReauthorizationRequired) as info:
        flows.exchange_code(config, code, callback_url=CALLBACK, client=http)
    assert_no_secret(info.value, code, config.client_secret)


def test_dropbox_pkce_exchange_and_refresh(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox", secret=False)
    request = flows.authorization_url(config, callback_url=CALLBACK)
    assert request.code_verifier
    code = authorize(emulator, config, request)
    tokens = flows.exchange_code(
        config, code, callback_url=CALLBACK, code_verifier=request.code_verifier, client=http
    )
    assert tokens.refresh_token
    refreshed = flows.refresh(config, tokens.refresh_token, client=http)
    assert refreshed.access_token != tokens.access_token
    assert refreshed.refresh_token == tokens.refresh_token


def test_pkce_wrong_verifier_is_rejected(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox", secret=False)
    request = flows.authorization_url(config, callback_url=CALLBACK)
    code = authorize(emulator, config, request)
    with pytest.raises(errors.ReauthorizationRequired) as info:
        flows.exchange_code(config, code, callback_url=CALLBACK, code_verifier="x" * 64, client=http)
    assert_no_secret(info.value, code, "x" * 64)


def test_pkce_exchange_without_verifier_fails_before_any_request() -> None:
    config = AuthConfig(service="dropbox", client_id="k", endpoint=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(errors.AuthConfigError, match="code_verifier"):
        flows.exchange_code(config, "some-code")


# --- refresh ----------------------------------------------------------------------------------------------


def test_dropbox_refresh_does_not_rotate(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox")
    tokens = authorized(emulator, config, http)
    assert tokens.refresh_token
    first = flows.refresh(config, tokens.refresh_token, client=http)
    second = flows.refresh(config, tokens.refresh_token, client=http)
    assert first.refresh_token == second.refresh_token == tokens.refresh_token
    assert len({tokens.access_token, first.access_token, second.access_token}) == 3
    assert first.expires_at and first.expires_at > time.time() + 14000


def test_box_refresh_rotates_and_old_token_dies(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "box")
    tokens = authorized(emulator, config, http)
    assert tokens.refresh_token and tokens.expires_at and tokens.expires_at > time.time() + 3000
    rotated = flows.refresh(config, tokens.refresh_token, client=http)
    assert rotated.refresh_token and rotated.refresh_token != tokens.refresh_token
    assert rotated.refresh_issued_at is not None
    with pytest.raises(errors.ReauthorizationRequired) as info:
        flows.refresh(config, tokens.refresh_token, client=http)
    message = str(info.value)
    assert f"dropbox-box-auth authorize {CONN}" in message and "invalid_grant" in message
    assert info.value.conn_id == CONN
    assert_no_secret(info.value, tokens.refresh_token, rotated.refresh_token, config.client_secret)
    assert flows.refresh(config, rotated.refresh_token, client=http).refresh_token


def test_box_refresh_grace_returns_the_same_pair(fresh_emulator: Any, http: httpx.Client) -> None:
    fresh_emulator.client.configure(box_refresh_grace=True)
    config = register(fresh_emulator, "box")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    first = flows.refresh(config, tokens.refresh_token, client=http)
    again = flows.refresh(config, tokens.refresh_token, client=http)
    assert (again.access_token, again.refresh_token) == (first.access_token, first.refresh_token)


def test_refresh_with_the_shared_client(emulator: Any) -> None:
    config = register(emulator, "dropbox")
    with transport.new_client() as http:
        tokens = authorized(emulator, config, http)
    assert tokens.refresh_token
    assert flows.refresh(config, tokens.refresh_token).access_token  # client=None: the per-process client


def test_refresh_without_token_is_a_config_error() -> None:
    with pytest.raises(errors.AuthConfigError, match="authorize"):
        flows.refresh(AuthConfig(service="box", client_id="x", client_secret="y"), "")


# --- error mapping ----------------------------------------------------------------------------------------


def test_invalid_client_names_what_to_check(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox")
    tokens = authorized(emulator, config, http)
    assert tokens.refresh_token
    wrong = AuthConfig(
        service="dropbox",
        conn_id=CONN,
        client_id=config.client_id,
        client_secret="wrong-secret",
        endpoint=emulator.url,
    )
    with pytest.raises(errors.AuthConfigError, match="invalid_client") as info:
        flows.refresh(wrong, tokens.refresh_token, client=http)
    assert "Login" in str(info.value) and "Password" in str(info.value)
    assert info.value.conn_id == CONN
    assert_no_secret(info.value, "wrong-secret", tokens.refresh_token)


def test_unknown_refresh_token_requires_reauthorization(emulator: Any, http: httpx.Client) -> None:
    services_: tuple[Service, ...] = ("dropbox", "box")
    for service in services_:
        config = register(emulator, service)
        with pytest.raises(errors.ReauthorizationRequired, match="refresh token") as info:
            flows.refresh(config, "never-issued-refresh-token-value", client=http)
        assert_no_secret(info.value, "never-issued-refresh-token-value", config.client_secret)


def test_429_retry_after_is_honoured(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "box")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.box.com/oauth2/token", status=429, retry_after=1, count=1)
    started = time.monotonic()
    rotated = flows.refresh(
        config, tokens.refresh_token, client=http
    )  # single-use, yet 429 is safe to resend
    assert time.monotonic() - started >= 0.95
    assert rotated.refresh_token and rotated.refresh_token != tokens.refresh_token
    assert grant_stats(fresh_emulator, "box", "refresh_token")["ok"] == 1


def test_429_past_the_cap_raises_rate_limited(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "dropbox")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.dropboxapi.com/oauth2/token", status=429, retry_after=30, count=1)
    started = time.monotonic()
    with pytest.raises(errors.RateLimited) as info:
        flows.refresh(config, tokens.refresh_token, client=http)
    assert time.monotonic() - started < 1.0
    assert info.value.retry_after == 30 and info.value.status == 429
    assert flows.refresh(config, tokens.refresh_token, client=http).access_token  # the fault was one-shot


def test_500_is_retried_for_dropbox_refresh(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "dropbox")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.dropboxapi.com/oauth2/token", status=500, count=2)
    assert flows.refresh(config, tokens.refresh_token, client=http).access_token
    assert grant_stats(fresh_emulator, "dropbox", "refresh_token")["ok"] == 1


def test_500_is_not_resent_for_box_refresh(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "box")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.box.com/oauth2/token", status=500, count=1)
    with pytest.raises(errors.ServiceError) as info:
        flows.refresh(config, tokens.refresh_token, client=http)
    assert info.value.status == 500 and "again later" in str(info.value)
    # The old token is still the live one: the caller keeps it and the next run succeeds.
    assert flows.refresh(config, tokens.refresh_token, client=http).refresh_token


def test_503_is_resent_for_box_refresh(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "box")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.box.com/oauth2/token", status=503, count=2)
    assert flows.refresh(config, tokens.refresh_token, client=http).refresh_token


def test_dropped_connection_is_retried_for_dropbox(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "dropbox")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.dropboxapi.com/oauth2/token", drop=True, count=2)
    assert flows.refresh(config, tokens.refresh_token, client=http).access_token


def test_dropped_connection_is_not_resent_for_box_refresh(fresh_emulator: Any, http: httpx.Client) -> None:
    config = register(fresh_emulator, "box")
    tokens = authorized(fresh_emulator, config, http)
    assert tokens.refresh_token
    fresh_emulator.client.fault("/api.box.com/oauth2/token", drop=True, count=1)
    with pytest.raises(errors.TransportError) as info:
        flows.refresh(config, tokens.refresh_token, client=http)
    assert info.value.code == "outcome_unknown"
    assert_no_secret(info.value, tokens.refresh_token, config.client_secret)
    assert grant_stats(fresh_emulator, "box", "refresh_token").get("ok", 0) == 0


def test_unreachable_endpoint_is_a_transport_error(http: httpx.Client) -> None:
    config = AuthConfig(
        service="box",
        conn_id=CONN,
        client_id="c",
        client_secret="s",
        endpoint=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(errors.TransportError) as info:
        flows.refresh(config, "refresh-value", client=http)
    assert info.value.code == "connection_failed" and "reachable" in str(info.value)
    assert_no_secret(info.value, "refresh-value", "s=")


def test_api_errors_map_to_service_errors(emulator: Any, http: httpx.Client) -> None:
    """Dropbox error_summary/.tag and Box code/message, read from real emulator API answers."""
    dropbox = register(emulator, "dropbox")
    tokens = authorized(emulator, dropbox, http)
    url = services.resolve_url(dropbox, services.DROPBOX.api_base + "/files/get_metadata")
    response = http.post(
        url, json={"path": "/no/such/file"}, headers={"Authorization": f"Bearer {tokens.access_token}"}
    )
    assert response.status_code == 409
    error = services.error_from_response("dropbox", response, CONN)
    assert type(error) is errors.ServiceError and error.code == "path/not_found" and error.status == 409
    assert "path/not_found" in str(error) and "/.." not in str(error)

    response = http.post(
        services.resolve_url(dropbox, services.DROPBOX.api_base + "/users/get_current_account"),
        content=b"null",
        headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    error = services.error_from_response("dropbox", response, CONN)
    assert isinstance(error, errors.ServiceError) and error.code == "invalid_access_token"

    box = register(emulator, "box")
    box_tokens = authorized(emulator, box, http)
    url = services.resolve_url(box, services.BOX.api_base + "/folders/987654321/items")
    response = http.get(url, headers={"Authorization": f"Bearer {box_tokens.access_token}"})
    assert response.status_code == 404
    error = services.error_from_response("box", response, CONN)
    assert isinstance(error, errors.ServiceError) and error.status == 404 and error.code == "not_found"


def test_dropbox_error_summary_dots_are_never_parsed() -> None:
    request = httpx.Request("POST", "http://x/2/files/get_metadata")
    codes = set()
    for tail in ("", "/", "/.", "/..", "/...", ".."):
        body = {
            "error_summary": f"path/not_found{tail}",
            "error": {".tag": "path", "path": {".tag": "not_found"}},
        }
        error = services.error_from_response("dropbox", httpx.Response(409, json=body, request=request))
        codes.add((error.code if isinstance(error, errors.ServiceError) else None, str(error)))
    assert len(codes) == 1


# --- client credentials (CCG) -----------------------------------------------------------------------------


def ccg_config(emu: Any, **fields: Any) -> AuthConfig:
    from dropbox_box_provider.emulator import seed

    return AuthConfig(
        service="box",
        conn_id=CONN,
        auth_scheme="ccg",
        client_id=seed.DEMO_BOX_CCG_CLIENT_ID,
        client_secret=seed.DEMO_BOX_CCG_CLIENT_SECRET,
        endpoint=emu.url,
        **fields,
    )


def test_ccg_enterprise_token(emulator: Any, http: httpx.Client) -> None:
    tokens = flows.fetch_service_token(
        ccg_config(emulator, subject_type="enterprise", subject_id=BOX_ENTERPRISE), client=http
    )
    assert tokens.access_token and tokens.refresh_token is None and tokens.refresh_issued_at is None
    assert tokens.expires_at and tokens.expires_at > time.time() + 3000
    me = http.get(
        services.resolve_url(emulator.url, services.BOX.api_base + "/users/me"),
        headers={"Authorization": f"Bearer {tokens.access_token}"},
    )
    assert me.status_code == 200


def test_ccg_user_token(emulator: Any, http: httpx.Client) -> None:
    tokens = flows.fetch_service_token(
        ccg_config(emulator, subject_type="user", subject_id=BOX_USER), client=http
    )
    me = http.get(
        services.resolve_url(emulator.url, services.BOX.api_base + "/users/me"),
        headers={"Authorization": f"Bearer {tokens.access_token}"},
    )
    assert me.status_code == 200 and me.json()["id"] == BOX_USER


def test_ccg_wrong_enterprise_is_a_config_error(emulator: Any, http: httpx.Client) -> None:
    with pytest.raises(errors.AuthConfigError, match="Admin Console"):
        flows.fetch_service_token(
            ccg_config(emulator, subject_type="enterprise", subject_id="123"), client=http
        )


def test_ccg_missing_subject_is_a_config_error_without_a_request() -> None:
    config = AuthConfig(
        service="box", auth_scheme="ccg", client_id="c", endpoint=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(errors.AuthConfigError) as info:
        flows.fetch_service_token(config)
    assert len(info.value.problems) == 2


def test_service_token_refuses_oauth_connections() -> None:
    with pytest.raises(errors.AuthConfigError, match="oauth"):
        flows.fetch_service_token(AuthConfig(service="dropbox", client_id="x"))


# --- revoke -----------------------------------------------------------------------------------------------


def test_box_revoke_kills_the_refresh_token(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "box")
    tokens = authorized(emulator, config, http)
    assert tokens.refresh_token
    flows.revoke(config, tokens.refresh_token, client=http)
    with pytest.raises(errors.ReauthorizationRequired):
        flows.refresh(config, tokens.refresh_token, client=http)
    flows.revoke(config, tokens.refresh_token, client=http)  # revoking twice is fine


def test_dropbox_revoke_kills_access_and_refresh_token(emulator: Any, http: httpx.Client) -> None:
    config = register(emulator, "dropbox")
    tokens = authorized(emulator, config, http)
    assert tokens.refresh_token
    flows.revoke(config, tokens.access_token, client=http)
    with pytest.raises(errors.ReauthorizationRequired):
        flows.refresh(config, tokens.refresh_token, client=http)
    flows.revoke(config, tokens.access_token, client=http)  # already revoked counts as done


# --- parse_token_response robustness (hand-made responses; the emulator never sends these) ----------------


def mocked(status: int, content: bytes, content_type: str = "application/json") -> httpx.Response:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"Content-Type": content_type})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return client.post("http://127.0.0.1:1/api.box.com/oauth2/token")


BAD_BODIES = [
    (200, b"<html><body>Proxy login</body></html>", "text/html"),
    (502, b"<html><body>Bad gateway</body></html>", "text/html"),
    (200, b"", "application/json"),
    (200, b"\xff\xfe\x00garbage", "application/json"),
    (200, b"null", "application/json"),
    (200, b"[1, 2]", "application/json"),
    (200, b'"access_token"', "application/json"),
    (200, b"{}", "application/json"),
    (200, b'{"access_token": 12}', "application/json"),
    (200, b'{"access_token": ""}', "application/json"),
    (200, b'{"access_token": "a", "expires_in": "soon"}', "application/json"),
    (200, b'{"access_token": "a", "expires_in": -5}', "application/json"),
    (200, b'{"access_token": "a", "expires_in": true}', "application/json"),
    (200, b'{"access_token": "a", "expires_in": NaN}', "application/json"),
    (200, b'{"access_token": "a", "refresh_token": ["x"]}', "application/json"),
    (400, b'{"error": 5, "error_description": {"x": 1}}', "application/json"),
    (400, b'{"error": null}', "application/json"),
    (500, b"[" * 5000, "application/json"),
]


@pytest.mark.parametrize(("status", "content", "content_type"), BAD_BODIES)
def test_bad_token_responses_become_typed_errors(status: int, content: bytes, content_type: str) -> None:
    for service in ("dropbox", "box"):
        with pytest.raises(errors.ServiceError) as info:
            flows.parse_token_response(service, mocked(status, content, content_type), conn_id=CONN)
        assert info.value.status == status
        assert "Proxy login" not in str(info.value)


def test_good_token_response_tolerates_odd_metadata() -> None:
    body = {
        "access_token": "tok",
        "expires_in": "3600",
        "scope": 5,
        "account_id": None,
        "token_type": "Bearer",
    }
    tokens = flows.parse_token_response("dropbox", mocked(200, json.dumps(body).encode()), now=1000.0)
    assert tokens.expires_at == 4600.0 and tokens.scope is None and tokens.account_id is None
    assert tokens.token_type == "bearer" and tokens.refresh_issued_at is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=5),
    max_leaves=12,
)
token_like = st.fixed_dictionaries(
    {},
    optional={
        "access_token": json_values,
        "refresh_token": json_values,
        "expires_in": json_values,
        "scope": json_values,
        "account_id": json_values,
        "token_type": json_values,
        "uid": json_values,
        "error": json_values,
        "error_description": json_values,
        "error_summary": json_values,
        "code": json_values,
        "message": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(json_values, token_like),
    status=st.sampled_from([200, 201, 400, 401, 403, 409, 429, 500, 503]),
    service=st.sampled_from(["dropbox", "box"]),
)
def test_random_json_never_escapes_as_untyped_error(body: object, status: int, service: str) -> None:
    response = httpx.Response(
        status,
        content=json.dumps(body).encode(),
        request=httpx.Request("POST", "http://127.0.0.1:1/oauth2/token"),
    )
    try:
        tokens = flows.parse_token_response(
            service, response, conn_id=CONN, grant=services.GRANT_REFRESH_TOKEN
        )
    except errors.DropboxBoxError:
        return
    assert 200 <= status < 300
    assert isinstance(tokens.access_token, str) and tokens.access_token.strip()
    assert tokens.expires_at is None or tokens.expires_at >= 0
