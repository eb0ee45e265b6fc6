"""In-process tests of the CLI parts that need no Airflow: settings-file crypto, callback server, parsing."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import httpx
import pytest

from dropbox_box_provider.cli import envelope
from dropbox_box_provider.cli.authorize import code_from_pasted
from dropbox_box_provider.cli.callback import CallbackServer, listen_address
from dropbox_box_provider.cli.errors import (
    AuthorizationDenied,
    AuthorizationTimeout,
    CallbackServerError,
    SettingsFileError,
)
from dropbox_box_provider.cli.main import build_parser
from dropbox_box_provider.cli.output import duration, until
from dropbox_box_provider.errors import StateMismatch
from tests.fixtures.environment import free_port

CONTENT = {
    "conn_id": "c",
    "connection": {"conn_type": "dropbox"},
    "tokens": {"access_token": "sl.secret-value"},
}


def test_envelope_round_trip_hides_the_content() -> None:
    sealed = envelope.seal(CONTENT, "correct horse")
    assert b"sl.secret-value" not in sealed and b"conn_type" not in sealed
    header = json.loads(sealed)
    assert header["version"] == 1 and header["kdf"]["name"] == "scrypt" and len(header["kdf"]["salt"]) >= 22
    assert envelope.open_envelope(sealed, "correct horse", "f") == CONTENT
    assert envelope.seal(CONTENT, "correct horse") != sealed  # random salt


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(data=e["data"][:-4] + ("AAAA" if not e["data"].endswith("AAAA") else "BBBB")),
        lambda e: e["kdf"].update(salt="AAAAAAAAAAAAAAAAAAAAAA=="),
        lambda e: e["kdf"].update(n=2**14),
    ],
    ids=["ciphertext", "salt", "work-factor"],
)
def test_any_modification_fails_decryption(change: object) -> None:
    document = json.loads(envelope.seal(CONTENT, "correct horse"))
    change(document)  # type: ignore[operator]
    with pytest.raises(SettingsFileError, match="passphrase is wrong or the file was modified"):
        envelope.open_envelope(json.dumps(document).encode(), "correct horse", "f")


def test_wrong_passphrase_bad_header_and_foreign_files_are_clear_errors() -> None:
    sealed = envelope.seal(CONTENT, "correct horse")
    with pytest.raises(SettingsFileError, match="passphrase is wrong"):
        envelope.open_envelope(sealed, "wrong horse", "f")
    document = json.loads(sealed)
    document["kdf"]["n"] = 2**30
    with pytest.raises(SettingsFileError, match="key-derivation header is invalid"):
        envelope.open_envelope(json.dumps(document).encode(), "correct horse", "f")
    document["version"] = 9
    with pytest.raises(SettingsFileError, match="format version 9"):
        envelope.open_envelope(json.dumps(document).encode(), "correct horse", "f")
    with pytest.raises(SettingsFileError, match="not a dropbox-box-auth settings file"):
        envelope.open_envelope(b"[1, 2]", "correct horse", "f")


def test_write_private_is_0600_and_never_clobbers(tmp_path: Path) -> None:
    target = tmp_path / "out.settings"
    envelope.write_private(str(target), b"one", overwrite=False)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(SettingsFileError, match="already exists"):
        envelope.write_private(str(target), b"two", overwrite=False)
    assert target.read_bytes() == b"one"
    envelope.write_private(str(target), b"two", overwrite=True)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["out.settings"]  # no temp file left behind


def _serve(server: CallbackServer, timeout: float) -> dict[str, object]:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = server.wait(timeout)
        except Exception as exc:  # the test inspects it
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    result["thread"] = thread
    return result


def test_callback_server_ignores_stray_requests_and_answers_one_redirect() -> None:
    port = free_port()
    seen: list[dict[str, str]] = []

    def complete(params: dict[str, str]) -> str:
        seen.append(params)
        return "Connected."

    server = CallbackServer(f"http://localhost:{port}/cb", complete)
    result = _serve(server, 30)
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/favicon.ico").status_code == 404
    assert httpx.get(f"{base}/cb").status_code == 400
    answer = httpx.get(f"{base}/cb?code=c0de&state=s")
    assert answer.status_code == 200 and "Connected." in answer.text
    result["thread"].join(10)  # type: ignore[attr-defined]
    assert result["value"] == "Connected." and seen == [{"code": "c0de", "state": "s"}]


def test_callback_server_reports_the_completion_error() -> None:
    port = free_port()

    def complete(params: dict[str, str]) -> str:
        if params.get("state") != "sent":
            raise StateMismatch("c")
        raise AuthorizationDenied("access to Box was denied in the browser")

    result = _serve(CallbackServer(f"http://localhost:{port}", complete), 30)
    page = httpx.get(f"http://127.0.0.1:{port}/?code=x&state=forged")
    assert page.status_code == 400 and "state does not match" in page.text  # refused; still waiting
    page = httpx.get(f"http://127.0.0.1:{port}/?error=access_denied&state=sent")
    assert page.status_code == 400 and "denied in the browser" in page.text
    result["thread"].join(10)  # type: ignore[attr-defined]
    assert isinstance(result["error"], AuthorizationDenied)


def test_callback_server_binds_loopback_only_and_fails_cleanly() -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        with pytest.raises(CallbackServerError, match="already in use"):
            CallbackServer(f"http://localhost:{port}", lambda p: "")
    with pytest.raises(CallbackServerError, match="serves only"):
        listen_address("https://airflow.example.com/oauth")
    server = CallbackServer(f"http://localhost:{port}", lambda p: "")
    assert server._server.server_address[0] == "127.0.0.1"
    with pytest.raises(AuthorizationTimeout, match=r"within 0\.3 s"):
        server.wait(0.3)


def test_pasted_code_or_redirected_address() -> None:
    assert code_from_pasted(" abc123 \n") == ("abc123", {})
    assert code_from_pasted("http://localhost:33333/?code=xyz&state=s") == (
        "xyz",
        {"code": "xyz", "state": "s"},
    )
    assert code_from_pasted("?error=access_denied")[1] == {"error": "access_denied"}
    assert code_from_pasted("\n") == (None, {})


def test_durations_and_every_subcommand_has_examples() -> None:
    assert duration(14399) == "3h 59m" and duration(61) == "1m 01s" and duration(90000) == "1d 1h"
    assert until(None) == "never" and until(0.0, now=60.0) == "expired 1m 00s ago"
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():  # type: ignore[attr-defined]
        text = sub.format_help()
        assert "examples:" in text and f"dropbox-box-auth {name}" in text, name
