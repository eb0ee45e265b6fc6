"""TokenSet validity rules: refresh margin, clock skew, refresh-token fallback, serialization, repr."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropbox_box_provider.auth.tokens import CachedToken, TokenSet

NOW = 1_700_000_000.0


def test_valid_only_beyond_the_margin() -> None:
    token = TokenSet(access_token="a", expires_at=NOW + 400)
    assert token.is_valid(margin=300, now=NOW)
    assert not token.is_valid(margin=300, now=NOW + 100)  # exactly at the margin counts as expired
    assert not token.is_valid(margin=300, now=NOW + 150)
    assert token.is_valid(margin=0, now=NOW + 399)
    assert not token.is_valid(margin=0, now=NOW + 400)


def test_default_margin_is_five_minutes() -> None:
    token = TokenSet(access_token="a", expires_at=NOW + 299)
    assert not token.is_valid(now=NOW)
    assert TokenSet(access_token="a", expires_at=NOW + 301).is_valid(now=NOW)


def test_expires_in_counts_down_and_goes_negative() -> None:
    token = TokenSet(access_token="a", expires_at=NOW + 10)
    assert token.expires_in(NOW) == 10
    assert token.expires_in(NOW + 25) == -15
    assert TokenSet(access_token="a").expires_in(NOW) is None


def test_uses_the_wall_clock_when_no_time_is_given() -> None:
    assert TokenSet(access_token="a", expires_at=time.time() + 3600).is_valid()
    assert not TokenSet(access_token="a", expires_at=time.time() - 1).is_valid(margin=0)


def test_no_expiry_is_valid_but_an_empty_token_never_is() -> None:
    assert TokenSet(access_token="a").is_valid(margin=10_000, now=NOW)
    assert not TokenSet(access_token="").is_valid(now=NOW)
    assert not TokenSet(access_token="", expires_at=NOW + 10_000).is_valid(now=NOW)


@pytest.mark.parametrize(
    ("skew", "valid"),
    [
        (-120.0, True),  # this machine's clock is behind: it still sees 720 s left, more than the margin
        (0.0, True),  # 600 s left
        (250.0, True),  # 350 s left: still beyond the 300 s margin
        (301.0, False),  # ahead by more than the slack: refreshes early rather than sending an expired token
        (700.0, False),  # far ahead: already past expiry
    ],
)
def test_clock_skew_between_machines_is_absorbed_by_the_margin(skew: float, valid: bool) -> None:
    # Another worker stored a token valid for 600 s by its clock; this worker reads it with a skewed clock.
    token = TokenSet(access_token="a", expires_at=NOW + 600)
    assert token.is_valid(margin=300, now=NOW + skew) is valid


@given(
    expires_in=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    margin=st.floats(min_value=0, max_value=1e5, allow_nan=False),
)
def test_validity_is_remaining_time_greater_than_margin(expires_in: float, margin: float) -> None:
    token = TokenSet(access_token="a", expires_at=NOW + expires_in)
    assert token.is_valid(margin=margin, now=NOW) == ((NOW + expires_in) - NOW > margin)


def test_refresh_fallback_keeps_the_previous_refresh_token_when_none_came_back() -> None:
    dropbox_refresh = TokenSet(access_token="new", expires_at=NOW + 14400)
    kept = dropbox_refresh.with_refresh_fallback("old-refresh")
    assert kept.refresh_token == "old-refresh"
    assert kept.access_token == "new"
    assert kept.expires_at == NOW + 14400


def test_refresh_fallback_prefers_a_rotated_refresh_token() -> None:
    box_refresh = TokenSet(access_token="new", refresh_token="rotated")
    assert box_refresh.with_refresh_fallback("old-refresh").refresh_token == "rotated"


def test_refresh_fallback_without_a_previous_token_changes_nothing() -> None:
    token = TokenSet(access_token="new")
    assert token.with_refresh_fallback(None) is token
    assert token.with_refresh_fallback("").refresh_token is None


def test_repr_and_str_never_show_tokens() -> None:
    token = TokenSet(
        access_token="sl.ACCESS-SECRET",
        refresh_token="REFRESH-SECRET",
        expires_at=NOW,
        scope="files.content.read",
        account_id="dbid:abc",
    )
    for text in (repr(token), str(token), repr([token])):
        assert "ACCESS-SECRET" not in text
        assert "REFRESH-SECRET" not in text
    assert "files.content.read" in repr(token)


def test_dict_round_trip_ignores_unknown_keys() -> None:
    token = TokenSet(
        access_token="a",
        refresh_token="r",
        expires_at=NOW,
        refresh_issued_at=NOW - 5,
        scope="s",
        account_id="acc",
        extra={"uid": "12"},
    )
    data = token.to_dict() | {"obtained_at": NOW, "verifier_fingerprint": None, "from_the_future": 1}
    restored = TokenSet.from_dict(data)
    assert restored == dataclasses.replace(token, obtained_at=NOW)
    assert restored.extra == {"uid": "12"}


def test_the_refresh_margin_is_capped_at_half_the_lifetime() -> None:
    token = TokenSet(access_token="a", expires_at=NOW + 3600, obtained_at=NOW)
    assert token.effective_margin(3600) == 1800
    assert token.effective_margin(300) == 300
    assert token.is_valid(3600, now=NOW + 1)  # a margin >= the lifetime no longer means "always due"
    assert not token.is_valid(3600, now=NOW + 1801)
    assert TokenSet(access_token="a", expires_at=NOW + 10).effective_margin(300) == 300  # lifetime unknown


def test_trusted_for_is_expiry_minus_the_effective_margin() -> None:
    token = TokenSet(access_token="a", expires_at=NOW + 3600, obtained_at=NOW)
    assert token.trusted_for(300, now=NOW + 100) == 3600 - 100 - 300
    assert token.trusted_for(3600, now=NOW) == 1800  # margin capped at half the lifetime
    assert token.trusted_for(300, now=NOW + 3400) < 0  # already due
    assert TokenSet(access_token="a").trusted_for(300, now=NOW) == math.inf  # no expiry


@given(remaining=st.floats(-1e5, 1e5), margin=st.floats(0, 1e4))
def test_trusted_until_the_moment_is_valid_turns_false(remaining: float, margin: float) -> None:
    token = TokenSet(access_token="a", expires_at=NOW + remaining)
    assert (token.trusted_for(margin, now=NOW) > 0) == token.is_valid(margin, now=NOW)


def test_cached_token_deadline_is_on_the_monotonic_clock_and_expire_ends_it() -> None:
    token = TokenSet(access_token="ACCESS-SECRET", expires_at=NOW + 3600, obtained_at=NOW)
    before = time.monotonic()
    cached = CachedToken.trusted(token, 300, now=NOW, seed="s")
    after = time.monotonic()
    assert before + 3300 <= cached.deadline <= after + 3300
    assert cached.access_token == "ACCESS-SECRET" and cached.tokens is token and cached.seed == "s"
    assert "SECRET" not in repr(cached)
    cached.expire()
    assert not time.monotonic() < cached.deadline
