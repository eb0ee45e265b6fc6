"""The UI's Test button: ``POST /api/v2/connections/test`` on a real ``airflow api-server`` with
``[core] test_connection = Enabled``, for connections pointed at the emulator.

Add a service by appending to ``CASES``: a name, a builder of the connection body, and what the answer says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.airflow import AirflowEnv, ApiServer, clone_airflow_env, start_api_server, stop_api_server
from tests.helpers.dropbox import dropbox_tokens

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def test_enabled_server(
    airflow_template: AirflowEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An api-server whose connection test is enabled (it is off by default)."""
    airflow = clone_airflow_env(airflow_template, tmp_path_factory.mktemp("api_test_conn_home"))
    airflow.env["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
    server = start_api_server(airflow)
    try:
        yield server
    finally:
        stop_api_server(server)


@dataclass(frozen=True)
class Case:
    """One connection to test: its body (built against the emulator) and the expected outcome."""

    name: str
    build: Callable[[EmulatedServices], tuple[dict[str, Any], list[str]]]  # body, secrets to look for
    status: bool
    says: tuple[str, ...]


def dropbox_ok(emu: EmulatedServices) -> tuple[dict[str, Any], list[str]]:
    tokens = dropbox_tokens(emu)
    assert tokens.refresh_token
    body = {
        "conn_type": "dropbox",
        "login": seed.DEMO_DROPBOX_CLIENT_ID,
        "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
        "host": emu.url,
        "extra": json.dumps({"initiate_oauth": "REFRESH", "refresh_token": tokens.refresh_token}),
    }
    return body, [tokens.refresh_token, tokens.access_token, seed.DEMO_DROPBOX_CLIENT_SECRET]


def dropbox_revoked(emu: EmulatedServices) -> tuple[dict[str, Any], list[str]]:
    body, secrets = dropbox_ok(emu)
    bogus = "no-such-refresh-token-0123456789abcdef"
    body["extra"] = json.dumps({"initiate_oauth": "REFRESH", "refresh_token": bogus})
    return body, [*secrets, bogus]


def dropbox_unknown_extra(emu: EmulatedServices) -> tuple[dict[str, Any], list[str]]:
    body, secrets = dropbox_ok(emu)
    body["extra"] = json.dumps({"initiate_oauht": "REFRESH"})
    return body, secrets


CASES = [
    Case(
        "dropbox-oauth",
        dropbox_ok,
        True,
        ("Connected to Dropbox as Demo User <demo@example.com>", "valid for"),
    ),
    Case(
        "dropbox-bad-refresh-token", dropbox_revoked, False, ("invalid_grant", "dropbox-box-auth authorize")
    ),
    Case("dropbox-typo-in-extra", dropbox_unknown_extra, False, ("did you mean 'initiate_oauth'",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_connection_test_endpoint(
    case: Case, test_enabled_server: ApiServer, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    body, secrets = case.build(emulated_services)
    response = httpx.post(
        f"{test_enabled_server.url}/api/v2/connections/test",
        json={"connection_id": f"probe_{case.name.replace('-', '_')}", **body},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] is case.status, answer
    for phrase in case.says:
        assert phrase in answer["message"], answer
    for secret in secrets:
        assert secret not in answer["message"]
        assert secret not in test_enabled_server.log_tail(200_000)
