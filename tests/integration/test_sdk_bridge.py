"""``get_sdk_client()``: the official SDKs (dropbox, box-sdk-gen) on a hook's connection, over the emulator.

Every token the SDK clients send comes from the provider's TokenManager and its sqlite store file: a token the
service refuses is renewed through the manager (one store write), the endpoint override and act-as headers
apply, and 16 processes calling through SDK clients share one refresh per token lifetime.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import MissingDependency
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from tests.fixtures.emulator import RunningEmulator
from tests.helpers import box as box_helpers
from tests.helpers import dropbox as dropbox_helpers

dropbox = pytest.importorskip("dropbox")
box_sdk_gen = pytest.importorskip("box_sdk_gen")

WORKERS = 16
TTL = 1.0
DURATION = 4.0  # seconds each worker keeps calling: 4 token lifetimes, 2+ refreshes on a busy machine
MAX_PAUSE = 0.02
TEAM_NAMESPACE = "1000003"  # the demo team member's namespace
HOOKS: dict[str, type[BaseOAuthHook]] = {"dropbox": DropboxHook, "box": BoxHook}


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    return key


@pytest.fixture
def emu(fresh_emulator: RunningEmulator) -> RunningEmulator:
    return fresh_emulator


def store_version(hook: BaseOAuthHook) -> int:
    record = hook.token_store.read(hook.conn_id)
    assert record is not None
    return record.version


def refresh_outcomes(emu: RunningEmulator, service: str) -> dict[str, int]:
    counts = emu.client.stats()[service]["token"].get("refresh_token", {})
    return {outcome: int(n) for outcome, n in counts.items() if n}


def route_statuses(emu: RunningEmulator, service: str, route: str) -> dict[str, int]:
    return {k: int(v) for k, v in emu.client.stats()[service]["routes"].get(route, {}).items() if v}


# ---------------------------------------------------------------------------------------- Dropbox


def test_dropbox_sdk_client_draws_tokens_from_the_manager(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_helpers.dropbox_connection(monkeypatch, emu, tmp_path, "dbx_sdk")
    hook = DropboxHook("dbx_sdk")
    client = hook.get_sdk_client()
    assert isinstance(client, dropbox.Dropbox)
    assert refresh_outcomes(emu, "dropbox") == {}, "building the client makes no request"

    account = client.users_get_current_account()
    assert account.account_id == seed.DEMO_DROPBOX_ACCOUNT_ID
    meta = client.files_upload(b"from the sdk", "/sdk/bridge.txt")
    assert hook.read_bytes("/sdk/bridge.txt") == b"from the sdk"  # the hook sees what the SDK wrote
    _, response = client.files_download(meta.path_lower)
    assert response.content == b"from the sdk"
    # The manager's one refresh (from the connection's seed) served the SDK and the hook alike.
    assert refresh_outcomes(emu, "dropbox") == {"ok": 1}
    token = hook.get_access_token()
    assert token not in repr(client) and token not in repr(client.clone())
    assert client._oauth2_refresh_token is None and client._app_secret is None


def test_dropbox_sdk_client_applies_team_headers_and_clones_stay_managed(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_helpers.dropbox_connection(
        monkeypatch,
        emu,
        tmp_path,
        "dbx_sdk_team",
        client_id=seed.DEMO_DROPBOX_TEAM_CLIENT_ID,
        select_user=seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID,
        path_root=TEAM_NAMESPACE,
    )
    client = DropboxHook("dbx_sdk_team").get_sdk_client()
    assert client.users_get_current_account().email == "member@team.example.com"
    with pytest.raises(dropbox.exceptions.PathRootError):  # the connection's path_root header is sent
        client.with_path_root(
            dropbox.common.PathRoot.namespace_id(seed.DEMO_DROPBOX_NAMESPACE_ID)
        ).users_get_current_account()
    root = client.with_path_root(dropbox.common.PathRoot.namespace_id(TEAM_NAMESPACE))
    assert root.users_get_current_account().email == "member@team.example.com"
    emu.client.expire_access_tokens(service="dropbox")
    assert root.users_get_current_account().email == "member@team.example.com"  # the clone renews too
    assert refresh_outcomes(emu, "dropbox") == {"ok": 2}


def test_dropbox_expired_token_inside_the_sdk_client_is_renewed_through_the_manager(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dropbox_helpers.dropbox_connection(monkeypatch, emu, tmp_path, "dbx_sdk_expired")
    hook = DropboxHook("dbx_sdk_expired")
    client = hook.get_sdk_client()
    client.users_get_current_account()
    before, token = store_version(hook), hook.get_access_token()
    assert emu.client.expire_access_tokens(service="dropbox") >= 1

    assert client.users_get_current_account().account_id == seed.DEMO_DROPBOX_ACCOUNT_ID
    assert route_statuses(emu, "dropbox", "/2/users/get_current_account") == {"200": 2, "401": 1}
    assert store_version(hook) == before + 1, "one fenced write: the new token"
    assert refresh_outcomes(emu, "dropbox") == {"ok": 2}
    assert hook.get_access_token() != token
    assert token not in caplog.text and hook.get_access_token() not in caplog.text
    # Another process's hook reads the renewed token from the store: no further refresh.
    hook.token_manager.forget()
    assert DropboxHook("dbx_sdk_expired").get_sdk_client().users_get_current_account()
    assert refresh_outcomes(emu, "dropbox") == {"ok": 2}


# ---------------------------------------------------------------------------------------- Box


def test_box_sdk_client_draws_tokens_from_the_manager(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    import io

    from box_sdk_gen import BoxClient, UploadFileAttributes, UploadFileAttributesParentField

    box_helpers.box_oauth_connection(monkeypatch, emu, tmp_path, "box_sdk")
    hook = BoxHook("box_sdk")
    client = hook.get_sdk_client()
    assert isinstance(client, BoxClient)
    assert client.users.get_user_me().id == seed.DEMO_BOX_USER_ID
    uploaded = client.uploads.upload_file(
        UploadFileAttributes(name="sdk.txt", parent=UploadFileAttributesParentField(id="0")),
        io.BytesIO(b"from the sdk"),
    )
    assert hook.read_bytes("/sdk.txt") == b"from the sdk"  # the hook sees what the SDK wrote
    assert client.downloads.download_file(uploaded.entries[0].id).read() == b"from the sdk"
    assert refresh_outcomes(emu, "box") == {"ok": 1}
    token = hook.get_access_token()
    assert client.auth.retrieve_token().access_token == token
    assert client.auth.retrieve_token().refresh_token is None, "the SDK never holds the refresh token"
    assert token not in repr(client.auth)


def test_box_sdk_client_acts_as_the_connection_user(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    box_helpers.box_oauth_connection(
        monkeypatch, emu, tmp_path, "box_sdk_as_user", as_user=seed.DEMO_BOX_SECOND_USER_ID
    )
    hook = BoxHook("box_sdk_as_user")
    assert hook.get_sdk_client().users.get_user_me().id == seed.DEMO_BOX_SECOND_USER_ID
    admin = BoxHook("box_sdk_as_user").as_user(seed.DEMO_BOX_USER_ID).get_sdk_client()
    assert admin.users.get_user_me().id == seed.DEMO_BOX_USER_ID
    # The SDK's own impersonation keeps the managed auth and the emulator's base URLs.
    other = admin.with_as_user_header(seed.DEMO_BOX_SECOND_USER_ID)
    assert other.users.get_user_me().id == seed.DEMO_BOX_SECOND_USER_ID
    assert refresh_outcomes(emu, "box") == {"ok": 1}


def test_box_expired_token_inside_the_sdk_client_is_renewed_through_the_manager(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    box_helpers.box_oauth_connection(monkeypatch, emu, tmp_path, "box_sdk_expired")
    emu.client.configure(box_refresh_grace=False)
    hook = BoxHook("box_sdk_expired")
    client = hook.get_sdk_client()
    client.users.get_user_me()
    before, token = store_version(hook), hook.get_access_token()
    assert emu.client.expire_access_tokens(service="box") >= 1

    assert client.users.get_user_me().id == seed.DEMO_BOX_USER_ID
    assert route_statuses(emu, "box", "/2.0/users/me") == {"200": 2, "401": 1}
    assert store_version(hook) == before + 1, "one fenced write: the new token pair"
    assert refresh_outcomes(emu, "box") == {"ok": 2}
    assert hook.get_access_token() != token
    assert token not in caplog.text and hook.get_access_token() not in caplog.text
    # The rotated refresh token reached the store: another process's hook renews from it.
    hook.token_manager.forget()
    emu.client.expire_access_tokens(service="box")
    assert BoxHook("box_sdk_expired").get_sdk_client().users.get_user_me().id == seed.DEMO_BOX_USER_ID
    assert refresh_outcomes(emu, "box") == {"ok": 3}


def test_box_revoke_through_the_sdk_revokes_the_connection(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    from box_sdk_gen import BoxClient, BoxDeveloperTokenAuth

    box_helpers.box_oauth_connection(monkeypatch, emu, tmp_path, "box_sdk_revoke")
    hook = BoxHook("box_sdk_revoke")
    client = hook.get_sdk_client()
    client.users.get_user_me()
    token = hook.get_access_token()
    client.auth.revoke_token()
    assert hook.token_store.read("box_sdk_revoke") is None, "the store forgot the revoked grant"
    plain = BoxClient(auth=BoxDeveloperTokenAuth(token=token), network_session=client.network_session)
    # A 401 makes the SDK ask its (developer-token) auth for a new token, which it cannot give.
    with pytest.raises(box_sdk_gen.BoxSDKError, match="Developer token has expired"):
        plain.users.get_user_me()
    assert route_statuses(emu, "box", "/2.0/users/me") == {"200": 1, "401": 1}


def test_box_service_account_token_is_renewed_through_the_manager(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    box_helpers.box_ccg_connection(monkeypatch, emu, tmp_path, "box_sdk_ccg")
    client = BoxHook("box_sdk_ccg").get_sdk_client()
    assert client.users.get_user_me().id == seed.DEMO_BOX_CCG_SERVICE_ACCOUNT_ID
    emu.client.expire_access_tokens(service="box")
    assert client.users.get_user_me().id == seed.DEMO_BOX_CCG_SERVICE_ACCOUNT_ID
    assert emu.client.stats()["box"]["token"]["client_credentials"]["ok"] == 2


def test_box_downscope_exchanges_the_managers_token_at_the_connections_endpoint(
    monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    """The emulator has no token exchange: the refusal shows where the SDK sent the request and that the
    connection's own token stays as it was."""
    box_helpers.box_oauth_connection(monkeypatch, emu, tmp_path, "box_sdk_downscope")
    hook = BoxHook("box_sdk_downscope")
    client = hook.get_sdk_client()
    token = hook.get_access_token()
    with pytest.raises(box_sdk_gen.BoxAPIError) as caught:
        client.auth.downscope_token(["item_preview"])
    assert caught.value.response_info.status_code == 400
    exchange = "urn:ietf:params:oauth:grant-type:token-exchange"
    assert emu.client.stats()["box"]["token"][exchange] == {
        "ok": 0,
        "invalid_grant": 0,
        "unsupported_grant_type": 1,
    }
    assert hook.get_access_token() == token


# ---------------------------------------------------------------------------------------- the manager's side


def test_workers_refused_the_same_token_make_one_refresh(
    emu: RunningEmulator, sqlite_store_url: str, store_key: str
) -> None:
    """``TokenManager.replace_rejected``: the first worker to report a refused token renews it; the next
    finds the store no longer holds it and takes the new one (Box grace off: a second refresh would fail)."""
    from dropbox_box_provider.auth import flows
    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.store import open_store

    emu.client.configure(box_refresh_grace=False)
    fields = {
        "client_id": seed.DEMO_BOX_CLIENT_ID,
        "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
        "endpoint": emu.url,
        "callback_url": box_helpers.CALLBACK,
        "initiate_oauth": "REFRESH",
        "refresh_margin": 0,
    }
    config = AuthConfig.from_mapping("box", fields, conn_id="box_rejected")
    code = emu.client.authorize("box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=box_helpers.CALLBACK)
    tokens = flows.exchange_code(config, code, callback_url=box_helpers.CALLBACK)
    first, second = (TokenManager(open_store(sqlite_store_url, store_key)) for _ in range(2))
    first.store_tokens("box_rejected", config, tokens)
    refused = second.get_valid_token("box_rejected", config).access_token
    version = first.store.read("box_rejected").version  # type: ignore[union-attr]
    emu.client.expire_access_tokens(service="box")

    renewed = first.replace_rejected("box_rejected", config, refused)
    again = second.replace_rejected("box_rejected", config, refused)
    assert renewed.access_token == again.access_token != refused
    assert refresh_outcomes(emu, "box") == {"ok": 1}
    assert first.store.read("box_rejected").version == version + 1  # type: ignore[union-attr]
    # A refused token is never handed back, even while it looks valid by the clock.
    newest = second.replace_rejected("box_rejected", config, renewed.access_token)
    assert newest.access_token != renewed.access_token
    assert refresh_outcomes(emu, "box") == {"ok": 2}


# ---------------------------------------------------------------------------------------- missing SDK


@pytest.mark.parametrize("service, module", [("dropbox", "dropbox"), ("box", "box_sdk_gen")])
def test_a_missing_sdk_says_which_extra_to_install(
    service: str, module: str, monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path
) -> None:
    if service == "dropbox":
        dropbox_helpers.dropbox_connection(monkeypatch, emu, tmp_path, "sdk_missing")
    else:
        box_helpers.box_oauth_connection(monkeypatch, emu, tmp_path, "sdk_missing")
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when the package is absent
    with pytest.raises(MissingDependency, match=r"pip install 'airflow-provider-dropbox-box\[sdk\]'"):
        HOOKS[service]("sdk_missing").get_sdk_client()
    with pytest.raises(ImportError):  # still an ImportError for code that guards optional imports
        HOOKS[service]("sdk_missing").get_sdk_client()


# ---------------------------------------------------------------------------------------- 16 processes


def call_me(service: str, client: Any) -> None:
    if service == "box":
        client.users.get_user_me()
    else:
        client.users_get_current_account()


def sdk_worker(
    service: str, conn_id: str, env: dict[str, str], seed_: int, barrier: Any, results: Any
) -> None:
    """A child process: its own hook and SDK client on the shared store file; calls "me" for DURATION s."""
    errors: list[str] = []
    calls = 0
    try:
        os.environ.update(env)
        hook = HOOKS[service](conn_id)
        hook.token_store.list_meta()  # open the store file now, not in the measured part
        client = hook.get_sdk_client()
        rng = random.Random(seed_)
        barrier.wait(120)
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            try:
                call_me(service, client)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
            calls += 1
            time.sleep(rng.uniform(0, MAX_PAUSE))
    except BaseException as exc:
        errors.append(f"worker crashed: {type(exc).__name__}: {exc}")
    results.put({"calls": calls, "errors": errors})


def _sdk_connection(
    service: str, emu: RunningEmulator, tmp_path: Path, conn_id: str, key: str
) -> dict[str, str]:
    """The environment every worker gets: the connection (no seed token: the store is authorized below),
    refresh margin 0, the shared sqlite store file, the Fernet key."""
    store = f"sqlite:///{tmp_path / 'shared-tokens.db'}"
    if service == "box":
        body: dict[str, Any] = {
            "conn_type": "box_oauth",
            "login": seed.DEMO_BOX_CLIENT_ID,
            "password": seed.DEMO_BOX_CLIENT_SECRET,
            "extra": {"auth_scheme": "oauth", "callback_url": box_helpers.CALLBACK},
        }
    else:
        body = {
            "conn_type": "dropbox",
            "login": seed.DEMO_DROPBOX_CLIENT_ID,
            "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
            "extra": {},
        }
    body["host"] = emu.url
    body["extra"].update({"initiate_oauth": "REFRESH", "refresh_margin": 0, "oauth_settings_location": store})
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(body),
        "AIRFLOW__CORE__FERNET_KEY": key,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
    }


def _authorize(service: str, emu: RunningEmulator, hook: BaseOAuthHook) -> None:
    """What `dropbox-box-auth authorize` does once: consent, code exchange, tokens saved in the store."""
    if service == "box":
        code = emu.client.authorize("box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=box_helpers.CALLBACK)
        hook.get_access_token_from_code(code, callback_url=box_helpers.CALLBACK)
    else:
        code = emu.client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID, token_access_type="offline")
        hook.get_access_token_from_code(code)


@pytest.mark.slow
@pytest.mark.parametrize("service", ["box", "dropbox"])
def test_16_processes_share_one_refresh_per_token_lifetime_through_sdk_clients(
    service: str, monkeypatch: pytest.MonkeyPatch, emu: RunningEmulator, tmp_path: Path, airflow_settings: str
) -> None:
    conn_id = f"{service}_sdk_fleet"
    env = _sdk_connection(service, emu, tmp_path, conn_id, airflow_settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emu.client.configure(access_token_ttl=TTL, box_refresh_grace=False)
    context = multiprocessing.get_context("forkserver")
    # Children fork from a server that already imported the hooks, the SDKs and SQLAlchemy: quick starts.
    context.set_forkserver_preload([__name__, "dropbox_box_provider.store.sql", "dropbox", "box_sdk_gen"])
    barrier = context.Barrier(WORKERS + 1)
    results_queue = context.Queue()
    children = [
        context.Process(
            target=sdk_worker,
            args=(service, conn_id, env, n, barrier, results_queue),
            daemon=True,
        )
        for n in range(WORKERS)
    ]
    for child in children:
        child.start()
    try:
        issued = time.monotonic()  # the first token's lifetime starts with this authorization
        _authorize(service, emu, HOOKS[service](conn_id))
        barrier.wait(120)
        results = [results_queue.get(timeout=120) for _ in children]
        elapsed = time.monotonic() - issued
        for child in children:
            child.join(10)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join(5)

    outcomes = refresh_outcomes(emu, service)
    grants = outcomes.pop("ok", 0)
    lifetimes = elapsed / TTL
    errors = [e for r in results for e in r["errors"]]
    calls = sum(r["calls"] for r in results)
    me = "/2.0/users/me" if service == "box" else "/2/users/get_current_account"
    figures = {
        "grants": grants,
        "lifetimes": round(lifetimes, 2),
        "grants_per_lifetime": round(grants / lifetimes, 3),
        "calls": calls,
        "statuses": route_statuses(emu, service, me),
    }
    print(f"sdk bridge {service} figures: {figures}")
    assert errors == [], errors[:5]
    assert outcomes == {}, f"refreshes refused (invalid_grant): {outcomes}"
    assert grants >= 2, f"the run never outlived two tokens: it proves nothing {figures}"
    assert grants / lifetimes <= 1.05, figures
    assert figures["statuses"].get("200", 0) == calls, figures
