"""OAuth behaviour of the emulator for both services, over real HTTP."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import (
    BOX_TOKEN,
    DROPBOX_TOKEN,
    REDIRECT,
    box_ccg_token,
    box_refresh,
    box_tokens,
    dropbox_tokens,
    jwt_assertion,
    jwt_grant,
    pkce_pair,
)

DBX_AUTH = (seed.DEMO_DROPBOX_CLIENT_ID, seed.DEMO_DROPBOX_CLIENT_SECRET)


def _consent(url: str, path: str, params: dict[str, str], decision: str) -> httpx.Response:
    page = httpx.get(url + path, params=params)
    assert page.status_code == 200
    assert "id='allow'" in page.text and "id='deny'" in page.text
    form = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", page.text))
    assert form["client_id"] == params["client_id"]
    form["decision"] = decision
    return httpx.post(url + path, data=form)


def test_dropbox_consent_allow_redirects_with_code_and_state(fresh_emulator):
    params = {
        "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "token_access_type": "offline",
    }
    answer = _consent(fresh_emulator.url, "/www.dropbox.com/oauth2/authorize", params, "allow")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    token = httpx.post(
        fresh_emulator.url + DROPBOX_TOKEN,
        data={"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT},
        auth=DBX_AUTH,
    )
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 14400 and body["refresh_token"]
    assert body["account_id"].startswith("dbid:") and len(body["account_id"]) == 40


def test_dropbox_consent_without_redirect_shows_code(fresh_emulator):
    params = {"client_id": seed.DEMO_DROPBOX_CLIENT_ID, "response_type": "code"}
    answer = _consent(fresh_emulator.url, "/www.dropbox.com/oauth2/authorize", params, "allow")
    assert answer.status_code == 200
    code = re.search(r"<code id='code'>([^<]+)</code>", answer.text)
    assert code is not None
    token = httpx.post(
        fresh_emulator.url + DROPBOX_TOKEN,
        data={"grant_type": "authorization_code", "code": code.group(1)},
        auth=DBX_AUTH,
    )
    assert token.status_code == 200
    assert "refresh_token" not in token.json()


def test_dropbox_consent_deny(fresh_emulator):
    params = {
        "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "state": "s1",
    }
    answer = _consent(fresh_emulator.url, "/www.dropbox.com/oauth2/authorize", params, "deny")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["error_description"][0] and query["state"] == ["s1"]


def test_box_consent_allow_and_deny(fresh_emulator):
    params = {
        "client_id": seed.DEMO_BOX_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "state": "b",
    }
    allowed = _consent(fresh_emulator.url, "/account.box.com/api/oauth2/authorize", params, "allow")
    assert allowed.status_code == 302
    code = parse_qs(urlsplit(allowed.headers["location"]).query)["code"][0]
    token = httpx.post(
        fresh_emulator.url + BOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
        },
    )
    assert token.status_code == 200 and token.json()["refresh_token"]
    assert token.headers["content-type"] == "application/json" and "date" in token.headers
    denied = _consent(fresh_emulator.url, "/account.box.com/api/oauth2/authorize", params, "deny")
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"]


@pytest.mark.parametrize(
    ("path", "params", "text"),
    [
        ("/www.dropbox.com/oauth2/authorize", {"client_id": "nope", "response_type": "code"}, "client_id"),
        (
            "/www.dropbox.com/oauth2/authorize",
            {
                "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
                "response_type": "code",
                "redirect_uri": "http://evil.example",
            },
            "redirect_uri",
        ),
        (
            "/account.box.com/api/oauth2/authorize",
            {"client_id": "nope", "response_type": "code"},
            "client_id",
        ),
    ],
)
def test_authorize_page_rejects_unknown_client_or_redirect(fresh_emulator, path, params, text):
    page = httpx.get(fresh_emulator.url + path, params=params)
    assert page.status_code == 400
    assert text in page.text and "id='allow'" not in page.text


def test_dropbox_redirect_uri_must_be_repeated(fresh_emulator):
    client = fresh_emulator.client
    code = client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID, redirect_uri=REDIRECT)
    missing = httpx.post(
        fresh_emulator.url + DROPBOX_TOKEN,
        data={"grant_type": "authorization_code", "code": code},
        auth=DBX_AUTH,
    )
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}


def test_pkce_match_and_mismatch(fresh_emulator):
    client, url = fresh_emulator.client, fresh_emulator.url
    verifier, challenge = pkce_pair()
    code = client.authorize(
        "dropbox",
        seed.DEMO_DROPBOX_CLIENT_ID,
        code_challenge=challenge,
        code_challenge_method="S256",
        token_access_type="offline",
    )
    ok = httpx.post(
        url + DROPBOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    assert ok.status_code == 200, ok.text
    refreshed = httpx.post(
        url + DROPBOX_TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": ok.json()["refresh_token"],
            "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
        },
    )
    assert refreshed.status_code == 200, "PKCE refresh tokens need no secret"
    code = client.authorize(
        "dropbox", seed.DEMO_DROPBOX_CLIENT_ID, code_challenge=challenge, code_challenge_method="S256"
    )
    bad = httpx.post(
        url + DROPBOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
            "code_verifier": verifier + "x",
        },
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


def test_code_is_single_use(fresh_emulator):
    code = fresh_emulator.client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID)
    data = {"grant_type": "authorization_code", "code": code}
    assert httpx.post(fresh_emulator.url + DROPBOX_TOKEN, data=data, auth=DBX_AUTH).status_code == 200
    again = httpx.post(fresh_emulator.url + DROPBOX_TOKEN, data=data, auth=DBX_AUTH)
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "code doesn't exist or has expired",
    }


def test_expired_code(fresh_emulator):
    fresh_emulator.client.configure(code_ttl=0.2)
    code = fresh_emulator.client.authorize("box", seed.DEMO_BOX_CLIENT_ID)
    time.sleep(0.3)
    answer = httpx.post(
        fresh_emulator.url + BOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
        },
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_box_code_exchange_with_and_without_redirect_uri(fresh_emulator):
    client, url = fresh_emulator.client, fresh_emulator.url
    for redirect in (REDIRECT, None):
        code = client.authorize("box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
        }
        if redirect:
            data["redirect_uri"] = redirect
        assert httpx.post(url + BOX_TOKEN, data=data).status_code == 200
    code = client.authorize("box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT)
    wrong = httpx.post(
        url + BOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
            "redirect_uri": "http://127.0.0.1:33333",
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_bad_client_secret(fresh_emulator):
    code = fresh_emulator.client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID)
    answer = httpx.post(
        fresh_emulator.url + DROPBOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_DROPBOX_CLIENT_ID,
            "client_secret": "wrong",
        },
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    box = httpx.post(
        fresh_emulator.url + BOX_TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": seed.DEMO_BOX_CCG_CLIENT_ID,
            "client_secret": "wrong",
            "box_subject_type": "enterprise",
            "box_subject_id": seed.DEMO_BOX_ENTERPRISE_ID,
        },
    )
    assert box.status_code == 400 and box.json()["error"] == "invalid_client"


def test_dropbox_refresh_does_not_rotate(fresh_emulator):
    tokens = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    first = httpx.post(fresh_emulator.url + DROPBOX_TOKEN, data=data, auth=DBX_AUTH)
    second = httpx.post(
        fresh_emulator.url + DROPBOX_TOKEN,
        data={**data, "client_id": DBX_AUTH[0], "client_secret": DBX_AUTH[1]},
    )
    assert first.status_code == second.status_code == 200
    assert set(first.json()) == {"access_token", "token_type", "expires_in"}
    assert first.json()["access_token"] != second.json()["access_token"]


def test_box_refresh_rotates_and_is_single_use(fresh_emulator):
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    first = box_refresh(fresh_emulator.url, tokens["refresh_token"])
    assert first.status_code == 200
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    reused = box_refresh(fresh_emulator.url, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "Refresh token has expired"}
    assert box_refresh(fresh_emulator.url, first.json()["refresh_token"]).status_code == 200
    stats = fresh_emulator.client.stats()["box"]["token"]["refresh_token"]
    assert stats == {"ok": 2, "invalid_grant": 1}


def test_box_refresh_grace(fresh_emulator):
    fresh_emulator.client.configure(box_refresh_grace=True)
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    first = box_refresh(fresh_emulator.url, tokens["refresh_token"]).json()
    again = box_refresh(fresh_emulator.url, tokens["refresh_token"])
    assert again.status_code == 200
    assert again.json()["refresh_token"] == first["refresh_token"]
    assert again.json()["access_token"] == first["access_token"]
    users_me = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me",
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert users_me.status_code == 200
    after_use = box_refresh(fresh_emulator.url, tokens["refresh_token"])
    assert after_use.status_code == 400, "grace ends once the new pair is used"


def test_box_refresh_token_expires(fresh_emulator):
    fresh_emulator.client.configure(refresh_token_ttl=0.2)
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    time.sleep(0.3)
    answer = box_refresh(fresh_emulator.url, tokens["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error_description"] == "Refresh token has expired"


def test_jwt_grant_success(fresh_emulator):
    answer = jwt_grant(fresh_emulator.url, jwt_assertion(fresh_emulator.box_jwt_config))
    assert answer.status_code == 200
    body = answer.json()
    assert "refresh_token" not in body and body["token_type"] == "bearer"
    assert "date" in answer.headers
    me = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert me.json()["id"] == seed.DEMO_BOX_JWT_SERVICE_ACCOUNT_ID
    user = jwt_grant(
        fresh_emulator.url,
        jwt_assertion(fresh_emulator.box_jwt_config, box_sub_type="user", sub=seed.DEMO_BOX_SECOND_USER_ID),
    )
    assert user.status_code == 200


def _jwt_error(emulator, **kwargs) -> dict[str, str]:
    answer = jwt_grant(emulator.url, jwt_assertion(emulator.box_jwt_config, **kwargs))
    assert answer.status_code == 400, answer.text
    result: dict[str, str] = answer.json()
    return result


def test_jwt_failures_have_documented_texts(fresh_emulator):
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        ({"key": other_key}, "invalid_grant", "Signature verification error"),
        ({"headers": {"kid": "other-kid"}}, "invalid_grant", "Signature verification error"),
        ({"exp": now + 120}, "invalid_grant", "'exp' value exceeds the maximum value of 60 seconds"),
        (
            {"exp": now - 5},
            "invalid_grant",
            "Current date/time MUST be before the expiration date/time listed in the 'exp' claim",
        ),
        ({"jti": "short"}, "invalid_grant", "Please check the 'jti' claim"),
        ({"aud": "https://example.com/token"}, "invalid_grant", "Please check the 'aud' claim"),
        ({"sub": "999999"}, "unauthorized_client", "This app is not authorized by the enterprise admin."),
        ({"box_sub_type": "user", "sub": "55555"}, "invalid_grant", "Please check the 'sub' claim"),
    ]
    for kwargs, error, text in cases:
        body = _jwt_error(fresh_emulator, **kwargs)
        assert body["error"] == error, (kwargs, body)
        assert text in body["error_description"], (kwargs, body)


def test_jwt_jti_reuse_and_rs512(fresh_emulator):
    assertion = jwt_assertion(fresh_emulator.box_jwt_config, jti="j" * 20, headers={"alg": "RS512"})
    assert jwt_grant(fresh_emulator.url, assertion).status_code == 200
    again = jwt_grant(fresh_emulator.url, assertion)
    assert again.status_code == 400
    assert (
        again.json()["error_description"] == "Please check the 'jti' claim. A unique 'jti' value is required."
    )


def test_ccg_enterprise_user_and_errors(fresh_emulator):
    token = box_ccg_token(fresh_emulator.url)
    me = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.json()["id"] == seed.DEMO_BOX_CCG_SERVICE_ACCOUNT_ID
    user_token = box_ccg_token(fresh_emulator.url, "user", seed.DEMO_BOX_USER_ID)
    me = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me", headers={"Authorization": f"Bearer {user_token}"}
    )
    assert me.json()["id"] == seed.DEMO_BOX_USER_ID
    wrong = httpx.post(
        fresh_emulator.url + BOX_TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": seed.DEMO_BOX_CCG_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CCG_CLIENT_SECRET,
            "box_subject_type": "enterprise",
            "box_subject_id": "1",
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "unauthorized_client"
    stats = fresh_emulator.client.stats()["box"]["token"]["client_credentials"]
    assert stats["ok"] == 2 and stats["unauthorized_client"] == 1


def test_dropbox_revoke_kills_access_and_refresh(fresh_emulator):
    tokens = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    revoke = httpx.post(fresh_emulator.url + "/api.dropboxapi.com/2/auth/token/revoke", headers=headers)
    assert revoke.status_code == 200 and revoke.headers["content-type"] == "application/json"
    after = httpx.post(
        fresh_emulator.url + "/api.dropboxapi.com/2/users/get_current_account", headers=headers
    )
    assert after.status_code == 401 and after.json()["error"][".tag"] == "invalid_access_token"
    refresh = httpx.post(
        fresh_emulator.url + DROPBOX_TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=DBX_AUTH,
    )
    assert refresh.status_code == 400
    assert refresh.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token is invalid or revoked",
    }


def test_box_revoke(fresh_emulator):
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    revoke = httpx.post(
        fresh_emulator.url + "/api.box.com/oauth2/revoke",
        data={
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
            "token": tokens["access_token"],
        },
    )
    assert revoke.status_code == 200 and revoke.content == b""
    me = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 401
    assert box_refresh(fresh_emulator.url, tokens["refresh_token"]).status_code == 400


def test_expired_access_tokens_answer_exact_401s(fresh_emulator):
    fresh_emulator.client.configure(access_token_ttl=0.2)
    dropbox = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)
    box = box_tokens(fresh_emulator.url, fresh_emulator.client)
    time.sleep(0.3)
    answer = httpx.post(
        fresh_emulator.url + "/api.dropboxapi.com/2/users/get_current_account",
        content=b"null",
        headers={"Authorization": f"Bearer {dropbox['access_token']}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="Dropbox-API"'
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error_summary": "expired_access_token/..",
        "error": {".tag": "expired_access_token"},
    }
    answer = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me",
        headers={"Authorization": f"Bearer {box['access_token']}"},
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="Service", error="invalid_token", '
        'error_description="The access token provided is invalid."'
    )
    assert answer.content == b""


def test_expire_control_and_unknown_grant(fresh_emulator):
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    assert fresh_emulator.client.expire_access_tokens(service="box") >= 1
    me = httpx.get(
        fresh_emulator.url + "/api.box.com/2.0/users/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 401
    odd = httpx.post(fresh_emulator.url + BOX_TOKEN, data={"grant_type": "password"})
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"
