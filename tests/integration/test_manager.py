"""TokenManager against the real emulator and real token stores: every scheme, the seed and verifier rules,
the hot path, invalidation after a 401, forced refresh, and records that cannot be decrypted.

"Expired" is simulated without sleeping: the same connection with a huge ``refresh_margin`` treats every
token as due (the margin is not part of the seed fingerprint, so the stored record still applies).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager, fingerprint, tokens_from_record
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.emulator.seed import (
    DEMO_BOX_CCG_CLIENT_ID,
    DEMO_BOX_CCG_CLIENT_SECRET,
    DEMO_BOX_CLIENT_ID,
    DEMO_BOX_CLIENT_SECRET,
    DEMO_BOX_ENTERPRISE_ID,
    DEMO_DROPBOX_CLIENT_ID,
    DEMO_DROPBOX_CLIENT_SECRET,
)
from dropbox_box_provider.errors import AuthConfigError, ReauthorizationRequired, TokenStoreError
from dropbox_box_provider.store import open_store
from dropbox_box_provider.store.base import LeaseState, RecordMeta, TokenRecord, TokenStore
from tests.fixtures.databases import new_key
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.tokens import expire_stored

REDIRECT_URI = "http://127.0.0.1:33333"
GRANT_JWT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class CountingStore:
    """A real store that counts how often the manager touches it."""

    def __init__(self, inner: TokenStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def read(self, conn_id: str) -> TokenRecord | None:
        self._count("read")
        return self.inner.read(conn_id)

    def claim_lease(self, conn_id: str, owner: str, seconds: float, *, service: str) -> LeaseState:
        self._count("claim_lease")
        return self.inner.claim_lease(conn_id, owner, seconds, service=service)

    def write(self, conn_id: str, service: str, payload: dict[str, Any], **kw: Any) -> TokenRecord:
        self._count("write")
        return self.inner.write(conn_id, service, payload, **kw)

    def delete(self, conn_id: str) -> bool:
        self._count("delete")
        return self.inner.delete(conn_id)

    def list_meta(self) -> list[RecordMeta]:
        self._count("list_meta")
        return self.inner.list_meta()

    def __getattr__(self, name: str) -> Any:
        self._count(name)
        return getattr(self.inner, name)


def token_stats(emulator: RunningEmulator, service: str = "box") -> dict[str, dict[str, int]]:
    return dict(emulator.client.stats()[service]["token"])


def grants(emulator: RunningEmulator, grant: str, outcome: str = "ok", service: str = "box") -> int:
    return int(token_stats(emulator, service).get(grant, {}).get(outcome, 0))


def no_invalid_grant(emulator: RunningEmulator) -> bool:
    return all(
        counts.get("invalid_grant", 0) == 0
        for service in ("box", "dropbox")
        for counts in token_stats(emulator, service).values()
    )


def due(manager: TokenManager, conn_id: str, config: AuthConfig) -> TokenSet:
    """``get_valid_token`` once the stored access token has expired (marked so, the cache forgotten)."""
    expire(manager, conn_id)
    return manager.get_valid_token(conn_id, config)


def expire(manager: TokenManager, conn_id: str) -> None:
    """Mark the stored access token expired and forget the manager's cached copy."""
    if manager.store.read(conn_id) is not None:
        expire_stored(manager.store, conn_id)
    manager.forget(conn_id)


def box_config(emulator: RunningEmulator, conn_id: str = "box_default", **fields: Any) -> AuthConfig:
    base: dict[str, Any] = {
        "client_id": DEMO_BOX_CLIENT_ID,
        "client_secret": DEMO_BOX_CLIENT_SECRET,
        "endpoint": emulator.url,
        "callback_url": REDIRECT_URI,
        "initiate_oauth": "REFRESH",
        "refresh_margin": 0,
    }
    return AuthConfig.from_mapping("box", base | fields, conn_id=conn_id)


def box_tokens(emulator: RunningEmulator) -> TokenSet:
    """A fresh Box grant obtained outside the store (what a person pasting tokens would have)."""
    config = box_config(emulator)
    code = emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    return flows.exchange_code(config, code, callback_url=REDIRECT_URI)


@pytest.fixture
def store(sqlite_store_url: str, store_key: str) -> CountingStore:
    return CountingStore(open_store(sqlite_store_url, store_key))


# -- OAuth -------------------------------------------------------------------------------------------


def test_verifier_is_exchanged_once_then_refreshed(
    fresh_emulator: RunningEmulator, store_url: str, store_key: str
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_verifier", verifier=code)
    first = TokenManager(open_store(store_url, store_key)).get_valid_token("box_verifier", config)
    assert grants(fresh_emulator, "authorization_code") == 1
    # Another worker (fresh manager, empty cache) is served from the store: no second exchange.
    second = TokenManager(open_store(store_url, store_key)).get_valid_token("box_verifier", config)
    assert second.access_token == first.access_token
    # Expired: refreshed with the stored refresh token; the (now used) verifier is never sent again.
    third = due(TokenManager(open_store(store_url, store_key)), "box_verifier", config)
    assert third.access_token != first.access_token
    assert third.refresh_token != first.refresh_token  # Box rotated it
    assert grants(fresh_emulator, "authorization_code") == 1
    assert grants(fresh_emulator, "refresh_token") == 1
    record = open_store(store_url, store_key).read("box_verifier")
    assert record is not None
    assert tokens_from_record(record).refresh_token == third.refresh_token
    assert record.payload["verifier_fingerprint"] == fingerprint(code)
    assert code not in str(record.payload)
    assert no_invalid_grant(fresh_emulator)


def test_an_old_refresh_token_is_dead_after_rotation(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_rotation", verifier=code)
    manager = TokenManager(store)
    first = manager.get_valid_token("box_rotation", config)
    second = due(manager, "box_rotation", config)
    assert first.refresh_token and second.refresh_token and first.refresh_token != second.refresh_token
    # The store holds the only live refresh token: the previous one is refused by Box (grace off).
    with pytest.raises(ReauthorizationRequired):
        flows.refresh(config, first.refresh_token)
    assert grants(fresh_emulator, "refresh_token", "invalid_grant") == 1


def test_seed_refresh_token_is_used_once_and_a_new_paste_reseeds(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    seed_one = box_tokens(fresh_emulator)
    assert seed_one.refresh_token
    config = box_config(fresh_emulator, "box_seed", refresh_token=seed_one.refresh_token)
    manager = TokenManager(store)
    manager.get_valid_token("box_seed", config)  # seeds: refreshes with the pasted token
    assert grants(fresh_emulator, "refresh_token") == 1
    record = store.inner.read("box_seed")
    assert record is not None and record.seed_fingerprint == fingerprint(seed_one.refresh_token)
    assert tokens_from_record(record).refresh_token != seed_one.refresh_token

    # The connection still holds the (now dead) seed: the store's rotated token is used, not the seed.
    for _ in range(2):
        due(TokenManager(store), "box_seed", config)
    assert grants(fresh_emulator, "refresh_token") == 3
    assert no_invalid_grant(fresh_emulator)

    # A person authorizes again and pastes the new refresh token: the store re-seeds from it, even
    # though this manager still caches a valid token of the old seed.
    seed_two = box_tokens(fresh_emulator)
    assert seed_two.refresh_token
    pasted = box_config(fresh_emulator, "box_seed", refresh_token=seed_two.refresh_token)
    reseeded = manager.get_valid_token("box_seed", pasted)
    assert grants(fresh_emulator, "refresh_token") == 4
    record = store.inner.read("box_seed")
    assert record is not None and record.seed_fingerprint == fingerprint(seed_two.refresh_token)
    assert tokens_from_record(record).access_token == reseeded.access_token
    assert no_invalid_grant(fresh_emulator)
    for secret in (seed_one.refresh_token, seed_two.refresh_token):
        assert secret not in (record.seed_fingerprint or "")


def test_a_connection_carrying_the_stores_own_rotated_tokens_is_not_a_reseed(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    """The secrets backend serves connections with the record's tokens, which may rotate right after."""
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    manager = TokenManager(store)
    first = manager.get_valid_token("box_served", box_config(fresh_emulator, "box_served", verifier=code))
    rotated = due(manager, "box_served", box_config(fresh_emulator, "box_served"))
    assert first.refresh_token and rotated.refresh_token and first.refresh_token != rotated.refresh_token
    assert grants(fresh_emulator, "refresh_token") == 1

    # Served now: the live tokens. Served a moment before the rotation: the dead ones. Neither re-seeds.
    for served in (rotated, first):
        config = box_config(
            fresh_emulator, "box_served", refresh_token=served.refresh_token, access_token=served.access_token
        )
        assert TokenManager(store).get_valid_token("box_served", config).access_token == rotated.access_token
    assert grants(fresh_emulator, "refresh_token") == 1
    assert no_invalid_grant(fresh_emulator)


def test_dropbox_refresh_keeps_the_non_rotating_refresh_token(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    fields = {
        "client_id": DEMO_DROPBOX_CLIENT_ID,
        "client_secret": DEMO_DROPBOX_CLIENT_SECRET,
        "endpoint": fresh_emulator.url,
        "callback_url": REDIRECT_URI,
        "initiate_oauth": "REFRESH",
        "refresh_margin": 0,
    }
    plain = AuthConfig.from_mapping("dropbox", fields, conn_id="dbx")
    code = fresh_emulator.client.authorize(
        "dropbox", DEMO_DROPBOX_CLIENT_ID, redirect_uri=REDIRECT_URI, token_access_type="offline"
    )
    seed = flows.exchange_code(plain, code, callback_url=REDIRECT_URI)
    assert seed.refresh_token
    config = AuthConfig.from_mapping("dropbox", fields | {"refresh_token": seed.refresh_token}, conn_id="dbx")
    manager = TokenManager(store)
    first = manager.get_valid_token("dbx", config)
    second = due(manager, "dbx", config)
    assert first.access_token != second.access_token
    assert first.refresh_token == second.refresh_token == seed.refresh_token
    record = store.inner.read("dbx")
    assert record is not None and record.service == "dropbox"
    assert record.refresh_issued_at == first.refresh_issued_at  # the same refresh token: same issue time
    assert grants(fresh_emulator, "refresh_token", service="dropbox") == 2
    assert no_invalid_grant(fresh_emulator)


def test_getandrefresh_without_tokens_needs_a_person(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    config = box_config(fresh_emulator, "box_nobody", initiate_oauth="GETANDREFRESH")
    with pytest.raises(ReauthorizationRequired, match="dropbox-box-auth authorize box_nobody") as excinfo:
        TokenManager(store).get_valid_token("box_nobody", config)
    assert "GETANDREFRESH" in str(excinfo.value)
    refresh_only = box_config(fresh_emulator, "box_nobody")
    with pytest.raises(ReauthorizationRequired, match="verifier"):
        TokenManager(store).get_valid_token("box_nobody", refresh_only)
    assert store.inner.list_meta() == []
    assert all(sum(v.values()) == 0 for v in token_stats(fresh_emulator).values())


def test_interactive_getandrefresh_runs_the_authorizer_once(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    config = box_config(fresh_emulator, "box_person", initiate_oauth="GETANDREFRESH")
    calls: list[str] = []

    def authorizer(conn_id: str, cfg: AuthConfig) -> TokenSet:
        calls.append(conn_id)
        return box_tokens(fresh_emulator)

    manager = TokenManager(store, authorizer=authorizer)
    token = manager.get_valid_token("box_person", config, interactive=True)
    assert calls == ["box_person"]
    assert TokenManager(store).get_valid_token("box_person", config).access_token == token.access_token
    assert manager.get_valid_token("box_person", config, interactive=True) is token
    assert calls == ["box_person"]


def test_an_access_token_seed_is_used_as_is_until_it_fails(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    pasted = box_tokens(fresh_emulator)
    config = box_config(fresh_emulator, "box_at_only", access_token=pasted.access_token)
    manager = TokenManager(store)
    token = manager.get_valid_token("box_at_only", config)
    assert token.access_token == pasted.access_token and token.expires_at is None
    assert grants(fresh_emulator, "refresh_token") == 0
    assert manager.invalidate("box_at_only", pasted.access_token) is True
    with pytest.raises(ReauthorizationRequired, match="no refresh token"):
        manager.get_valid_token("box_at_only", config)


def test_a_failed_refresh_leaves_the_record_untouched(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_revoked", verifier=code)
    stored = TokenManager(store).get_valid_token("box_revoked", config)
    assert stored.refresh_token
    flows.refresh(config, stored.refresh_token)  # someone used the refresh token behind the store's back
    manager = TokenManager(store)
    expire(manager, "box_revoked")
    before = store.inner.read("box_revoked")
    with pytest.raises(ReauthorizationRequired):
        manager.get_valid_token("box_revoked", config)
    assert store.inner.read("box_revoked") == before


# -- service accounts and static tokens --------------------------------------------------------------


def service_config(emulator: RunningEmulator, scheme: str, conn_id: str) -> AuthConfig:
    if scheme == "jwt":
        fields: dict[str, Any] = {"auth_scheme": "jwt", "jwt_cert": str(emulator.box_jwt_config)}
    else:
        fields = {
            "auth_scheme": "ccg",
            "client_id": DEMO_BOX_CCG_CLIENT_ID,
            "client_secret": DEMO_BOX_CCG_CLIENT_SECRET,
            "subject_type": "enterprise",
            "subject_id": DEMO_BOX_ENTERPRISE_ID,
        }
    return AuthConfig.from_mapping(
        "box", fields | {"endpoint": emulator.url, "refresh_margin": 0}, conn_id=conn_id
    )


@pytest.mark.parametrize(("scheme", "grant"), [("jwt", GRANT_JWT), ("ccg", "client_credentials")])
def test_service_accounts_fetch_a_new_token_when_expired(
    scheme: str, grant: str, fresh_emulator: RunningEmulator, store_url: str, store_key: str
) -> None:
    config = service_config(fresh_emulator, scheme, f"box_{scheme}")
    store = open_store(store_url, store_key)
    manager = TokenManager(store)
    first = manager.get_valid_token(f"box_{scheme}", config)
    assert first.refresh_token is None
    assert manager.get_valid_token(f"box_{scheme}", config) is first
    assert TokenManager(store).get_valid_token(f"box_{scheme}", config).access_token == first.access_token
    assert grants(fresh_emulator, grant) == 1
    renewed = due(TokenManager(store), f"box_{scheme}", config)
    assert renewed.access_token != first.access_token
    assert grants(fresh_emulator, grant) == 2
    assert grants(fresh_emulator, "refresh_token") == 0
    record = store.read(f"box_{scheme}")
    assert record is not None and tokens_from_record(record).refresh_token is None


def test_a_service_account_pointed_elsewhere_gets_a_new_token(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    config = service_config(fresh_emulator, "ccg", "box_ccg_moved")
    manager = TokenManager(store)
    first = manager.get_valid_token("box_ccg_moved", config)
    as_user = dataclasses.replace(config, subject_type="user", subject_id="10001")
    second = manager.get_valid_token("box_ccg_moved", as_user)
    assert second.access_token != first.access_token
    assert grants(fresh_emulator, "client_credentials") == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"auth_scheme": "static", "access_token": "static-token-value"},
        {"initiate_oauth": "OFF", "access_token": "static-token-value", "refresh_token": "never-used"},
    ],
    ids=["auth_scheme_static", "initiate_oauth_off"],
)
def test_static_tokens_never_refresh_and_never_touch_the_store(
    fields: dict[str, Any], fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    config = box_config(fresh_emulator, "box_static", **fields)
    manager = TokenManager(store)
    for cfg in (config, dataclasses.replace(config, refresh_margin=10**7)):
        assert manager.get_valid_token("box_static", cfg).access_token == "static-token-value"
    assert manager.invalidate("box_static", "static-token-value", config) is False
    with pytest.raises(AuthConfigError, match="cannot be refreshed"):
        manager.force_refresh("box_static", config)
    assert store.total == 0
    assert all(sum(v.values()) == 0 for v in token_stats(fresh_emulator).values())


# -- the hot path, invalidation, forced refresh ------------------------------------------------------


def test_the_hot_path_does_no_io(fresh_emulator: RunningEmulator, store: CountingStore) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_hot", verifier=code)
    manager = TokenManager(store)
    first = manager.get_valid_token("box_hot", config)
    assert store.calls == {"read": 2, "claim_lease": 1, "write": 1}
    for _ in range(500):
        assert manager.get_valid_token("box_hot", config) is first
    assert store.calls == {"read": 2, "claim_lease": 1, "write": 1}
    # Another worker: one read, no lock, no network, because the stored token is valid.
    other = CountingStore(store.inner)
    assert TokenManager(other).get_valid_token("box_hot", config).access_token == first.access_token
    assert other.calls == {"read": 1}
    assert grants(fresh_emulator, "refresh_token") == 0 and grants(fresh_emulator, "authorization_code") == 1


def test_invalidate_marks_only_the_token_that_failed(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_401", verifier=code)
    worker_a, worker_b = TokenManager(store), TokenManager(store)
    rejected = worker_a.get_valid_token("box_401", config)
    assert worker_b.get_valid_token("box_401", config).access_token == rejected.access_token
    # Worker A gets a 401 with that token and reports it; worker A's next call refreshes.
    assert worker_a.invalidate("box_401", rejected.access_token) is True
    fresh = worker_a.get_valid_token("box_401", config)
    assert fresh.access_token != rejected.access_token
    # Worker B hits the 401 later with the same old token: nothing to mark, and no second refresh.
    assert worker_b.invalidate("box_401", rejected.access_token) is False
    assert worker_b.get_valid_token("box_401", config).access_token == fresh.access_token
    assert grants(fresh_emulator, "refresh_token") == 1
    assert no_invalid_grant(fresh_emulator)


def test_force_refresh_is_single_flight_across_workers(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_force", verifier=code)
    initial = TokenManager(store).get_valid_token("box_force", config)
    time.sleep(0.01)
    later = TokenManager(store, clock=lambda: time.time() + 30)
    forced = later.force_refresh("box_force", config)  # 30 s after the exchange: a real refresh
    assert forced.access_token != initial.access_token
    assert grants(fresh_emulator, "refresh_token") == 1
    # A second operator run moments later reuses that token instead of refreshing again.
    again = TokenManager(store, clock=lambda: time.time() + 31).force_refresh("box_force", config)
    assert again.access_token == forced.access_token
    assert grants(fresh_emulator, "refresh_token") == 1
    assert no_invalid_grant(fresh_emulator)


def test_force_refresh_does_not_reuse_a_recent_token_about_to_expire(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    """Found by a fresh-clone `.ci/run` (the fault storm): a forced refresh reused a 3 s token obtained
    moments before that had 50 ms left (margin 0), and Box refused it on the next call. A recent token is
    reused only in the first half of its life."""
    fresh_emulator.client.configure(access_token_ttl=3.0)
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_force_late", verifier=code)
    initial = TokenManager(store).get_valid_token("box_force_late", config)
    assert initial.obtained_at is not None and initial.expires_at is not None
    almost_expired = initial.expires_at - 0.1  # obtained 2.9 s ago, inside the 5 s reuse window
    forced = TokenManager(store, clock=lambda: almost_expired).force_refresh("box_force_late", config)
    assert forced.access_token != initial.access_token
    assert grants(fresh_emulator, "refresh_token") == 1


def test_status_reads_metadata_only(
    fresh_emulator: RunningEmulator, sqlite_store_url: str, store_key: str
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_status", verifier=code)
    token = TokenManager(open_store(sqlite_store_url, store_key)).get_valid_token("box_status", config)
    status = TokenManager(open_store(sqlite_store_url, new_key())).status("box_status")  # another key
    assert status is not None
    assert (status.service, status.version, status.expires_at) == ("box", 1, token.expires_at)
    assert TokenManager(open_store(sqlite_store_url, store_key)).status("missing") is None


# -- records that cannot be decrypted ----------------------------------------------------------------


def test_an_undecryptable_record_stops_the_manager_and_is_kept(
    fresh_emulator: RunningEmulator, sqlite_store_url: str, store_key: str
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    config = box_config(fresh_emulator, "box_lost_key", verifier=code)
    TokenManager(open_store(sqlite_store_url, store_key)).get_valid_token("box_lost_key", config)
    wrong = TokenManager(open_store(sqlite_store_url, new_key()))
    for attempt in (
        lambda: wrong.get_valid_token("box_lost_key", config),
        lambda: wrong.force_refresh("box_lost_key", config),
    ):
        with pytest.raises(TokenStoreError, match="box_lost_key") as excinfo:
            attempt()
        assert "key" in str(excinfo.value)
    replacement = box_tokens(fresh_emulator)
    with pytest.raises(TokenStoreError, match="cannot be decrypted"):
        wrong.store_tokens("box_lost_key", config, replacement)
    assert open_store(sqlite_store_url, store_key).read("box_lost_key") is not None  # still the old record
    assert grants(fresh_emulator, "refresh_token") == 0
    # A person re-seeding on purpose may replace it.
    wrong.store_tokens("box_lost_key", config, replacement, force=True)
    assert wrong.get_valid_token("box_lost_key", config).access_token == replacement.access_token
    with pytest.raises(TokenStoreError):
        open_store(sqlite_store_url, store_key).read("box_lost_key")


def test_stored_tokens_are_served_without_network(
    fresh_emulator: RunningEmulator, store: CountingStore
) -> None:
    code = fresh_emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    # The connection still carries the verifier the CLI used: storing marks it used, so it is never sent.
    config = box_config(fresh_emulator, "box_cli", verifier=code)
    tokens = flows.exchange_code(config, code, callback_url=REDIRECT_URI)
    TokenManager(store).store_tokens("box_cli", config, tokens)
    fresh = TokenManager(store)
    assert fresh.get_valid_token("box_cli", config).access_token == tokens.access_token
    assert due(fresh, "box_cli", config).access_token != tokens.access_token
    assert grants(fresh_emulator, "authorization_code") == 1
    assert no_invalid_grant(fresh_emulator)


@pytest.fixture(autouse=True)
def _no_leftover_stores() -> Iterator[None]:
    yield
    from dropbox_box_provider.store.factory import forget_open_stores

    forget_open_stores()
