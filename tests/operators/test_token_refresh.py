"""RefreshOAuthTokenOperator, OAuthTokenSensor and OAuthTokenTrigger against the emulator and a real sqlite
token store: what they refresh, what they return, and how the trigger waits and serializes."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from airflow.sdk.serde import deserialize, serialize

from dropbox_box_provider.errors import AuthConfigError, ReauthorizationRequired, TokenStoreError
from dropbox_box_provider.operators.refresh import RefreshOAuthTokenOperator
from dropbox_box_provider.sensors.token import OAuthTokenSensor
from dropbox_box_provider.testing import EmulatedServices
from dropbox_box_provider.triggers.token import OAuthTokenTrigger, due_reason
from tests.operators.conftest import (
    Connections,
    box_connection,
    box_jwt_connection,
    box_tokens,
    dropbox_connection,
    dropbox_tokens,
    grants,
    meta_of,
)

pytestmark = pytest.mark.timeout(60)


def refresh(conn_id: str, **kwargs: Any) -> dict[str, object]:
    result: dict[str, object] = RefreshOAuthTokenOperator(
        task_id="refresh", conn_id=conn_id, **kwargs
    ).execute({})
    return result


def test_due_rule_expiry_window_and_box_refresh_token_age() -> None:
    now = 1_000_000.0
    rule = {"window": 1800.0, "max_refresh_token_age": 30 * 86400.0, "now": now}
    assert due_reason("dropbox", now + 1799, None, **rule).met
    later = due_reason("dropbox", now + 1900, None, **rule)
    assert not later.met and later.opens_in == pytest.approx(100)
    old = due_reason("box", now + 3000, now - 31 * 86400, **rule)
    assert old.met and "31 days" in old.reason
    assert not due_reason("dropbox", now + 3000, now - 90 * 86400, **rule).met  # Dropbox's never age out
    assert not due_reason("box", None, None, **rule).met


def test_dropbox_token_valid_beyond_min_validity_is_left_alone(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    seed = dropbox_tokens(emulated_services)
    conn_id = connections.add("dbx", dropbox_connection(emulated_services, seed.refresh_token))

    first = refresh(conn_id)  # seeds the store from the connection's refresh token: one grant
    assert first["refreshed"] is True and first["service"] == "dropbox" and first["scheme"] == "oauth"
    second = refresh(conn_id)
    assert second["refreshed"] is False and second["reason"] is None
    assert second["version"] == first["version"]
    assert grants(emulated_services, "dropbox") == {"ok": 1}
    assert set(second) == {
        "conn_id", "service", "scheme", "expires_at", "refresh_issued_at", "version", "refreshed", "reason",
    }  # fmt: skip
    assert str(seed.refresh_token) not in json.dumps(second)


def test_refreshes_when_expiring_within_min_validity_and_when_forced(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    emulated_services.client.configure(
        access_token_ttl=1200
    )  # inside the default 30 min, beyond the 5 min margin
    seed = box_tokens(emulated_services)
    conn_id = connections.add("box", box_connection(emulated_services, seed.refresh_token))
    connections.seed(conn_id, seed)
    before = meta_of(connections.store, conn_id)
    assert before is not None

    result = refresh(conn_id)
    assert result["refreshed"] is True and "expires in" in str(result["reason"])
    after = meta_of(connections.store, conn_id)
    assert after is not None and after.version > before.version
    assert grants(emulated_services, "box") == {"ok": 1}

    assert refresh(conn_id, min_validity=60)["refreshed"] is False

    other = box_tokens(emulated_services, user_id="10002")
    forced_id = connections.add("box_forced", box_connection(emulated_services, other.refresh_token))
    connections.seed(forced_id, other)
    forced = refresh(forced_id, min_validity=60, force=True)
    assert forced["refreshed"] is True and forced["reason"] == "force=True"
    assert grants(emulated_services, "box") == {"ok": 2}  # never invalid_grant: rotation is tracked


def test_old_box_refresh_token_is_rotated(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    seed = box_tokens(emulated_services)
    conn_id = connections.add("box_old", box_connection(emulated_services, seed.refresh_token))
    connections.seed(conn_id, replace(seed, refresh_issued_at=time.time() - 31 * 86400))

    result = refresh(conn_id)
    assert result["refreshed"] is True and "days old" in str(result["reason"])
    assert time.time() - float(result["refresh_issued_at"]) < 60  # type: ignore[arg-type]
    assert grants(emulated_services, "box") == {"ok": 1}


def test_dead_refresh_token_fails_with_the_cli_command(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    conn_id = connections.add("box_dead", box_connection(emulated_services, "not-a-live-refresh-token"))
    with pytest.raises(ReauthorizationRequired, match="dropbox-box-auth authorize box_dead") as excinfo:
        refresh(conn_id)
    assert "not-a-live-refresh-token" not in str(excinfo.value)
    assert grants(emulated_services, "box") == {"invalid_grant": 1}


def test_jwt_service_account_gets_a_new_token_without_a_person(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    conn_id = connections.add("box_sa", box_jwt_connection(emulated_services))
    first = refresh(conn_id)
    assert first["scheme"] == "jwt" and first["refreshed"] is True and first["refresh_issued_at"] is None
    assert refresh(conn_id)["refreshed"] is False  # valid for an hour: no second assertion is signed
    assert grants(emulated_services, "box", "urn:ietf:params:oauth:grant-type:jwt-bearer") == {"ok": 1}


def test_static_token_cannot_be_forced(emulated_services: EmulatedServices, connections: Connections) -> None:
    conn_id = connections.add(
        "dbx_static",
        dropbox_connection(emulated_services, None, auth_scheme="static", access_token="fixed-abc"),
    )
    assert refresh(conn_id)["refreshed"] is False
    with pytest.raises(AuthConfigError, match="cannot be refreshed"):
        refresh(conn_id, force=True)


def test_sensor_pokes_due_and_authorized(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    emulated_services.client.configure(access_token_ttl=3600)
    seed = dropbox_tokens(emulated_services)
    conn_id = connections.add("dbx_s", dropbox_connection(emulated_services, None))

    authorized = OAuthTokenSensor(task_id="auth", conn_id=conn_id, mode="authorized", deferrable=False)
    assert not authorized.poke({}).is_done
    due = OAuthTokenSensor(task_id="due", conn_id=conn_id, window=1800, deferrable=False)
    assert due.poke({}).is_done  # no tokens stored yet: seeding is due

    connections.seed(conn_id, seed)
    poked = authorized.poke({})
    assert poked.is_done and poked.xcom_value is not None and poked.xcom_value["conn_id"] == conn_id
    assert not due.poke({}).is_done  # an hour left, the window is 30 min
    assert OAuthTokenSensor(task_id="due2", conn_id=conn_id, window=3700, deferrable=False).poke({}).is_done
    assert seed.access_token not in json.dumps(poked.xcom_value)


def test_sensor_mode_names() -> None:
    sensor = OAuthTokenSensor(task_id="s", conn_id="x", mode="reschedule", deferrable=False)
    assert sensor.condition == "due" and sensor.mode == "reschedule"
    with pytest.raises(ValueError, match="sensor_mode"):
        OAuthTokenSensor(task_id="t", conn_id="x", mode="soon")


def test_trigger_serializes_round_trip_without_secrets(tmp_path: object) -> None:
    trigger = OAuthTokenTrigger(
        "dbx", "postgresql+psycopg://app:***@db:5432/airflow", mode="authorized", poll_interval=2
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "dropbox_box_provider.triggers.token.OAuthTokenTrigger"
    restored_kwargs = deserialize(serialize(kwargs))
    assert isinstance(restored_kwargs, dict)
    assert json.loads(json.dumps(restored_kwargs)) == kwargs  # plain JSON
    again = OAuthTokenTrigger(**restored_kwargs)
    assert again.serialize() == (classpath, kwargs)


def test_trigger_sleeps_until_the_expiry_window_opens(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    emulated_services.client.configure(access_token_ttl=1802)
    seed = dropbox_tokens(emulated_services)
    conn_id = connections.add("dbx_t", dropbox_connection(emulated_services, seed.refresh_token))
    connections.seed(conn_id, seed)
    # Only a password-free URL and thresholds go to the trigger; it reads clear metadata, decrypts nothing.
    trigger = OAuthTokenTrigger(conn_id, connections.store_url, mode="due", window=1800, poll_interval=30)

    async def first_event() -> tuple[dict[str, object], float]:
        started = time.monotonic()
        async for event in trigger.run():
            return event.payload, time.monotonic() - started
        raise AssertionError("the trigger ended without an event")

    payload, waited = asyncio.run(first_event())
    assert payload["status"] == "success" and payload["conn_id"] == conn_id
    assert 0.5 < waited < 4  # it slept until the window opened, not the 30 s poll interval
    assert payload["expires_at"] == pytest.approx(seed.expires_at)


def test_trigger_fires_once_a_person_authorized(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    conn_id = connections.add("box_wait", box_connection(emulated_services, None))
    trigger = OAuthTokenTrigger(conn_id, connections.store_url, mode="authorized", poll_interval=0.1)

    async def authorize_later() -> None:
        await asyncio.sleep(0.4)
        tokens = await asyncio.to_thread(box_tokens, emulated_services)
        await asyncio.to_thread(connections.seed, conn_id, tokens)

    async def scenario() -> dict[str, object]:
        person = asyncio.create_task(authorize_later())
        async for event in trigger.run():
            await person
            return dict(event.payload)
        raise AssertionError("no event")

    payload = asyncio.run(scenario())
    assert payload["status"] == "success" and payload["reason"] == "a refresh token is stored"
    assert payload["version"] == 1 and payload["service"] == "box"


def test_trigger_reports_a_store_it_cannot_open() -> None:
    trigger = OAuthTokenTrigger("x", "postgresql+psycopg://app:***@127.0.0.1:1/db", mode="authorized")

    async def first() -> dict[str, object]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    payload = asyncio.run(first())
    assert payload["status"] == "error" and "TokenStoreBackend" in str(payload["message"])
    sensor = OAuthTokenSensor(task_id="s", conn_id="x", deferrable=True)
    with pytest.raises(TokenStoreError, match="needs a password"):
        sensor.execute_complete({}, payload)
