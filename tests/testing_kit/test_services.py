"""The testing kit's ``emulated_services`` as the main suite gets it from the plugin: connections, files,
lifetimes, expiry, faults, counters and reset, each through the real hooks over loopback."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dropbox_box_provider.errors import NotFound
from dropbox_box_provider.testing import EmulatedServices

pytestmark = pytest.mark.timeout(120)


def test_ready_made_connections_work_at_once_with_no_grant(
    emulated_services: EmulatedServices, dropbox_conn: str, box_conn: str
) -> None:
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    assert (dropbox_conn, box_conn) == ("dropbox_default", "box_default")
    emulated_services.put_file("dropbox", "/in/a.csv", "id\n1\n")
    assert DropboxHook(dropbox_conn).read_bytes("/in/a.csv") == b"id\n1\n"
    BoxHook(box_conn).write_bytes("/out/b.txt", b"box bytes")
    assert emulated_services.read_file("box", "/out/b.txt") == b"box bytes"
    assert BoxHook("box_jwt").get_current_user()["id"] == "20001"
    assert BoxHook("box_ccg").get_current_user()["id"] == "20002"
    assert emulated_services.refreshes() == 0
    assert emulated_services.grants("dropbox") == {}  # the kit's own code exchange is not counted
    assert set(emulated_services.grants("box")) == {
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "client_credentials",
    }


def test_connections_environ_and_store_files(emulated_services: EmulatedServices) -> None:
    conns = emulated_services.connections
    assert set(conns) == {"dropbox_default", "box_default", "box_jwt", "box_ccg"}
    assert conns["box_default"].host == emulated_services.url
    env = emulated_services.environ()
    assert json.loads(env["AIRFLOW_CONN_DROPBOX_DEFAULT"])["conn_type"] == "dropbox"
    assert env["AIRFLOW__SECRETS__BACKEND_KWARG__STORE"] == emulated_services.store_url
    assert all(os.environ[name] == value for name, value in env.items())  # applied for the test
    key = env["AIRFLOW__SECRETS__BACKEND_KWARG__KEY"]
    assert key not in repr(emulated_services) and "refresh_token" not in json.dumps(env)  # tokens: store only
    store_file = Path(emulated_services.store_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(store_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(emulated_services.box_jwt_config.stat().st_mode) == 0o600


def test_files_helpers_and_their_errors(emulated_services: EmulatedServices) -> None:
    emulated_services.put_file("box", "/A/b/c.txt", b"one")
    emulated_services.put_file("box", "/a/B/c.txt", b"two")  # names compare case-insensitively
    assert emulated_services.list_files("box") == ["/A/b/c.txt"]
    assert emulated_services.read_file("box", "/a/b/C.TXT") == b"two"
    emulated_services.put_file("box_jwt", "/svc.txt", "service account's own")
    assert emulated_services.list_files("box_jwt") == ["/svc.txt"]
    with pytest.raises(NotFound, match="list_files"):
        emulated_services.read_file("dropbox", "/A/b/c.txt")
    with pytest.raises(ValueError, match="unknown service"):
        emulated_services.put_file("gdrive", "/x", b"")
    assert emulated_services.requests("box") == {}  # arranging is never counted


def test_expiry_lifetimes_and_reset(emulated_services: EmulatedServices) -> None:
    from dropbox_box_provider.hooks.box import BoxHook

    hook = BoxHook()
    assert hook.exists("/") is True
    assert emulated_services.expire_tokens("box") >= 1
    assert hook.exists("/") is True
    assert emulated_services.refreshes("box") == 1 and emulated_services.refreshes("dropbox") == 0

    emulated_services.set_token_lifetimes(access_token=1200, service="box")
    record = emulated_services.token_store.read("box_default")
    assert record is not None and record.expires_at is not None
    import time

    assert 1100 < record.expires_at - time.time() <= 1200

    emulated_services.put_file("dropbox", "/gone.txt", b"x")
    emulated_services.rate_limit("box", count=5)
    emulated_services.reset()
    assert emulated_services.list_files("dropbox") == []
    assert emulated_services.stats()["box"]["requests"] == 0
    assert emulated_services.client.configure()["box_access_token_ttl"] != 1200
    assert BoxHook().exists("/") is True  # the armed storm is gone, the tokens are new
    assert emulated_services.request_count("box", status=429) == 0


def test_fault_helpers_reach_the_hooks(emulated_services: EmulatedServices) -> None:
    from dropbox_box_provider.auth.transport import RetryPolicy
    from dropbox_box_provider.errors import ServiceError
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    fast = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=2.0, total_budget=10.0)
    box = BoxHook(retry_policy=fast)
    emulated_services.server_errors("box", count=2, status=502)
    emulated_services.drop_connections("box", count=1)
    emulated_services.delay("box", 0.2, count=1)
    assert box.exists("/") is True
    assert emulated_services.request_count("box", status=502) == 2

    dropbox = DropboxHook(retry_policy=fast)
    emulated_services.too_many_write_operations(count=2)
    dropbox.write_bytes("/w.txt", b"abc")
    assert emulated_services.read_file("dropbox", "/w.txt") == b"abc"
    assert emulated_services.request_count("dropbox", "/2/files/upload", 409) == 2

    emulated_services.server_errors("dropbox", count=10, status=500)
    with pytest.raises(ServiceError):
        dropbox.read_bytes("/w.txt")
    emulated_services.clear_faults()
    assert dropbox.read_bytes("/w.txt") == b"abc"


def test_no_token_or_key_in_the_kits_reprs_and_logs(
    emulated_services: EmulatedServices, caplog: pytest.LogCaptureFixture
) -> None:
    """Secrets rule: what the kit prints or logs (reprs, counters, its setup and a refresh it causes) never
    holds a token or the store's key."""
    import logging

    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    caplog.set_level(logging.DEBUG)
    services = emulated_services
    services.reset()
    services.put_file("dropbox", "/a.txt", b"a")
    services.expire_tokens()
    assert DropboxHook().read_bytes("/a.txt") == b"a"
    assert BoxHook().exists("/") is True
    for conn_id in ("box_jwt", "box_ccg"):
        assert BoxHook(conn_id).get_current_user()["id"]
    grant = services.oauth_tokens("box")
    secrets = {
        grant.access_token,
        str(grant.refresh_token),
        services.environ()["AIRFLOW__SECRETS__BACKEND_KWARG__KEY"],
    }
    for conn_id in services.conn_ids:
        record = services.token_store.read(conn_id)
        assert record is not None, conn_id
        secrets |= {str(v) for k, v in record.payload.items() if k in ("access_token", "refresh_token") and v}
    assert len(secrets) >= 7  # four access tokens, two refresh tokens, the key (and the extra grant's)
    shown = "\n".join(
        [
            caplog.text,
            repr(services),
            str(services),
            repr(grant),
            repr(services.connections),
            repr(services.connection_definitions()),
            json.dumps(services.stats()),
            repr(services.auth_config("box_default")),
            repr(services.token_store),
        ]
    )
    leaked = [s[:6] + "…" for s in secrets if s in shown]
    assert not leaked, leaked


def test_delays_and_dropped_connections_take_effect_and_are_counted(
    emulated_services: EmulatedServices,
) -> None:
    """A delay holds the answer back; a dropped connection is retried (counted with status 0); dropped after
    acting, the write happened once and the retry finds it done."""
    import time

    from dropbox_box_provider.auth.transport import RetryPolicy
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    fast = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=2.0, total_budget=10.0)
    box = BoxHook(retry_policy=fast)
    assert box.exists("/") is True  # warm: the connection and its token
    emulated_services.delay("box", 1.0, count=1)
    started = time.monotonic()
    assert box.exists("/") is True
    assert time.monotonic() - started >= 1.0

    emulated_services.drop_connections("box", count=2)
    assert box.exists("/") is True
    assert emulated_services.request_count("box", status=0) == 2

    dropbox = DropboxHook(retry_policy=fast)
    emulated_services.drop_connections(
        "dropbox", count=1, after_acting=True, route="/content.dropboxapi.com/*"
    )
    dropbox.write_bytes("/once.txt", b"once")
    assert emulated_services.read_file("dropbox", "/once.txt") == b"once"
    assert emulated_services.list_files("dropbox") == ["/once.txt"]
    assert emulated_services.request_count("dropbox", status=0) == 1


def test_state_left_behind_by_one_test(emulated_services: EmulatedServices) -> None:
    """Leaves a file, an armed storm, a long lifetime and counts: the next test (same file, same worker)
    must see none of it."""
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    emulated_services.put_file("dropbox", "/left-behind.txt", b"x")
    assert DropboxHook().read_bytes("/left-behind.txt") == b"x"
    emulated_services.set_token_lifetimes(access_token=4321, reauthorize=False)
    assert emulated_services.client.configure()["dropbox_access_token_ttl"] == 4321
    emulated_services.rate_limit("dropbox", count=50)


def test_is_gone_for_the_next_test(emulated_services: EmulatedServices) -> None:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    assert emulated_services.list_files("dropbox") == []
    assert emulated_services.requests("dropbox") == {}
    assert emulated_services.client.configure()["dropbox_access_token_ttl"] != 4321
    assert DropboxHook().exists("/") is True  # no storm armed
    assert emulated_services.request_count("dropbox", status=429) == 0


def test_a_short_refresh_token_lifetime_ends_in_reauthorization_required(
    emulated_services: EmulatedServices,
) -> None:
    """``set_token_lifetimes(refresh_token=...)``: once the refresh token has outlived it, the next refresh is
    refused and the hook says to authorize again; the stored record is kept."""
    import time

    from dropbox_box_provider.errors import ReauthorizationRequired
    from dropbox_box_provider.hooks.box import BoxHook

    emulated_services.set_token_lifetimes(refresh_token=1.0)
    assert BoxHook().exists("/") is True  # reauthorized: the new access token works
    before = emulated_services.token_store.read("box_default")
    time.sleep(1.5)
    emulated_services.expire_tokens("box")
    with pytest.raises(ReauthorizationRequired, match="dropbox-box-auth authorize box_default"):
        BoxHook().exists("/")
    after = emulated_services.token_store.read("box_default")
    assert before is not None and after is not None
    assert after.payload.get("refresh_token") == before.payload.get("refresh_token") is not None
