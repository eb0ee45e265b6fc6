"""Control plane: apps, config, faults (429/5xx/delay/drop), stats, reset, in-thread runner, --state."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import BOX_TOKEN, box_ccg_token, box_tokens, dropbox_tokens, jwt_assertion
from tests.fixtures.emulator import start_emulator_process, stop_process


def test_startup_prints_jwt_config_and_writes_it_0600(emulator):
    config = json.loads(emulator.box_jwt_config.read_text())
    assert config["boxAppSettings"]["clientID"] == seed.DEMO_BOX_JWT_CLIENT_ID
    assert config["boxAppSettings"]["appAuth"]["publicKeyID"] == seed.DEMO_BOX_JWT_KID
    assert "ENCRYPTED PRIVATE KEY" in config["boxAppSettings"]["appAuth"]["privateKey"]
    assert config["enterpriseID"] == seed.DEMO_BOX_ENTERPRISE_ID
    assert stat.S_IMODE(os.stat(emulator.box_jwt_config).st_mode) == 0o600


def test_register_app_with_public_key_and_users(fresh_emulator):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = fresh_emulator.client.register_app(
        "box", "my-jwt", "my-secret", public_keys={"k1": pem.decode()}, enterprise_id="777", users=["30001"]
    )
    assert app["service_account_id"] and app["users"] == ["30001"]
    now = int(time.time())
    assertion = jwt_assertion(
        fresh_emulator.box_jwt_config,
        key=key,
        headers={"kid": "k1"},
        iss="my-jwt",
        sub="30001",
        box_sub_type="user",
        exp=now + 50,
    )
    answer = httpx.post(
        fresh_emulator.url + BOX_TOKEN,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion,
            "client_id": "my-jwt",
            "client_secret": "my-secret",
        },
    )
    assert answer.status_code == 200, answer.text
    fresh_emulator.client.reset()
    after_reset = httpx.post(
        fresh_emulator.url + BOX_TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "my-jwt",
            "client_secret": "my-secret",
            "box_subject_type": "enterprise",
            "box_subject_id": "777",
        },
    )
    assert after_reset.json()["error"] == "invalid_client", "reset drops apps registered after the seed"


def test_config_validation_and_answer(fresh_emulator):
    config = fresh_emulator.client.configure(access_token_ttl=5, box_refresh_grace=True)
    assert config["dropbox_access_token_ttl"] == config["box_access_token_ttl"] == 5
    assert config["box_refresh_grace"] is True and config["code_ttl"] == 30
    with pytest.raises(RuntimeError, match="unknown config key"):
        fresh_emulator.client.configure(nonsense=1)
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    assert tokens["expires_in"] == 5


def test_fault_429_box_and_dropbox_shapes(fresh_emulator):
    client = fresh_emulator.client
    client.fault("/api.box.com/2.0/users/me", status=429, retry_after=7)
    token = box_ccg_token(fresh_emulator.url)
    headers = {"Authorization": f"Bearer {token}"}
    limited = httpx.get(fresh_emulator.url + "/api.box.com/2.0/users/me", headers=headers)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["code"] == "rate_limit_exceeded" and limited.json()["type"] == "error"
    assert httpx.get(fresh_emulator.url + "/api.box.com/2.0/users/me", headers=headers).status_code == 200
    client.fault("*/oauth2/token", status=429, retry_after=3, count=2)
    for _ in range(2):
        answer = httpx.post(fresh_emulator.url + "/api.dropboxapi.com/oauth2/token", data={})
        assert answer.status_code == 429 and answer.headers["retry-after"] == "3"
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {
            "error_summary": "too_many_requests/..",
            "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 3},
        }
    assert httpx.post(fresh_emulator.url + "/api.dropboxapi.com/oauth2/token", data={}).status_code == 400
    routes = client.stats()["box"]["routes"]["/2.0/users/me"]
    assert routes == {"429": 1, "200": 1}


@pytest.mark.parametrize("status", [500, 503])
def test_fault_5xx(fresh_emulator, status):
    fresh_emulator.client.fault("/api.box.com/oauth2/token", status=status)
    answer = httpx.post(fresh_emulator.url + BOX_TOKEN, data={})
    assert answer.status_code == status and answer.json()["status"] == status
    fresh_emulator.client.fault("/api.dropboxapi.com/*", status=status)
    answer = httpx.post(fresh_emulator.url + "/api.dropboxapi.com/2/users/get_current_account")
    assert answer.status_code == status


def test_fault_delay_and_drop(fresh_emulator):
    fresh_emulator.client.fault("/api.box.com/2.0/users/me", delay=0.5)
    started = time.monotonic()
    answer = httpx.get(fresh_emulator.url + "/api.box.com/2.0/users/me")
    assert answer.status_code == 401 and time.monotonic() - started >= 0.45
    fresh_emulator.client.fault("*/oauth2/token", drop=True)
    with pytest.raises(httpx.TransportError):
        httpx.post(fresh_emulator.url + BOX_TOKEN, data={"grant_type": "client_credentials"})
    assert httpx.post(fresh_emulator.url + BOX_TOKEN, data={}).status_code == 400, (
        "only the next request drops"
    )
    assert fresh_emulator.client.stats()["box"]["routes"]["/oauth2/token"]["0"] == 1


def test_reset_zeroes_stats_and_faults(fresh_emulator):
    box_ccg_token(fresh_emulator.url)
    fresh_emulator.client.fault("*", status=500, count=5)
    fresh_emulator.client.reset()
    stats = fresh_emulator.client.stats()
    assert stats["box"]["requests"] == 0 and stats["box"]["token"]["client_credentials"]["ok"] == 0
    box_ccg_token(fresh_emulator.url)


def test_control_errors_are_400(fresh_emulator):
    bad = httpx.post(fresh_emulator.url + "/_emulator/apps", json={"service": "gdrive", "client_id": "x"})
    assert bad.status_code == 400 and "service" in bad.json()["error"]
    with pytest.raises(RuntimeError, match="redirect_uri"):
        fresh_emulator.client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID, redirect_uri="http://evil")
    with pytest.raises(RuntimeError, match="needs status"):
        fresh_emulator.client.fault("*")


def test_in_thread_emulator(emulator_thread):
    emulator_thread.client.reset()
    token = box_ccg_token(emulator_thread.url)
    me = httpx.get(
        emulator_thread.url + "/api.box.com/2.0/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.status_code == 200
    assert emulator_thread.box_jwt_config.exists()


def test_state_file_persists_apps_tokens_and_files():
    with tempfile.TemporaryDirectory() as tmp:
        state_file = Path(tmp) / "state.json"
        process, url = start_emulator_process(Path(tmp), ["--state", str(state_file)])
        try:
            httpx.post(
                url + "/_emulator/apps",
                json={
                    "service": "box",
                    "client_id": "kept",
                    "client_secret": "s",
                    "enterprise_id": seed.DEMO_BOX_ENTERPRISE_ID,
                },
            )
            token = box_ccg_token(url)
            created = httpx.post(
                url + "/api.box.com/2.0/folders",
                json={"name": "Kept", "parent": {"id": "0"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201
        finally:
            stop_process(process)
        saved = json.loads(state_file.read_text())
        assert any(app["client_id"] == "kept" for app in saved["apps"])
        process, url = start_emulator_process(Path(tmp), ["--state", str(state_file)])
        try:
            items = httpx.get(
                url + "/api.box.com/2.0/folders/0/items", headers={"Authorization": f"Bearer {token}"}
            )
            assert items.status_code == 200, "the access token survived the restart"
            assert [e["name"] for e in items.json()["entries"]] == ["Kept"]
        finally:
            stop_process(process)


def test_a_long_poll_whose_client_went_away_ends_and_leaves_the_in_flight_count(fresh_emulator):
    """A Box real-time poll or a Dropbox longpoll whose client closed the connection ends at once instead
    of waiting out its timeout: it no longer counts as in flight (a leftover poll of an earlier test used to
    hold the session emulator's count one above what the next test's client sends)."""
    box = box_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    dropbox = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    with httpx.Client(base_url=fresh_emulator.url, timeout=30) as client:
        client.get("/api.box.com/2.0/events", params={"stream_position": "now"}, headers=_bearer(box))
        realtime = client.options("/api.box.com/2.0/events", headers=_bearer(box)).json()["entries"][0]["url"]
        cursor = client.post(
            "/api.dropboxapi.com/2/files/list_folder/get_latest_cursor",
            json={"path": ""},
            headers=_bearer(dropbox),
        ).json()["cursor"]
    polls = [
        ("GET", realtime, None),
        ("POST", "/notify.dropboxapi.com/2/files/list_folder/longpoll", {"cursor": cursor, "timeout": 480}),
    ]
    for method, url, body in polls:
        with (
            httpx.Client(base_url=fresh_emulator.url, timeout=0.5) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            client.request(method, url, json=body)  # the client gives up and closes the connection
    time.sleep(1.0)
    fresh_emulator.client.clear_stats()
    with httpx.Client(base_url=fresh_emulator.url) as client:
        client.get("/api.box.com/2.0/users/me", headers=_bearer(box))
        client.post("/api.dropboxapi.com/2/users/get_current_account", headers=_bearer(dropbox))
    stats = fresh_emulator.client.stats()
    assert stats["box"]["max_in_flight"] == 1 and stats["dropbox"]["max_in_flight"] == 1


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
