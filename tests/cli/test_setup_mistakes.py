"""The setup steps people miss (docs/setup-dropbox.md, docs/setup-box.md), each against the emulator: the
message the provider gives must say what to do next, and the guide must show that same message."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import AuthConfigError, DropboxBoxError, ItemNotFound
from tests.cli.helpers import CliHome, error_line, read_url, unique
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port

DOCS = Path(__file__).parents[2] / "docs"


def in_guide(guide: str, fragment: str) -> None:
    """The guide shows the user the message they will see (kept in step with the code by this test)."""
    text = " ".join((DOCS / guide).read_text().split())
    assert " ".join(fragment.split()) in text, f"{guide} no longer shows: {fragment}"


@pytest.fixture
def hook_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Connections in AIRFLOW_CONN_* variables; tokens in the default sqlite store of a temporary home."""
    from dropbox_box_provider.secrets.token_store import forget_configured_backend
    from dropbox_box_provider.store.factory import forget_open_stores

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    forget_configured_backend()
    yield monkeypatch
    forget_open_stores()
    forget_configured_backend()


def connect(monkeypatch: pytest.MonkeyPatch, conn_id: str, definition: dict[str, object]) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(definition))
    return conn_id


def dropbox_refresh_token(emulator: RunningEmulator, client_id: str, secret: str) -> str:
    config = AuthConfig(service="dropbox", client_id=client_id, client_secret=secret, endpoint=emulator.url)
    code = emulator.client.authorize("dropbox", client_id, token_access_type="offline")
    token = flows.exchange_code(config, code).refresh_token
    assert token
    return token


@pytest.mark.airflow
def test_redirect_uri_not_registered(home: CliHome, emulator: RunningEmulator) -> None:
    client_id, secret = unique("setup-box"), unique("secret")
    emulator.client.register_app("box", client_id, secret, redirect_uris=["https://example.com/oauth"])
    callback = f"http://localhost:{free_port()}"
    home.add_connection(
        "box_user",
        {"conn_type": "box_oauth", "login": client_id, "password": secret, "host": emulator.url,
         "extra": {"callback_url": callback}},
    )  # fmt: skip
    proc = home.start("authorize", "box_user", "--no-browser", "--timeout", "3")
    url = read_url(proc, [])
    page = httpx.get(url, timeout=30)  # what the browser shows instead of the consent page
    assert "redirect_uri" in page.text
    code, _, err = home.finish(proc)
    assert code == 1
    message = error_line(err)
    assert f"register {callback} as a redirect URI of the app" in message
    assert "callback_url" in message
    in_guide("setup-box.md", f"register {callback.rsplit(':', 1)[0]}")
    in_guide("setup-box.md", "as a redirect URI of the app")
    in_guide("setup-dropbox.md", "as a redirect URI of the app")


def test_dropbox_scope_not_granted(hook_env: pytest.MonkeyPatch, emulator: RunningEmulator) -> None:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    client_id, secret = unique("setup-dbx"), unique("secret")
    emulator.client.register_app(
        "dropbox", client_id, secret, scopes=["account_info.read", "files.metadata.read"]
    )
    refresh = dropbox_refresh_token(emulator, client_id, secret)
    conn_id = connect(
        hook_env,
        "dbx_scoped",
        {"conn_type": "dropbox", "login": client_id, "password": secret, "host": emulator.url,
         "extra": {"initiate_oauth": "REFRESH", "refresh_token": refresh}},
    )  # fmt: skip
    hook = DropboxHook(conn_id)
    assert hook.list_folder("/") is not None  # files.metadata.read was granted
    with pytest.raises(DropboxBoxError) as caught:
        hook.write_bytes("/reports/a.csv", b"a")
    message = str(caught.value)
    assert "missing_scope" in message and "files.content.write" in message
    assert "Permissions tab" in message
    assert f"dropbox-box-auth authorize {conn_id}" in message
    in_guide(
        "setup-dropbox.md",
        "needs the scope files.content.write, which this connection's token was not granted",
    )


def test_box_app_not_authorized_by_the_admin(hook_env: pytest.MonkeyPatch, emulator: RunningEmulator) -> None:
    from dropbox_box_provider.hooks.box import BoxHook

    client_id, secret = unique("setup-ccg"), unique("secret")
    emulator.client.register_app("box", client_id, secret)  # no enterprise: no admin has authorized it
    conn_id = connect(
        hook_env,
        "box_ccg",
        {"conn_type": "box_oauth", "login": client_id, "password": secret, "host": emulator.url,
         "extra": {"auth_scheme": "ccg", "subject_id": seed.DEMO_BOX_ENTERPRISE_ID}},
    )  # fmt: skip
    with pytest.raises(AuthConfigError) as caught:
        BoxHook(conn_id).get_access_token()
    message = str(caught.value)
    assert "unauthorized_client" in message
    assert "Admin Console" in message and "Platform Apps Manager" in message
    assert "Client ID" in message
    in_guide("setup-box.md", "must be authorized by an enterprise admin: Admin Console → Integrations")


def test_box_service_account_not_collaborated(
    hook_env: pytest.MonkeyPatch, emulator: RunningEmulator
) -> None:
    from dropbox_box_provider.hooks.box import BoxHook

    config = AuthConfig(
        service="box",
        client_id=seed.DEMO_BOX_CLIENT_ID,
        client_secret=seed.DEMO_BOX_CLIENT_SECRET,
        endpoint=emulator.url,
        callback_url=seed.DEMO_REDIRECT_URIS[0],
    )
    code = emulator.client.authorize(
        "box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=seed.DEMO_REDIRECT_URIS[0], user_id=seed.DEMO_BOX_USER_ID
    )
    refresh = flows.exchange_code(config, code, callback_url=config.callback_url).refresh_token
    user = connect(
        hook_env,
        "box_person",
        {"conn_type": "box_oauth", "login": seed.DEMO_BOX_CLIENT_ID, "password": seed.DEMO_BOX_CLIENT_SECRET,
         "host": emulator.url, "extra": {"initiate_oauth": "REFRESH", "refresh_token": refresh}},
    )  # fmt: skip
    folder = f"/{unique('Reports')}"
    BoxHook(user).write_bytes(b"q3", f"{folder}/q3.csv")
    jwt = {"auth_scheme": "jwt", "jwt_cert": str(emulator.box_jwt_config), "jwt_cert_type": "JSONFILE"}
    service = connect(hook_env, "box_sa", {"conn_type": "box_oauth", "host": emulator.url, "extra": jwt})
    with pytest.raises(ItemNotFound) as caught:
        BoxHook(service).get_file_info(f"{folder}/q3.csv")
    message = str(caught.value)
    assert "service account" in message
    assert "invite the service account" in message and "collaborator" in message
    assert "as_user" in message
    assert "invite the service account AutomationUser_" in message and "@boxdevedition.com" in message
    in_guide("setup-box.md", "acts as the app's service account, which sees only its own files and folders")


def test_dropbox_app_folder_app_outside_its_folder(
    hook_env: pytest.MonkeyPatch, emulator: RunningEmulator
) -> None:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    demo_id, demo_secret = seed.DEMO_DROPBOX_CLIENT_ID, seed.DEMO_DROPBOX_CLIENT_SECRET
    full = connect(
        hook_env,
        "dbx_full",
        {"conn_type": "dropbox", "login": demo_id, "password": demo_secret, "host": emulator.url,
         "extra": {"initiate_oauth": "REFRESH",
                   "refresh_token": dropbox_refresh_token(emulator, demo_id, demo_secret)}},
    )  # fmt: skip
    folder = f"/{unique('reports')}"
    DropboxHook(full).write_bytes(f"{folder}/q3.csv", b"q3")
    client_id, secret = unique("setup-appfolder"), unique("secret")
    emulator.client.register_app("dropbox", client_id, secret, app_folder=True)
    scoped = connect(
        hook_env,
        "dbx_app_folder",
        {"conn_type": "dropbox", "login": client_id, "password": secret, "host": emulator.url,
         "extra": {"initiate_oauth": "REFRESH",
                   "refresh_token": dropbox_refresh_token(emulator, client_id, secret)}},
    )  # fmt: skip
    hook = DropboxHook(scoped)
    with pytest.raises(ItemNotFound) as caught:
        hook.get_metadata(f"{folder}/q3.csv")
    message = str(caught.value)
    assert "App folder" in message and "/Apps/" in message
    hook.write_bytes(f"{folder}/mine.csv", b"inside")  # its own folder works, with the same path form
    assert hook.read_bytes(f"{folder}/mine.csv") == b"inside"
    assert not DropboxHook(full).exists(f"{folder}/mine.csv")  # elsewhere than the full-access view's
    in_guide("setup-dropbox.md", "if the app has App folder access, its paths start inside /Apps/")
