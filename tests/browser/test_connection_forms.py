"""The connection forms in Airflow's real UI: Admin → Connections → Add for "Dropbox" and "Box (OAuth)",
built from the provider's declarative conn-fields; saved values checked over REST, reopened in the form,
and the row's Test button run against the emulator (``[core] test_connection = Enabled``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from dropbox_box_provider.auth.fields import FIELD_SPECS, SPECS_BY_NAME, iter_extra_specs
from dropbox_box_provider.emulator import seed
from tests.browser.conftest import Screenshots
from tests.fixtures.airflow import AirflowEnv, ApiServer, clone_airflow_env, start_api_server, stop_api_server
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.dropbox import dropbox_tokens

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Locator, Page, Route

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.slow]

MASK = "***"


@pytest.fixture(scope="module")
def ui_server(airflow_template: AirflowEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An api-server (SimpleAuthManager, everyone admin) whose Test button is enabled."""
    airflow = clone_airflow_env(airflow_template, tmp_path_factory.mktemp("browser_ui_home"))
    airflow.env["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
    server = start_api_server(airflow)
    try:
        yield server
    finally:
        stop_api_server(server)


@dataclass
class ConnectionsPage:
    """Admin → Connections of the React UI, driven by roles and labels like a person would."""

    page: Page
    base_url: str
    port_fixes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dialog(self) -> Locator:
        return self.page.get_by_role("dialog")

    def open(self) -> None:
        self.page.goto(f"{self.base_url}/connections")
        self.page.get_by_role("button", name="Add Connection").wait_for()

    def add(self, conn_id: str, type_name: str) -> None:
        """Open the Add dialog, name the connection and pick its type from the searchable select."""
        self.page.get_by_role("button", name="Add Connection").click()
        self.dialog.get_by_label("Connection ID").fill(conn_id)
        self.dialog.get_by_role("combobox", name="Connection Type").fill(type_name)
        self.page.get_by_role("option", name=type_name, exact=True).click()
        self.dialog.get_by_role("button", name="Standard Fields").wait_for()

    def section(self, name: str) -> Locator:
        """Expand accordion section ``name`` (one is open at a time) and return its region."""
        trigger = self.dialog.get_by_role("button", name=name, exact=True)
        if trigger.get_attribute("aria-expanded") != "true":
            trigger.click()
        # Not by role and name: the trigger's id holds a space, which breaks the region's aria-labelledby.
        region = self.dialog.locator(f"[id='{trigger.get_attribute('aria-controls')}']")
        region.wait_for()
        return region

    def select(self, label: str, option: str) -> None:
        self.dialog.get_by_role("combobox", name=label).click()
        self.page.get_by_role("option", name=option, exact=True).click()
        assert self.extra_input(label_to_name(label)).input_value() == option

    def extra_input(self, name: str) -> Locator:
        # The UI's labels of extras point at a generated id, not at the input: address inputs by name.
        return self.dialog.locator(f"[name='element_{name}']")

    def save(self) -> None:
        self.dialog.get_by_role("button", name="Save").click()
        self.dialog.wait_for(state="hidden")

    def row(self, conn_id: str) -> Locator:
        return self.page.get_by_role("row").filter(
            has=self.page.get_by_role("cell", name=conn_id, exact=True)
        )

    def edit(self, conn_id: str) -> None:
        self.row(conn_id).get_by_role("button", name="Edit Connection").click()
        self.dialog.get_by_role("heading", name="Edit Connection").wait_for()

    def close_dialog(self) -> None:
        self.dialog.get_by_role("button", name="Close").click()
        self.dialog.wait_for(state="hidden")

    def press_test(self, conn_id: str) -> dict[str, Any]:
        """Press the row's Test button; the endpoint's answer (the toast is checked by the caller)."""
        self.page.route("**/api/v2/connections/test", self._portless_test_body)
        with self.page.expect_response("**/api/v2/connections/test") as answer:
            self.row(conn_id).get_by_role("button", name="Test Connection").click()
        response = answer.value
        assert response.ok, f"POST /connections/test answered {response.status}: {response.text()}"
        result: dict[str, Any] = response.json()
        return result

    def _portless_test_body(self, route: Route) -> None:
        """Drop the ``port: 0`` the row's Test button sends for a connection without a port.

        The UI sends ``Number(null)``; Airflow 3.3.2 then sees a changed endpoint and refuses to reuse the
        stored secrets (400), for every port-less connection type. Fixed upstream in apache/airflow#73298
        by treating 0 as no port, which is all this does; it is a no-op on a fixed Airflow.
        """
        body = route.request.post_data_json
        if isinstance(body, dict) and body.get("port") == 0:
            self.port_fixes.append(body)
            body = {k: v for k, v in body.items() if k != "port"}
            route.continue_(post_data=json.dumps(body))
            return
        route.continue_()


def label_to_name(label: str) -> str:
    """The stored name of the extra the form labels ``label``."""
    return next(spec.name for spec in FIELD_SPECS if spec.label == label)


def rest_connection(server: ApiServer, conn_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v2/connections/{conn_id}", timeout=30)
    assert response.status_code == 200, response.text
    connection: dict[str, Any] = response.json()
    connection["extra"] = json.loads(connection["extra"] or "{}")
    return connection


def set_values(extra: dict[str, Any]) -> dict[str, Any]:
    """The extras that hold a value (the form saves every field, empty ones as null)."""
    return {key: value for key, value in extra.items() if value is not None}


def check_form_matches_fields(ui: ConnectionsPage, service: str, absent: tuple[str, ...]) -> None:
    """Every extra of ``service`` shows with its label and description, in the specs' order; secrets are
    password inputs; the scopes placeholder is this service's."""
    extras = ui.section("Extra Fields")
    specs = list(iter_extra_specs(service))
    for spec in specs:
        assert extras.get_by_text(spec.label, exact=True).is_visible(), f"label {spec.label!r} missing"
        assert extras.get_by_text(spec.description, exact=True).is_visible(), f"help of {spec.name} missing"
        if spec.secret:
            kind = ui.extra_input(spec.name).get_attribute("type")
            assert kind == "password", f"secret {spec.name} is a {kind} input"
    for label in absent:
        assert extras.get_by_text(label, exact=True).count() == 0, f"{label!r} belongs to the other service"
    shown = [
        name.removeprefix("element_")
        for name in extras.locator("[name^='element_']").evaluate_all("els => els.map(e => e.name)")
    ]
    assert [name for name in shown if name in {s.name for s in specs}] == [s.name for s in specs]  # order
    # Airflow 3.3 shows an extra's hint as the suggestions of its input (schema examples).
    suggested = ui.dialog.locator("[id='list_scopes'] option").evaluate_all("els => els.map(e => e.value)")
    assert suggested == [SPECS_BY_NAME["scopes"].placeholder_for(service)]
    scopes = suggested[0]
    assert ("files." in scopes) is (service == "dropbox") and ("root_" in scopes) is (service == "box")


def check_empty_choice_is_labelled(ui: ConnectionsPage, label: str, unset: str) -> None:
    """An optional dropdown offers its empty choice by what it means, never as the word "null"."""
    ui.dialog.get_by_role("combobox", name=label).click()
    options = [o.strip() for o in ui.page.get_by_role("option").all_inner_texts()]
    assert "null" not in options, options
    assert unset in options, options
    ui.page.get_by_role("option", name=unset, exact=True).click()  # choosing it leaves the field empty
    assert ui.extra_input(label_to_name(label)).input_value() in ("", "__null__")  # the UI's null


def check_standard_fields(standard: Locator, login: str, secret: str, service: str) -> None:
    """Dropbox says App key / App secret, Box Client ID / Client secret; Host shows no emulator URL."""
    assert standard.get_by_label(login, exact=True).is_visible()
    assert standard.get_by_label(secret, exact=True).get_attribute("type") == "password"
    host = standard.get_by_label("Endpoint override (optional)").get_attribute("placeholder") or ""
    assert host == f"empty: the real {service}" and "127.0.0.1" not in host


def expect_success_toast(page: Page, says: str) -> None:
    toast = page.get_by_role("status").filter(has_text="Test Connection Successful")
    toast.wait_for()
    assert says in toast.inner_text()


def test_dropbox_form_saves_reopens_and_tests(
    page: Page,
    ui_server: ApiServer,
    fresh_emulator: RunningEmulator,
    screenshots: Screenshots,
    tmp_path: Path,
) -> None:
    emu = fresh_emulator
    tokens = dropbox_tokens(emu)
    assert tokens.refresh_token
    store = f"sqlite:///{tmp_path / 'dropbox_tokens.db'}"
    ui = ConnectionsPage(page, ui_server.url)
    with screenshots.on_failure(page):
        ui.open()
        ui.add("dropbox_ui", "Dropbox")
        standard = ui.section("Standard Fields")
        check_standard_fields(standard, "App key", "App secret", "Dropbox")
        standard.get_by_label("App key", exact=True).fill(seed.DEMO_DROPBOX_CLIENT_ID)
        standard.get_by_label("App secret", exact=True).fill(seed.DEMO_DROPBOX_CLIENT_SECRET)
        shot_standard = screenshots.path("dropbox-standard")
        ui.dialog.screenshot(path=str(shot_standard))  # as for the real Dropbox: Host empty
        standard.get_by_label("Endpoint override (optional)").fill(emu.url)

        check_form_matches_fields(ui, "dropbox", absent=("JWT key type", "Act as user", "Subject ID"))
        check_empty_choice_is_labelled(ui, "Access type", "(default: offline)")
        ui.select("Initiate OAuth", "REFRESH")
        ui.select("Access type", "offline")
        ui.extra_input("refresh_token").fill(tokens.refresh_token)
        ui.extra_input("scopes").fill("files.metadata.read files.content.read")
        ui.extra_input("oauth_settings_location").fill(store)
        ui.dialog.get_by_role("spinbutton", name="Refresh margin (seconds)").fill("120")
        shot_extras = screenshots.path("dropbox-extras")
        ui.dialog.screenshot(path=str(shot_extras))
        form = screenshots.stack(page, "dropbox-form", [shot_standard, shot_extras])
        screenshots.publish(form, "dropbox_form.png")
        ui.save()

        stored = rest_connection(ui_server, "dropbox_ui")
        assert (stored["conn_type"], stored["login"], stored["host"]) == (
            "dropbox",
            seed.DEMO_DROPBOX_CLIENT_ID,
            emu.url,
        )
        assert stored["password"] == MASK  # saved, and redacted on the way out
        assert set_values(stored["extra"]) == {
            "auth_scheme": "oauth",
            "initiate_oauth": "REFRESH",
            "access_type": "offline",
            "refresh_token": MASK,
            "scopes": "files.metadata.read files.content.read",
            "oauth_settings_location": store,
            "refresh_margin": 120,
        }

        ui.edit("dropbox_ui")
        assert ui.dialog.locator("[name='login']").input_value() == seed.DEMO_DROPBOX_CLIENT_ID
        assert ui.dialog.locator("[name='host']").input_value() == emu.url
        ui.section("Extra Fields")
        assert ui.extra_input("initiate_oauth").input_value() == "REFRESH"
        assert ui.extra_input("access_type").input_value() == "offline"
        assert ui.extra_input("oauth_settings_location").input_value() == store
        assert ui.extra_input("refresh_token").input_value() == MASK
        ui.dialog.screenshot(path=str(screenshots.path("dropbox-reopened")))
        ui.close_dialog()

        # Success needs the saved secret and refresh token: the emulator refreshes with both.
        result = ui.press_test("dropbox_ui")
        assert result["status"] is True, result
        assert re.search(r"Connected to Dropbox as Demo User <demo@example\.com>", result["message"])
        expect_success_toast(page, "Connected to Dropbox as Demo User")
        page.screenshot(path=str(screenshots.path("dropbox-tested")))
    assert tokens.refresh_token not in ui_server.log_tail(200_000)


def test_box_jwt_form_saves_reopens_and_tests(
    page: Page,
    ui_server: ApiServer,
    fresh_emulator: RunningEmulator,
    screenshots: Screenshots,
    tmp_path: Path,
) -> None:
    emu = fresh_emulator
    store = f"sqlite:///{tmp_path / 'box_tokens.db'}"
    ui = ConnectionsPage(page, ui_server.url)
    with screenshots.on_failure(page):
        ui.open()
        ui.add("box_jwt_ui", "Box (OAuth)")
        standard = ui.section("Standard Fields")
        check_standard_fields(standard, "Client ID", "Client secret", "Box")
        shot_standard = screenshots.path("box-standard")
        ui.dialog.screenshot(path=str(shot_standard))  # as for the real Box: Host empty
        standard.get_by_label("Endpoint override (optional)").fill(emu.url)

        check_form_matches_fields(ui, "box", absent=("Access type", "Select user", "Path root"))
        check_empty_choice_is_labelled(ui, "JWT key type", "(guess from the key)")
        check_empty_choice_is_labelled(ui, "Subject type", "(default: enterprise)")
        ui.select("Auth scheme", "jwt")
        ui.extra_input("jwt_cert").fill(str(emu.box_jwt_config))
        ui.select("JWT key type", "JSONFILE")
        ui.select("Subject type", "enterprise")
        ui.extra_input("subject_id").fill(seed.DEMO_BOX_ENTERPRISE_ID)
        ui.extra_input("oauth_settings_location").fill(store)
        shot_extras = screenshots.path("box-jwt-extras")
        ui.dialog.screenshot(path=str(shot_extras))
        form = screenshots.stack(page, "box-jwt-form", [shot_standard, shot_extras])
        screenshots.publish(form, "box_jwt_form.png")
        ui.save()

        stored = rest_connection(ui_server, "box_jwt_ui")
        assert (stored["conn_type"], stored["host"]) == ("box_oauth", emu.url)
        assert not stored["login"] and not stored["password"]  # the app config JSON carries the client
        assert set_values(stored["extra"]) == {
            "auth_scheme": "jwt",
            "initiate_oauth": "GETANDREFRESH",
            "jwt_cert": str(emu.box_jwt_config),
            "jwt_cert_type": "JSONFILE",
            "subject_type": "enterprise",
            "subject_id": seed.DEMO_BOX_ENTERPRISE_ID,
            "oauth_settings_location": store,
        }

        ui.edit("box_jwt_ui")
        ui.section("Extra Fields")
        assert ui.extra_input("auth_scheme").input_value() == "jwt"
        assert ui.extra_input("jwt_cert_type").input_value() == "JSONFILE"
        assert ui.extra_input("jwt_cert").input_value() == str(emu.box_jwt_config)
        assert ui.extra_input("subject_id").input_value() == seed.DEMO_BOX_ENTERPRISE_ID
        ui.dialog.screenshot(path=str(screenshots.path("box-jwt-reopened")))
        ui.close_dialog()

        result = ui.press_test("box_jwt_ui")
        assert result["status"] is True, result
        assert seed.DEMO_BOX_JWT_SERVICE_ACCOUNT_ID in result["message"], result
        expect_success_toast(page, "Connected to Box as")
        page.screenshot(path=str(screenshots.path("box-jwt-tested")))
