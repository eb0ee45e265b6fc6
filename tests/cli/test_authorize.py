"""``authorize``: desktop flow through a real callback server and the headless flow through stdin."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.cli.helpers import CliHome, code_on_page, consent, error_line, follow, read_url, unique
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port

pytestmark = pytest.mark.airflow


def _dropbox_app(emulator: RunningEmulator, callback: str, secret: str | None = None) -> str:
    client_id = unique("cli-dropbox")
    emulator.client.register_app("dropbox", client_id, secret, redirect_uris=[callback])
    return client_id


def _box_app(emulator: RunningEmulator, callback: str) -> tuple[str, str]:
    client_id, secret = unique("cli-box"), unique("box-secret")
    emulator.client.register_app("box", client_id, secret, redirect_uris=[callback])
    return client_id, secret


def _connection(conn_type: str, emulator: RunningEmulator, login: str, **extra: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "conn_type": conn_type,
        "login": login,
        "host": emulator.url,
        "extra": extra,
    }
    if "password" in extra:
        definition["password"] = extra.pop("password")
    return definition


def test_desktop_dropbox_pkce_stores_tokens_and_names_the_account(
    home: CliHome, emulator: RunningEmulator
) -> None:
    callback = f"http://localhost:{free_port()}"
    home.add_connection(
        "db", _connection("dropbox", emulator, _dropbox_app(emulator, callback), callback_url=callback)
    )
    proc = home.start("authorize", "db", "--no-browser", "--timeout", "60")
    lines: list[str] = []
    url = read_url(proc, lines)
    assert "code_challenge=" in url and "code_challenge_method=S256" in url
    assert httpx.get(f"{callback}/favicon.ico", timeout=10).status_code == 404
    page = follow(consent(url))
    assert page.status_code == 200 and "Authorization complete" in page.text
    code, out, err = home.finish(proc)
    assert code == 0, err
    assert "Connected 'db' to Dropbox as Demo User <demo@example.com>" in out
    assert "expires in 3h" in out
    tokens = home.stored_tokens("db")
    assert tokens is not None and tokens["refresh_token"] and tokens["account_id"].startswith("dbid:")
    assert tokens["extra"]["account"].startswith("Demo User")
    home.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"])


def test_desktop_box_with_callback_override(home: CliHome, emulator: RunningEmulator) -> None:
    callback = f"http://127.0.0.1:{free_port()}/cb"
    client_id, secret = _box_app(emulator, callback)
    home.add_connection("bx", _connection("box_oauth", emulator, client_id, password=secret))
    proc = home.start("authorize", "bx", "--no-browser", "--callback-url", callback, "--timeout", "60")
    url = read_url(proc, [])
    page = follow(consent(url))
    assert "Authorization complete" in page.text
    code, out, err = home.finish(proc)
    assert code == 0, err
    assert "to Box as Demo User" in out
    tokens = home.stored_tokens("bx")
    assert tokens is not None and tokens["refresh_token"]
    home.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"], secret)


def test_consent_denied_exits_non_zero_and_stores_nothing(home: CliHome, emulator: RunningEmulator) -> None:
    callback = f"http://localhost:{free_port()}"
    home.add_connection(
        "db", _connection("dropbox", emulator, _dropbox_app(emulator, callback), callback_url=callback)
    )
    proc = home.start("authorize", "db", "--no-browser", "--timeout", "60")
    page = follow(consent(read_url(proc, []), decision="deny"))
    assert page.status_code == 400 and "access_denied" in page.text
    code, _, err = home.finish(proc)
    assert code == 1
    assert "denied in the browser" in error_line(err)
    assert not home.store_path.exists() or home.stored_tokens("db") is None


def test_state_mismatch_is_refused(home: CliHome, emulator: RunningEmulator) -> None:
    callback = f"http://localhost:{free_port()}"
    home.add_connection(
        "db", _connection("dropbox", emulator, _dropbox_app(emulator, callback), callback_url=callback)
    )
    proc = home.start("authorize", "db", "--no-browser", "--timeout", "8")
    read_url(proc, [])
    forged = httpx.get(f"{callback}/?code=forged-code&state=not-the-state", timeout=10)
    assert forged.status_code == 400 and "state" in forged.text
    code, _, err = home.finish(proc)  # refused and ignored: only the person's own redirect ends the wait
    assert code == 1 and "1 redirect(s) whose state does not match were refused" in error_line(err)
    assert not home.store_path.exists() or home.stored_tokens("db") is None


def test_port_in_use_and_timeout_fail_cleanly(home: CliHome, emulator: RunningEmulator) -> None:
    port = free_port()
    callback = f"http://localhost:{port}"
    home.add_connection(
        "db", _connection("dropbox", emulator, _dropbox_app(emulator, callback), callback_url=callback)
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        proc = home.run("authorize", "db", "--no-browser", "--timeout", "5")
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in error_line(proc.stderr)
    assert "http" not in proc.stdout  # failed before any URL was handed out

    proc = home.run("authorize", "db", "--no-browser", "--timeout", "1")
    assert proc.returncode == 1
    assert "no authorization redirect reached" in error_line(proc.stderr)
    assert not home.store_path.exists() or home.stored_tokens("db") is None


def test_headless_dropbox_reads_the_displayed_code(home: CliHome, emulator: RunningEmulator) -> None:
    client_id = _dropbox_app(emulator, "http://localhost:1")  # headless: no redirect at all
    home.add_connection("db", _connection("dropbox", emulator, client_id))
    proc = home.start("authorize", "db", "--headless", stdin=True)
    url = read_url(proc, [])
    assert "redirect_uri" not in url and "code_challenge=" in url
    pasted = code_on_page(consent(url))  # shown on the other device's screen
    code, out, err = home.finish(proc, pasted + "\n")
    assert code == 0, err
    assert "Connected 'db' to Dropbox" in out
    tokens = home.stored_tokens("db")
    assert tokens is not None and tokens["refresh_token"]
    home.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"], pasted)


def test_headless_box_takes_the_redirected_address(home: CliHome, emulator: RunningEmulator) -> None:
    callback = f"http://localhost:{free_port()}"
    client_id, secret = _box_app(emulator, callback)
    home.add_connection(
        "bx", _connection("box_oauth", emulator, client_id, password=secret, callback_url=callback)
    )
    proc = home.start("authorize", "bx", "--headless", stdin=True)
    url = read_url(proc, [])
    redirect = consent(url)
    assert redirect.status_code == 302  # nothing listens there: the person copies the address bar
    code, out, err = home.finish(proc, redirect.headers["location"] + "\n")
    assert code == 0, err
    assert "Connected 'bx' to Box as Demo User" in out
    assert "paste it here" in err
    tokens = home.stored_tokens("bx")
    assert tokens is not None and tokens["refresh_token"]
    home.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"], secret)


def test_headless_pasted_address_with_wrong_state_is_refused(
    home: CliHome, emulator: RunningEmulator
) -> None:
    callback = f"http://localhost:{free_port()}"
    client_id, secret = _box_app(emulator, callback)
    home.add_connection(
        "bx", _connection("box_oauth", emulator, client_id, password=secret, callback_url=callback)
    )
    proc = home.run("authorize", "bx", "--headless", stdin=f"{callback}/?code=abc&state=stale\n")
    assert proc.returncode == 1 and "state does not match" in error_line(proc.stderr)
    assert not home.store_path.exists() or home.stored_tokens("bx") is None
