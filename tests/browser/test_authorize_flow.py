"""The desktop authorize flow with a real browser: ``dropbox-box-auth authorize --no-browser`` prints the URL,
Chromium opens it, a click on the emulator's consent page redirects to the CLI's callback server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import Screenshots
from tests.cli.helpers import CliHome, make_home, read_url, unique
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.airflow]

SERVICES = {
    # conn_type, consent page heading, what the CLI says on success
    "dropbox": ("dropbox", "Dropbox (emulator)", "to Dropbox as Demo User"),
    "box": ("box_oauth", "Box (emulator)", "to Box as Demo User"),
}


@pytest.fixture
def home(tmp_path: Path) -> CliHome:
    """An isolated AIRFLOW_HOME whose connections come from AIRFLOW_CONN_* variables."""
    return make_home(tmp_path / "home")


def connect(home: CliHome, emulator: RunningEmulator, service: str) -> tuple[str, str | None]:
    """Register an app whose redirect URI is a free local port; define connection ``conn`` for it."""
    callback = f"http://localhost:{free_port()}"
    client_id = unique(f"browser-{service}")
    secret = unique("secret") if service == "box" else None  # Dropbox: a PKCE app without a secret
    emulator.client.register_app(service, client_id, secret, redirect_uris=[callback])
    definition: dict[str, Any] = {
        "conn_type": SERVICES[service][0],
        "login": client_id,
        "host": emulator.url,
        "extra": {"callback_url": callback},
    }
    if secret:
        definition["password"] = secret
    home.add_connection("conn", definition)
    return callback, secret


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_allow_in_browser_stores_tokens(
    service: str, home: CliHome, emulator: RunningEmulator, page: Page, screenshots: Screenshots
) -> None:
    _, heading, says = SERVICES[service]
    callback, secret = connect(home, emulator, service)
    proc = home.start("authorize", "conn", "--no-browser", "--timeout", "60")
    try:
        with screenshots.on_failure(page):
            url = read_url(proc, [])
            page.goto(url)
            page.get_by_role("heading", name=heading).wait_for()
            page.screenshot(path=str(screenshots.path(f"{service}-consent")))
            page.get_by_role("button", name="Allow").click()
            page.get_by_role("heading", name="Authorization complete").wait_for()
            assert page.url.startswith(callback), page.url
            assert says in page.locator("#message").inner_text()
            page.screenshot(path=str(screenshots.path(f"{service}-complete")))
        code, out, err = home.finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert code == 0, f"{err}\n{screenshots.note()}"
    assert f"Connected 'conn' {says}" in out
    tokens = home.stored_tokens("conn")
    assert tokens is not None and tokens["access_token"] and tokens["refresh_token"]
    home.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"], secret)


def test_deny_in_browser_stores_nothing(
    home: CliHome, emulator: RunningEmulator, page: Page, screenshots: Screenshots
) -> None:
    callback, _ = connect(home, emulator, "dropbox")
    proc = home.start("authorize", "conn", "--no-browser", "--timeout", "60")
    try:
        with screenshots.on_failure(page):
            page.goto(read_url(proc, []))
            page.get_by_role("button", name="Deny").click()
            page.get_by_role("heading", name="Authorization failed").wait_for()
            assert page.url.startswith(callback) and "error=access_denied" in page.url, page.url
            page.screenshot(path=str(screenshots.path("dropbox-denied")))
        code, _, err = home.finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert code == 1, f"{err}\n{screenshots.note()}"
    assert "denied in the browser" in err
    assert "Traceback" not in err
    assert not home.store_path.exists() or home.stored_tokens("conn") is None
