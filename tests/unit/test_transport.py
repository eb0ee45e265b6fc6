"""The retry policy's pure decisions and the thin sync/async loops around them, on a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import os
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropbox_box_provider import errors
from dropbox_box_provider.auth import transport
from dropbox_box_provider.auth.transport import RetryPolicy

URL = "http://127.0.0.1:9/api.box.com/oauth2/token"
NO_JITTER = RetryPolicy(jitter=False, base_delay=1.0, max_delay=8.0, max_attempts=6, total_budget=100.0)


def response(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", URL))


def exc(kind: type[httpx.RequestError]) -> httpx.RequestError:
    return kind("boom", request=httpx.Request("POST", URL))


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def scripted(
    outcomes: list[httpx.Response | type[httpx.RequestError]],
) -> tuple[httpx.MockTransport, list[bytes]]:
    """A transport that plays ``outcomes`` in order and records each request body it saw."""
    bodies: list[bytes] = []
    queue: Iterator[httpx.Response | type[httpx.RequestError]] = iter(outcomes)

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        item = next(queue)
        if isinstance(item, httpx.Response):
            return httpx.Response(item.status_code, headers=item.headers, content=b"{}")
        raise item("scripted failure", request=request)

    return httpx.MockTransport(handler), bodies


# --- pure decisions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 301, 400, 401, 403, 404, 409, 501])
def test_non_retryable_statuses_stop(status: int) -> None:
    assert NO_JITTER.next_delay(1, response(status), 0.0) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_back_off_exponentially(status: int) -> None:
    delays = [NO_JITTER.next_delay(attempt, response(status), 0.0) for attempt in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]  # capped at max_delay


def test_retry_after_is_honoured_exactly() -> None:
    assert NO_JITTER.next_delay(1, response(429, "3"), 0.0) == 3.0
    assert NO_JITTER.next_delay(1, response(503, "0"), 0.0) == 0.0


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert NO_JITTER.next_delay(1, response(429, date), 0.0, now=now) == pytest.approx(7.0)


def test_retry_after_beyond_cap_stops_so_caller_gets_rate_limited() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.next_delay(1, response(429, "10"), 0.0) == 10.0
    assert policy.next_delay(1, response(429, "11"), 0.0) is None


def test_429_without_retry_after_backs_off() -> None:
    assert NO_JITTER.next_delay(2, response(429), 0.0) == 2.0
    assert NO_JITTER.next_delay(1, response(429, "soon"), 0.0) == 1.0  # unreadable hint: plain backoff


def test_attempt_limit_and_time_budget() -> None:
    assert NO_JITTER.next_delay(5, response(500), 0.0) == 8.0
    assert NO_JITTER.next_delay(6, response(500), 0.0) is None
    assert NO_JITTER.next_delay(1, response(500), 99.5) is None  # 99.5 + 1 would leave the 100 s budget
    assert NO_JITTER.next_delay(1, response(500), 98.0) == 1.0
    assert NO_JITTER.next_delay(1, response(429, "30"), 80.0) is None


@pytest.mark.parametrize(
    "kind",
    [
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.ReadError,
        httpx.ReadTimeout,
        httpx.WriteError,
        httpx.WriteTimeout,
        httpx.RemoteProtocolError,
    ],
)
def test_connection_errors_retry_for_idempotent_requests(kind: type[httpx.RequestError]) -> None:
    assert NO_JITTER.next_delay(1, exc(kind), 0.0) == 1.0


@pytest.mark.parametrize(
    "kind", [httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.TooManyRedirects]
)
def test_errors_that_repeat_identically_stop(kind: type[httpx.RequestError]) -> None:
    assert NO_JITTER.next_delay(1, exc(kind), 0.0) is None


@pytest.mark.parametrize("kind", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_single_use_requests_retry_when_never_sent(kind: type[httpx.RequestError]) -> None:
    assert NO_JITTER.next_delay(1, exc(kind), 0.0, single_use=True) == 1.0


@pytest.mark.parametrize(
    "kind",
    [httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout, httpx.RemoteProtocolError],
)
def test_single_use_requests_never_resent_once_possibly_processed(kind: type[httpx.RequestError]) -> None:
    assert NO_JITTER.next_delay(1, exc(kind), 0.0, single_use=True) is None


def test_single_use_requests_only_retry_statuses_that_mean_not_processed() -> None:
    assert NO_JITTER.next_delay(1, response(429, "1"), 0.0, single_use=True) == 1.0
    assert NO_JITTER.next_delay(1, response(503), 0.0, single_use=True) == 1.0
    for status in (500, 502, 504):
        assert NO_JITTER.next_delay(1, response(status), 0.0, single_use=True) is None


@given(
    attempt=st.integers(min_value=1, max_value=200),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_full_jitter_stays_within_the_exponential_ceiling(attempt: int, draw: float) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=20.0)
    delay = policy.backoff(attempt, rng=lambda: draw)
    assert 0.0 <= delay <= min(20.0, 0.5 * 2 ** min(attempt - 1, 32))


# --- the sync loop ----------------------------------------------------------------------------------------


def run(
    outcomes: list[httpx.Response | type[httpx.RequestError]],
    *,
    policy: RetryPolicy = NO_JITTER,
    single_use: bool = False,
    request: transport.RequestSource | None = None,
) -> tuple[httpx.Response, FakeClock, list[bytes]]:
    mock, bodies = scripted(outcomes)
    clock = FakeClock()
    with httpx.Client(transport=mock) as client:
        result = transport.send(
            client,
            request or httpx.Request("POST", URL, data={"a": "b"}),
            policy=policy,
            single_use=single_use,
            clock=clock,
            sleep=clock.sleep,
        )
    return result, clock, bodies


def test_5xx_then_success() -> None:
    result, clock, bodies = run([response(500), response(502), response(200)])
    assert result.status_code == 200
    assert clock.sleeps == [1.0, 2.0]
    assert bodies == [b"a=b"] * 3  # the same body each time


def test_429_retry_after_then_success() -> None:
    result, clock, _ = run([response(429, "3"), response(200)])
    assert result.status_code == 200
    assert clock.sleeps == [3.0]


def test_exhausted_statuses_return_the_last_response() -> None:
    result, clock, bodies = run([response(503)] * 6)
    assert result.status_code == 503
    assert len(bodies) == 6
    assert sum(clock.sleeps) <= NO_JITTER.total_budget


def test_budget_bounds_total_waiting() -> None:
    policy = RetryPolicy(jitter=False, max_attempts=10, total_budget=5.0)
    result, clock, bodies = run([response(429, "2")] * 10, policy=policy)
    assert result.status_code == 429
    assert clock.sleeps == [2.0, 2.0]
    assert len(bodies) == 3


def test_connect_errors_exhausted_raise_typed_transport_error() -> None:
    with pytest.raises(errors.TransportError) as info:
        run([httpx.ConnectError] * 6)
    assert info.value.code == "connection_failed"
    assert "6 attempt(s)" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_dropped_connection_on_single_use_request_is_not_resent() -> None:
    mock, bodies = scripted([httpx.RemoteProtocolError, response(200)])
    clock = FakeClock()
    with httpx.Client(transport=mock) as client, pytest.raises(errors.TransportError) as info:
        transport.send(client, httpx.Request("POST", URL), single_use=True, clock=clock, sleep=clock.sleep)
    assert info.value.code == "outcome_unknown"
    assert "authorize" in str(info.value)
    assert len(bodies) == 1
    assert clock.sleeps == []


def test_dropped_connection_on_idempotent_request_is_resent() -> None:
    result, _clock, bodies = run([httpx.ReadError, httpx.RemoteProtocolError, response(200)])
    assert result.status_code == 200
    assert len(bodies) == 3


def test_single_use_request_retries_connect_error_and_503() -> None:
    result, _, bodies = run([httpx.ConnectError, response(503), response(200)], single_use=True)
    assert result.status_code == 200
    assert len(bodies) == 3


def test_request_factory_builds_a_fresh_request_per_attempt() -> None:
    counter = iter(range(100))

    def build() -> httpx.Request:
        return httpx.Request("POST", URL, data={"jti": str(next(counter))})

    _, _, bodies = run([response(500), response(500), response(200)], request=build)
    assert bodies == [b"jti=0", b"jti=1", b"jti=2"]


def test_real_sleep_default_is_not_used_with_fake_clock() -> None:
    """Guard for the suite's no-long-sleeps rule: a 60 s Retry-After completes instantly on the fake clock."""
    result, clock, _ = run([response(429, "60"), response(200)], policy=RetryPolicy(jitter=False))
    assert result.status_code == 200
    assert clock.sleeps == [60.0]


# --- the async loop ---------------------------------------------------------------------------------------


def arun(
    outcomes: list[httpx.Response | type[httpx.RequestError]], *, single_use: bool = False
) -> tuple[httpx.Response | BaseException, FakeClock, list[bytes]]:
    mock, bodies = scripted(outcomes)
    clock = FakeClock()

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=mock) as client:
            return await transport.asend(
                client,
                httpx.Request("POST", URL, data={"a": "b"}),
                policy=NO_JITTER,
                single_use=single_use,
                clock=clock,
                sleep=clock.asleep,
            )

    try:
        return asyncio.run(main()), clock, bodies
    except errors.TransportError as error:
        return error, clock, bodies


def test_async_loop_makes_the_same_decisions() -> None:
    result, clock, bodies = arun([response(500), response(429, "3"), response(200)])
    assert isinstance(result, httpx.Response) and result.status_code == 200
    assert clock.sleeps == [1.0, 3.0]
    assert len(bodies) == 3


def test_async_loop_single_use_read_error_not_resent() -> None:
    result, _clock, bodies = arun([httpx.ReadTimeout, response(200)], single_use=True)
    assert isinstance(result, errors.TransportError) and result.code == "outcome_unknown"
    assert len(bodies) == 1


def test_async_loop_connect_errors_exhausted() -> None:
    result, clock, bodies = arun([httpx.ConnectError] * 6)
    assert isinstance(result, errors.TransportError) and result.code == "connection_failed"
    assert len(bodies) == 6
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0]


# --- clients ----------------------------------------------------------------------------------------------


def test_shared_client_is_reused_and_replaced_after_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    first = transport.shared_client()
    assert transport.shared_client() is first
    assert first.timeout.connect == 10.0 and first.timeout.read == 60.0
    assert first.follow_redirects is False
    real_pid: Callable[[], int] = os.getpid
    monkeypatch.setattr(os, "getpid", lambda: real_pid() + 1)
    assert transport.shared_client() is not first


def dropbox_409(error: dict[str, object], summary: str) -> httpx.Response:
    return httpx.Response(
        409, json={"error_summary": f"{summary}/..", "error": error}, request=httpx.Request("POST", URL)
    )


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        ({".tag": "path", "reason": {".tag": "too_many_write_operations"}, "upload_session_id": ""},
         "path/too_many_write_operations"),
        ({".tag": "path_write", "path_write": {".tag": "too_many_write_operations"}},
         "path_write/too_many_write_operations"),
        ({".tag": "too_many_write_operations"}, "too_many_write_operations"),
    ],
)  # fmt: skip
def test_dropbox_write_contention_is_retried_with_backoff_like_a_429(
    error: dict[str, object], summary: str
) -> None:
    policy = RetryPolicy(jitter=False)
    assert policy.next_delay(1, dropbox_409(error, summary), 0.0) == policy.backoff(1)
    assert policy.next_delay(3, dropbox_409(error, summary), 0.0) == policy.backoff(3)
    assert policy.next_delay(policy.max_attempts, dropbox_409(error, summary), 0.0) is None


def test_other_dropbox_409s_are_not_retried() -> None:
    conflict = {".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}
    assert RetryPolicy().next_delay(1, dropbox_409(conflict, "path/conflict/file"), 0.0) is None
    plain = httpx.Response(409, content=b"not json", request=httpx.Request("POST", URL))
    assert RetryPolicy().next_delay(1, plain, 0.0) is None


def test_token_requests_end_before_the_lease_holder_stops_renewing() -> None:
    """Retries plus one attempt's timeouts fit in the deadline the refresh lease is renewed for."""
    from dropbox_box_provider.auth import flows
    from dropbox_box_provider.store.lease import TOKEN_REQUEST_DEADLINE

    timeout = flows.TOKEN_TIMEOUT
    assert timeout.read is not None and timeout.connect is not None
    worst = flows.RETRY_POLICY.total_budget + timeout.connect + timeout.read
    assert worst < TOKEN_REQUEST_DEADLINE
