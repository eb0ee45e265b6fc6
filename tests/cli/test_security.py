"""Issue 21 in the CLI: ``state`` is checked before anything else on every path, ``url`` records the pending
authorization in the token store (so it travels with export/import), and keys, verifiers and codes have
safe inputs (files, environment, stdin) while the command-line forms warn."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.store.factory import open_store
from tests.cli.helpers import CliHome, consent, error_line, follow, make_home, read_url, unique
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port

pytestmark = pytest.mark.airflow

ARGV_WARNING = "visible to other users (ps) and in shell history"


def _box(home: CliHome, emulator: RunningEmulator, callback: str, conn_id: str = "bx") -> str:
    client_id, secret = unique("sec-box"), unique("box-secret")
    emulator.client.register_app("box", client_id, secret, redirect_uris=[callback])
    home.add_connection(
        conn_id,
        {
            "conn_type": "box_oauth",
            "login": client_id,
            "password": secret,
            "host": emulator.url,
            "extra": {"callback_url": callback},
        },
    )
    return secret


def _pkce_dropbox(home: CliHome, emulator: RunningEmulator, callback: str, conn_id: str = "db") -> None:
    client_id = unique("sec-dropbox")
    emulator.client.register_app("dropbox", client_id, None, redirect_uris=[callback])
    home.add_connection(
        conn_id,
        {
            "conn_type": "dropbox",
            "login": client_id,
            "host": emulator.url,
            "extra": {"callback_url": callback},
        },
    )


# ----------------------------------------------------------------------------- 3. state first


def test_desktop_callback_ignores_an_error_redirect_without_the_state(
    home: CliHome, emulator: RunningEmulator
) -> None:
    callback = f"http://localhost:{free_port()}"
    _box(home, emulator, callback)
    proc = home.start("authorize", "bx", "--no-browser", "--timeout", "60")
    url = read_url(proc, [])
    forged = httpx.get(f"{callback}/?error=access_denied", timeout=10)  # any web page can send this
    assert forged.status_code == 400 and "state" in forged.text
    page = follow(consent(url))  # the person's real consent still completes the authorization
    assert page.status_code == 200 and "Authorization complete" in page.text
    code, out, err = home.finish(proc)
    assert code == 0, err
    assert "Connected 'bx' to Box" in out
    assert home.stored_tokens("bx") is not None


def test_headless_error_redirect_without_the_state_is_a_state_mismatch(
    home: CliHome, emulator: RunningEmulator
) -> None:
    callback = f"http://localhost:{free_port()}"
    _box(home, emulator, callback)
    proc = home.run("authorize", "bx", "--headless", stdin=f"{callback}/?error=access_denied\n")
    assert proc.returncode == 1
    line = error_line(proc.stderr)
    assert "state does not match" in line and "denied" not in line


def test_exchange_checks_the_state_url_recorded_without_state_option(
    home: CliHome, emulator: RunningEmulator
) -> None:
    callback = f"http://localhost:{free_port()}"
    _box(home, emulator, callback)
    shown = home.run("url", "bx", "--json")
    assert shown.returncode == 0, shown.stderr
    request = json.loads(shown.stdout)
    forged = f"{callback}/?code=some-code&state=forged-state-value"
    refused = home.run("exchange", "bx", stdin=forged + "\n")
    assert refused.returncode == 1 and "state does not match" in error_line(refused.stderr)
    denied = home.run("exchange", "bx", stdin=f"{callback}/?error=access_denied\n")
    assert denied.returncode == 1 and "state does not match" in error_line(denied.stderr)
    assert home.stored_tokens("bx") is None
    redirected = consent(request["url"]).headers["location"]  # Box codes live ~30 s: consent just now
    done = home.run("exchange", "bx", stdin=redirected + "\n")  # no --state, no --callback-url
    assert done.returncode == 0, done.stderr
    assert "Connected 'bx' to Box" in done.stdout
    again = home.run("exchange", "bx", stdin=redirected + "\n")  # the pending state is used once
    assert again.returncode == 1 and "no pending authorization" in error_line(again.stderr)


def test_pending_authorization_travels_with_export_and_import(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    callback = f"http://localhost:{free_port()}"
    desktop, headless = make_home(tmp_path / "desktop"), make_home(tmp_path / "headless")
    _pkce_dropbox(desktop, emulator, callback)
    headless.env.update({k: v for k, v in desktop.env.items() if k.startswith("AIRFLOW_CONN_")})
    shown = desktop.run("url", "db", "--json")
    assert shown.returncode == 0, shown.stderr
    request = json.loads(shown.stdout)
    assert request["code_verifier"]
    env = {"DROPBOX_BOX_AUTH_PASSPHRASE": "transfer passphrase 1234"}
    settings = tmp_path / "db.settings"
    exported = desktop.run("export", "db", "--out", str(settings), env=env)
    assert exported.returncode == 0, exported.stderr
    imported = headless.run("import", str(settings), env=env)
    assert imported.returncode == 0, imported.stderr
    redirected = consent(request["url"]).headers["location"]
    done = headless.run("exchange", "db", stdin=redirected + "\n")  # verifier and state from the store
    assert done.returncode == 0, done.stderr
    assert "Connected 'db' to Dropbox" in done.stdout
    headless.assert_no_secret_printed(request["code_verifier"])


def test_status_lists_no_pending_authorization_row(home: CliHome, emulator: RunningEmulator) -> None:
    _box(home, emulator, f"http://localhost:{free_port()}")
    assert home.run("url", "bx").returncode == 0
    listed = home.run("status", "--json")
    assert [row["conn_id"] for row in json.loads(listed.stdout)] == []


# ----------------------------------------------------------------------------- 4. keys and codes off argv


def _displayed_code(emulator: RunningEmulator, url: str) -> str:
    """The code Dropbox's no-redirect page shows after Allow (the emulator issues it for the URL's PKCE)."""
    params = dict(parse_qsl(urlsplit(url).query))
    return emulator.client.authorize(
        "dropbox",
        params["client_id"],
        code_challenge=params["code_challenge"],
        code_challenge_method="S256",
        token_access_type="offline",
    )


def test_key_from_file_or_environment_and_a_warning_for_key_on_argv(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    path = str(tmp_path / "tokens.db")
    open_store(path, old).write(
        "c", "dropbox", {"access_token": "at-key-input"}, expected_version=None, expires_at=None,
        refresh_issued_at=None, seed_fingerprint=None,
    )  # fmt: skip
    home = make_home(tmp_path / "home")
    key_file = tmp_path / "keys"
    key_file.write_text(f"{new},{old}\n")
    by_file = home.run("rotate-keys", "--store", path, "--key-file", str(key_file))
    assert by_file.returncode == 0, by_file.stderr
    assert ARGV_WARNING not in by_file.stderr
    by_env = home.run("status", "--store", path, "--json", env={"DROPBOX_BOX_AUTH_KEY": new})
    assert by_env.returncode in (0, 1) and "cannot be decrypted" not in by_env.stdout, by_env.stdout
    assert ARGV_WARNING not in by_env.stderr
    by_argv = home.run("rotate-keys", "--store", path, f"--key={new}")
    assert by_argv.returncode == 0, by_argv.stderr
    assert ARGV_WARNING in by_argv.stderr and "--key-file" in by_argv.stderr
    home.assert_no_secret_printed(old, new)
    missing = home.run("rotate-keys", "--store", path, "--key-file", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "cannot read the key file" in error_line(missing.stderr)


def test_exchange_reads_the_code_from_stdin_and_warns_about_argv_code_and_verifier(
    home: CliHome, emulator: RunningEmulator
) -> None:
    _pkce_dropbox(home, emulator, "http://localhost:1", conn_id="db")
    shown = home.run("url", "db", "--callback-url", "", "--json")  # Dropbox's no-redirect flow
    assert shown.returncode == 0, shown.stderr
    request = json.loads(shown.stdout)
    code = _displayed_code(emulator, request["url"])
    by_stdin = home.run("exchange", "db", stdin=code + "\n")  # bare code: no state, verifier from the store
    assert by_stdin.returncode == 0, by_stdin.stderr
    assert ARGV_WARNING not in by_stdin.stderr

    verifier_file = home.airflow.home / "verifier"
    shown = home.run("url", "db", "--callback-url", "", "--json")
    request = json.loads(shown.stdout)
    verifier_file.write_text(request["code_verifier"] + "\n")
    code = _displayed_code(emulator, request["url"])
    by_argv = home.run("exchange", "db", code, "--code-verifier", request["code_verifier"], "--force")
    assert by_argv.returncode == 0, by_argv.stderr
    assert by_argv.stderr.count(ARGV_WARNING) == 2, by_argv.stderr
