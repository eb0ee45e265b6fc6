"""Secrets never leak: hooks and every CLI subcommand at DEBUG, store and export files, the callback server,
PKCE.

Each check searches for the actual values (access and refresh tokens as issued and as rotated, client
secrets, the one-time code, the Box JWT assertion, the PEM key, its passphrase, the export passphrase) in
captured logs, exception messages, reprs and CLI output. Every value found is a leak; the number of leaks is
reported (and must be 0).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.sdk._shared.secrets_masker import redact

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth import jwt as box_jwt
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.cli.callback import CallbackServer
from dropbox_box_provider.cli.errors import CallbackServerError
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import DropboxBoxError, ItemNotFound
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.store import open_store
from tests.cli.helpers import make_home
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port
from tests.helpers.box import box_jwt_connection, box_oauth_connection
from tests.helpers.dropbox import dropbox_connection
from tests.reliability import figures


class Secrets:
    """The secret values of a test run, and the leak search over any text."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, label: str, value: str | None) -> None:
        if value and len(value) >= 6:
            self.values[f"{label}#{len(self.values)}"] = value

    def leaks(self, where: str, text: str) -> list[str]:
        found = [f"{label} in {where}" for label, value in self.values.items() if value in text]
        figures.add("secrets", leaks_found=len(found), searches=len(self.values))
        return found


def _pem_lines(pem: str) -> list[str]:
    """The base64 body lines of a PEM (a leak of any one of them is a leak of key material)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")][:3]


def test_hooks_at_debug_leak_nothing(
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    texts: list[str] = []
    assertions: list[str] = []
    real_build = box_jwt.build_assertion

    def recording_build(*args: Any, **kwargs: Any) -> str:
        assertion = real_build(*args, **kwargs)
        assertions.append(assertion)
        return assertion

    monkeypatch.setattr(box_jwt, "build_assertion", recording_build)
    for name in (
        seed.DEMO_BOX_CLIENT_SECRET,
        seed.DEMO_DROPBOX_CLIENT_SECRET,
        seed.DEMO_BOX_JWT_CLIENT_SECRET,
    ):
        secrets.add("client secret", name)

    box_tokens = box_oauth_connection(monkeypatch, emulator, tmp_path, "sec_box")
    secrets.add("box access", box_tokens.access_token)
    secrets.add("box refresh", box_tokens.refresh_token)
    box = BoxHook("sec_box")
    texts.append(repr(box))
    texts.append(repr(box.get_auth_config()))
    first = box.get_token_set()
    texts.append(repr(first))
    box.refresh_access_token()
    rotated = box.get_token_set()
    for tokens in (first, rotated):
        secrets.add("box access", tokens.access_token)
        secrets.add("box refresh", tokens.refresh_token)
    box.write_bytes(b"secret-free content", "/secrets/a.txt")
    box.download_file("/secrets/a.txt", tmp_path / "a.txt")
    with pytest.raises(ItemNotFound) as missing:
        box.get_file_info("/secrets/missing.txt")
    texts.append(str(missing.value))
    emulator.client.expire_access_tokens("box")  # the next call meets a 401 and refreshes
    box.list_folder("/secrets")
    secrets.add("box access", box.get_token_set().access_token)
    secrets.add("box refresh", box.get_token_set().refresh_token)
    texts.append(repr(box.test_connection()))

    dropbox_tokens = dropbox_connection(monkeypatch, emulator, tmp_path, "sec_dropbox")
    secrets.add("dropbox access", dropbox_tokens.access_token)
    secrets.add("dropbox refresh", dropbox_tokens.refresh_token)
    dropbox = DropboxHook("sec_dropbox")
    secrets.add("dropbox access", dropbox.get_token_set().access_token)
    texts.append(repr(dropbox.test_connection()))
    texts.append(repr(dropbox.get_token_set()))

    box_jwt_connection(monkeypatch, emulator, tmp_path, "sec_jwt")
    jwt_hook = BoxHook("sec_jwt")
    settings = box_jwt.resolve_jwt_settings(jwt_hook.get_auth_config())
    config_json = json.loads(emulator.box_jwt_config.read_text())
    secrets.add("jwt passphrase", config_json["boxAppSettings"]["appAuth"]["passphrase"])
    for line in _pem_lines(config_json["boxAppSettings"]["appAuth"]["privateKey"]):
        secrets.add("PEM line", line)
    # Values read from the app config file reach Airflow's masker the moment they are read.
    app_secrets = [
        config_json["boxAppSettings"]["clientSecret"],
        config_json["boxAppSettings"]["appAuth"]["passphrase"],
        *_pem_lines(config_json["boxAppSettings"]["appAuth"]["privateKey"]),
    ]
    assert [value for value in app_secrets if redact(f"<{value}>") != "<***>"] == []
    secrets.add("jwt access", jwt_hook.get_access_token())
    texts += [repr(settings), repr(jwt_hook.get_auth_config()), repr(jwt_hook.test_connection())]
    assert assertions, "the JWT flow did not run"
    for assertion in assertions:
        secrets.add("JWT assertion", assertion)

    # A failed refresh's message must not echo the refresh token it sent.
    bad = AuthConfig.from_mapping(
        "box",
        {
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
            "endpoint": emulator.url,
        },
        conn_id="sec_bad",
    )
    with pytest.raises(DropboxBoxError) as refused:
        flows.refresh(bad, "not-a-valid-refresh-token-123456")
    secrets.add("sent refresh token", "not-a-valid-refresh-token-123456")
    texts.append(str(refused.value))

    leaks = secrets.leaks("hook logs", caplog.text) + secrets.leaks("messages and reprs", "\n".join(texts))
    assert len(caplog.records) > 10, "nothing was logged: the capture proves nothing"
    assert leaks == []

    # Store files: 0600, and no token in clear in the raw bytes (main file and WAL).
    for conn_id in ("sec_box", "sec_dropbox", "sec_jwt"):
        location = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])["extra"][
            "oauth_settings_location"
        ]
        path = Path(location.removeprefix("sqlite:///"))
        raw = b""
        for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if part.exists():
                assert stat.S_IMODE(part.stat().st_mode) == 0o600, part
                raw += part.read_bytes()
        assert raw, path
        assert secrets.leaks(f"raw store {path.name}", raw.decode("latin-1")) == []


def test_every_cli_subcommand_at_debug_leaks_nothing(emulator: RunningEmulator, tmp_path: Path) -> None:
    secrets = Secrets()
    home = make_home(tmp_path / "home")
    client_id = f"sec-cli-{os.getpid()}"
    client_secret = "cli-client-secret-value-0123"
    secrets.add("client secret", client_secret)
    emulator.client.register_app("box", client_id, client_secret, redirect_uris=["http://127.0.0.1:33333"])
    definition = {
        "conn_type": "box_oauth",
        "login": client_id,
        "password": client_secret,
        "host": emulator.url,
    }
    home.add_connection("bx", definition)
    passphrase = "export passphrase value 42"
    secrets.add("export passphrase", passphrase)
    secrets.add("store key", home.key)
    key_file = tmp_path / "store.key"
    key_file.write_text(home.key + "\n")
    env = {"DROPBOX_BOX_AUTH_PASSPHRASE": passphrase}
    runs: list[tuple[str, int]] = []

    def run(*args: str, stdin: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        proc = home.run(*args, "--debug", stdin=stdin, env={**env, **(extra_env or {})})
        runs.append((args[0], proc.returncode))

    run("url", "bx", "--callback-url", "http://127.0.0.1:33333")
    code = emulator.client.authorize("box", client_id, redirect_uri="http://127.0.0.1:33333")
    secrets.add("authorization code", code)
    run(
        "exchange", "bx", "--key-file", str(key_file), stdin=code + "\n"
    )  # state and redirect recorded by url
    store = open_store(str(home.store_path), home.key)
    record = store.read("bx")
    assert record is not None, runs
    secrets.add("access", record.payload["access_token"])
    secrets.add("refresh", record.payload["refresh_token"])
    run("status")
    run("status", "bx", "--json", extra_env={"DROPBOX_BOX_AUTH_KEY": home.key})
    run("refresh", "bx")
    record = store.read("bx")
    assert record is not None
    secrets.add("access", record.payload["access_token"])
    secrets.add("refresh", record.payload["refresh_token"])
    export = tmp_path / "bx.settings"
    run("export", "bx", "--out", str(export))
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    assert secrets.leaks("export file", export.read_text(encoding="latin-1")) == []
    run("save-connection", "bx")
    run("rotate-keys", "--key-file", str(key_file))
    other = make_home(tmp_path / "other")
    proc = other.run("import", str(export), "--debug", env=env)
    runs.append(("import", proc.returncode))
    home.outputs += other.outputs
    code_two = emulator.client.authorize("box", client_id, redirect_uri="http://127.0.0.1:33333")
    secrets.add("authorization code", code_two)
    run(
        "authorize",
        "bx",
        "--headless",
        "--callback-url",
        "http://127.0.0.1:33333",
        stdin=f"http://127.0.0.1:33333/?code={code_two}&state=wrong-state\n",
    )
    run("exchange", "bx", "")
    run("revoke", "bx")
    assert {name for name, _ in runs} >= {
        "url",
        "exchange",
        "status",
        "refresh",
        "export",
        "save-connection",
        "rotate-keys",
        "import",
        "authorize",
        "revoke",
    }
    succeeded = {name for name, rc in runs if rc == 0}
    assert {"url", "exchange", "status", "refresh", "export", "import", "revoke"} <= succeeded, runs
    assert stat.S_IMODE(home.store_path.stat().st_mode) == 0o600
    raw = home.store_path.read_bytes() + (
        Path(f"{home.store_path}-wal").read_bytes() if Path(f"{home.store_path}-wal").exists() else b""
    )
    assert secrets.leaks("raw CLI store", raw.decode("latin-1")) == []
    assert secrets.leaks("CLI output", "\n".join(home.outputs)) == []


def _get(url: str) -> int:
    return httpx.get(url, timeout=5).status_code


def test_callback_server_is_loopback_only_one_shot_and_checks_state() -> None:
    figures.add("callback server", cases=4)
    with pytest.raises(CallbackServerError):
        CallbackServer("http://0.0.0.0:33333/cb", lambda params: "never")
    with pytest.raises(CallbackServerError):
        CallbackServer("https://example.com/cb", lambda params: "never")

    sent_state = "expected-state-value"
    exchanged: list[str] = []

    def complete(params: dict[str, str]) -> str:
        flows.verify_state(sent_state, params.get("state"), "cb")
        exchanged.append(params["code"])
        return "done"

    port = free_port()
    server = CallbackServer(f"http://localhost:{port}/cb", complete)
    assert server._server.server_address[0] == "127.0.0.1"
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _wait(server, errors), daemon=True)
    thread.start()
    assert _get(f"http://127.0.0.1:{port}/favicon.ico") == 404
    assert _get(f"http://127.0.0.1:{port}/cb") == 400  # no code: ignored, still waiting
    assert _get(f"http://127.0.0.1:{port}/cb?code=abc&state=forged") == 400  # refused, still waiting
    assert _get(f"http://127.0.0.1:{port}/cb?error=access_denied") == 400  # a forged denial cannot end it
    assert exchanged == [] and thread.is_alive() and server.refused == 2
    assert _get(f"http://127.0.0.1:{port}/cb?code=first&state={sent_state}") == 200
    thread.join(10)
    assert not thread.is_alive() and errors == [] and exchanged == ["first"]
    with pytest.raises(httpx.ConnectError):  # one request handled: the server is gone
        httpx.get(f"http://127.0.0.1:{port}/cb?code=abc&state={sent_state}", timeout=5)

    port = free_port()
    server = CallbackServer(f"http://127.0.0.1:{port}/", complete)
    thread = threading.Thread(target=lambda: _wait(server, errors), daemon=True)
    thread.start()
    assert _get(f"http://127.0.0.1:{port}/?code=good&state={sent_state}") == 200
    thread.join(10)
    assert exchanged == ["first", "good"] and server.outcome == "done"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/?code=again&state={sent_state}", timeout=5)


def _wait(server: CallbackServer, errors: list[BaseException]) -> None:
    try:
        server.wait(10)
    except BaseException as exc:
        errors.append(exc)


def test_pkce_whenever_dropbox_has_no_secret() -> None:
    figures.add("pkce", cases=4)
    public = AuthConfig.from_mapping("dropbox", {"client_id": "public-app"}, conn_id="p")
    request = flows.authorization_url(public, callback_url="http://127.0.0.1:33333")
    assert request.code_verifier and "code_challenge_method=S256" in request.url
    assert f"code_challenge={flows.pkce_challenge(request.code_verifier)}" in request.url
    assert request.code_verifier not in request.url
    with pytest.raises(DropboxBoxError):  # a PKCE exchange without its verifier is refused before any request
        flows.exchange_code(public, "some-code")
    confidential = AuthConfig.from_mapping("dropbox", {"client_id": "app", "client_secret": "s3cret-value"})
    assert "code_challenge" not in flows.authorization_url(confidential).url
    box = AuthConfig.from_mapping("box", {"client_id": "app", "client_secret": "s3cret-value"})
    assert "code_challenge" not in flows.authorization_url(box).url


def test_store_url_passwords_never_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A PostgreSQL password in the URL's userinfo or its ``password``/``sslpassword`` query: not in reprs,
    store errors, the backend's warning, CLI output (``--debug`` included) or a trigger's kwargs."""
    from dropbox_box_provider.secrets.token_store import TokenStoreBackend
    from dropbox_box_provider.triggers.token import OAuthTokenTrigger

    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    for value in ("UserinfoPass-771", "QueryPass-772", "SslQueryPass-773"):
        secrets.add("database password", value)
    urls = [
        "postgresql+psycopg://airflow:UserinfoPass-771@127.0.0.1:1/tokens?connect_timeout=1",
        "postgresql://airflow@127.0.0.1:1/tokens?password=QueryPass-772&sslpassword=SslQueryPass-773"
        "&connect_timeout=1",
    ]
    texts: list[str] = []
    home = make_home(tmp_path / "home")
    for url in urls:
        backend = TokenStoreBackend(store=url, key=home.key)
        texts.append(repr(backend))
        assert backend.get_conn_value("any") is None
        with pytest.raises(DropboxBoxError) as failed:
            open_store(url, home.key).list_meta()
        texts.append(str(failed.value))
        config = AuthConfig.from_mapping(
            "box", {"client_id": "a", "client_secret": "b", "oauth_settings_location": url}
        )
        texts.append(repr(config))
        for args in (("status", "--store", url), ("status", "--store", url, "--debug")):
            proc = home.run(*args, env={"DROPBOX_BOX_AUTH_KEY": home.key})
            assert proc.returncode == 1
        texts.append(repr(OAuthTokenTrigger("c", store_ref="connection").serialize()))
    assert "127.0.0.1:1" in "\n".join(home.outputs)  # the store is named, its password is not
    leaks = (
        secrets.leaks("reprs and errors", "\n".join(texts))
        + secrets.leaks("backend warnings", caplog.text)
        + secrets.leaks("CLI output", "\n".join(home.outputs))
    )
    assert leaks == []
