"""The Test button: ``POST /api/v2/connections/test`` on a real api-server runs BoxHook.test_connection
against the emulator for every Box auth scheme, and reports failures without leaking secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.airflow import AirflowEnv, ApiServer, clone_airflow_env, start_api_server, stop_api_server
from tests.helpers.box import box_oauth_tokens

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def test_enabled_api_server(
    airflow_template: AirflowEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An api-server whose connection test is enabled (Airflow disables it by default)."""
    airflow = clone_airflow_env(airflow_template, tmp_path_factory.mktemp("box_api_server"))
    airflow.env["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
    server = start_api_server(airflow)
    try:
        yield server
    finally:
        stop_api_server(server)


def run_test(server: ApiServer, conn_id: str, *, extra: dict[str, Any], **fields: str) -> dict[str, Any]:
    body = {"connection_id": conn_id, "conn_type": "box_oauth", **fields, "extra": json.dumps(extra)}
    response = httpx.post(f"{server.url}/api/v2/connections/test", json=body, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def store(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / f'{name}.db'}"


def test_ccg_jwt_and_oauth_connections_pass(
    test_enabled_api_server: ApiServer, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    server, emu = test_enabled_api_server, emulated_services
    ccg = run_test(
        server,
        "box_api_ccg",
        host=emu.url,
        login=seed.DEMO_BOX_CCG_CLIENT_ID,
        password=seed.DEMO_BOX_CCG_CLIENT_SECRET,
        extra={
            "auth_scheme": "ccg",
            "subject_id": seed.DEMO_BOX_ENTERPRISE_ID,
            "oauth_settings_location": store(tmp_path, "ccg"),
        },
    )
    assert ccg["status"] is True, ccg
    assert "Demo CCG Service Account" in ccg["message"] and "valid for another" in ccg["message"]

    jwt = run_test(
        server,
        "box_api_jwt",
        host=emu.url,
        extra={
            "auth_scheme": "jwt",
            "jwt_cert": str(emu.box_jwt_config),
            "jwt_cert_type": "JSONFILE",
            "oauth_settings_location": store(tmp_path, "jwt"),
        },
    )
    assert jwt["status"] is True, jwt
    assert seed.DEMO_BOX_JWT_SERVICE_ACCOUNT_ID in jwt["message"]

    tokens = box_oauth_tokens(emu)
    oauth = run_test(
        server,
        "box_api_oauth",
        host=emu.url,
        login=seed.DEMO_BOX_CLIENT_ID,
        password=seed.DEMO_BOX_CLIENT_SECRET,
        extra={
            "initiate_oauth": "REFRESH",
            "refresh_token": tokens.refresh_token,
            "as_user": seed.DEMO_BOX_SECOND_USER_ID,
            "oauth_settings_location": store(tmp_path, "oauth"),
        },
    )
    assert oauth["status"] is True, oauth
    assert "Second User" in oauth["message"]  # As-User honoured by the test too
    assert tokens.refresh_token and tokens.refresh_token not in json.dumps(oauth)


def test_wrong_secret_fails_with_advice_and_no_secret(
    test_enabled_api_server: ApiServer, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    wrong = "wrong-ccg-secret-value"
    result = run_test(
        test_enabled_api_server,
        "box_api_bad",
        host=emulated_services.url,
        extra={
            "client_id": seed.DEMO_BOX_CCG_CLIENT_ID,
            "client_secret": wrong,
            "enterprise_id": seed.DEMO_BOX_ENTERPRISE_ID,
            "oauth_settings_location": store(tmp_path, "bad"),
        },
    )
    assert result["status"] is False
    assert "Box connection test failed" in result["message"]
    assert "Password" in result["message"] or "client" in result["message"]
    assert wrong not in result["message"]
