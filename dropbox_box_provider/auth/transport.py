"""The provider's one HTTP retry policy: 429/5xx/connection failures, backoff, budget, single-use grants.

Retry rule for single-use requests (Box refresh, every authorization-code exchange): the request is resent
only when the service certainly did not process it -- the connection was never established (ConnectError,
ConnectTimeout, PoolTimeout) or the service refused it before handling it (429, 503, Dropbox's 409
``too_many_write_operations``, which is retried with backoff like a 429). After a read error,
timeout, dropped connection, 500, 502 or 504 the token may already have been consumed; resending could only
produce ``invalid_grant``, so the caller gets ``TransportError``/``ServiceError`` instead and its stored
refresh token stays untouched for the next attempt.

Other requests are resent after such an ambiguous outcome, and the final response then carries
``may_have_acted(response)``: an earlier attempt may have taken effect although its answer was lost. Callers
read an "already done" answer to such a resend as success; these are the cases:

- Dropbox ``files/delete_v2`` answering 409 ``path_lookup/not_found``: the first attempt deleted it.
- Box ``POST /folders`` answering 409 ``item_name_in_use`` with a folder in the same parent: the first
  attempt created it (the hook returns that folder even with ``exist_ok=False``).
- A Box upload session commit answering 404 (the session is gone): the first attempt committed it; the
  hook takes the file of that name in the folder, its SHA-1 checked against the local file's.
- Uploads (Box multipart and session create, Dropbox single-request upload), copy and move that find a
  conflict: the target holding identical content (Box ``sha1``, Dropbox ``content_hash``) is success
  whether or not an answer was lost, so these need no flag.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import dataclasses
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx

from dropbox_box_provider.auth.backoff import current_gate
from dropbox_box_provider.auth.services import is_write_contention, retry_after_seconds
from dropbox_box_provider.errors import TransportError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = "airflow-provider-dropbox-box"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses whose semantics say the request was refused before it was handled (RFC 6585, RFC 9110).
NOT_PROCESSED_STATUSES = frozenset({429, 503})
# The connection never carried the request.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# The request may have reached the service; only idempotent requests are resent.
AMBIGUOUS_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)

# How resolvers word "no such name" when the cause is not a socket.gaierror (e.g. a proxy's own error).
_NAME_RESOLUTION_WORDS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
    "name resolution",
)

Outcome = httpx.Response | BaseException
# Response.extensions key set when an earlier attempt of the request may have been processed.
MAY_HAVE_ACTED = "dropbox_box_may_have_acted"
# Answers after which the service may have processed the request (the others refused it before acting).
_UNKNOWN_OUTCOME_STATUSES = frozenset({500, 502, 504})


def may_have_acted(response: httpx.Response) -> bool:
    """True when ``response`` answers a resend whose earlier attempt's outcome is unknown (read error,
    dropped connection, 500/502/504): an "already done" answer then means the first attempt did it."""
    return bool(response.extensions.get(MAY_HAVE_ACTED))


def slows_everyone(outcome: Outcome) -> bool:
    """A refusal that concerns the whole connection, not this request: 429, 503, write contention."""
    return isinstance(outcome, httpx.Response) and (
        outcome.status_code in NOT_PROCESSED_STATUSES or is_write_contention(outcome)
    )


def _outcome_unknown(outcome: Outcome) -> bool:
    if isinstance(outcome, httpx.Response):
        return outcome.status_code in _UNKNOWN_OUTCOME_STATUSES
    return isinstance(outcome, AMBIGUOUS_ERRORS)


RequestSource = httpx.Request | Callable[[], httpx.Request]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop. Delays are exponential with full jitter; ``Retry-After`` is honoured exactly
    up to ``max_retry_after`` seconds, and a longer hint ends the loop (the caller gets ``RateLimited``)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    total_budget: float = 120.0
    jitter: bool = True
    retry_statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)
    retry_name_resolution: bool = True

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Delay after attempt ``attempt`` (1-based): ``min(max_delay, base * 2**(attempt-1))``, jittered."""
        ceiling = min(self.max_delay, self.base_delay * float(2 ** min(attempt - 1, 32)))
        return ceiling * rng() if self.jitter else ceiling

    def next_delay(
        self,
        attempt: int,
        outcome: Outcome,
        elapsed: float,
        *,
        single_use: bool = False,
        rng: Callable[[], float] = random.random,
        now: float | None = None,
    ) -> float | None:
        """Seconds to wait before resending after ``attempt`` ended in ``outcome``, or None to stop.

        Pure decision shared by the sync and async loops. ``elapsed`` counts from the first attempt;
        ``now`` (wall clock) only serves HTTP-date ``Retry-After`` values.
        """
        if attempt >= self.max_attempts:
            return None
        if isinstance(outcome, httpx.Response):
            status = outcome.status_code
            contention = is_write_contention(outcome)
            if status not in self.retry_statuses and not contention:
                return None
            if single_use and status not in NOT_PROCESSED_STATUSES and not contention:
                return None
            hint = retry_after_seconds(outcome, now) if status in (429, 503) else None
            if hint is not None:
                if hint > self.max_retry_after:
                    return None
                delay = hint
            else:
                delay = self.backoff(attempt, rng)
        elif isinstance(outcome, NOT_SENT_ERRORS):
            if not self.retry_name_resolution and is_name_resolution_failure(outcome):
                return None
            delay = self.backoff(attempt, rng)
        elif isinstance(outcome, AMBIGUOUS_ERRORS):
            if single_use:
                return None
            delay = self.backoff(attempt, rng)
        else:
            return None
        if elapsed + delay > self.total_budget:
            return None
        return delay


DEFAULT_RETRY_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)
#: The bound of a connection test (the UI's Test button): an answer within about 3 s, with the real cause.
QUICK_ANSWER_POLICY = RetryPolicy(
    max_attempts=2,
    base_delay=0.2,
    max_delay=0.5,
    max_retry_after=0.5,
    total_budget=1.0,
    retry_name_resolution=False,
)
QUICK_ANSWER_TIMEOUT = httpx.Timeout(2.0)

_quick_answer: contextvars.ContextVar[bool] = contextvars.ContextVar("quick_answer", default=False)


@contextlib.contextmanager
def quick_answer() -> Iterator[None]:
    """Within this block every request (API and token endpoint) is bounded by ``QUICK_ANSWER_POLICY`` and
    ``QUICK_ANSWER_TIMEOUT``, and an unresolvable host name is not retried: for a connection test."""
    token = _quick_answer.set(True)
    try:
        yield
    finally:
        _quick_answer.reset(token)


def _bounded(policy: RetryPolicy, request: httpx.Request) -> RetryPolicy:
    """``policy`` capped by the quick-answer bounds when a connection test runs; sets the request timeout."""
    if not _quick_answer.get():
        return policy
    request.extensions["timeout"] = QUICK_ANSWER_TIMEOUT.as_dict()
    quick = QUICK_ANSWER_POLICY
    return dataclasses.replace(
        policy,
        max_attempts=min(policy.max_attempts, quick.max_attempts),
        max_delay=min(policy.max_delay, quick.max_delay),
        max_retry_after=min(policy.max_retry_after, quick.max_retry_after),
        total_budget=min(policy.total_budget, quick.total_budget),
        retry_name_resolution=False,
    )


def is_name_resolution_failure(exc: BaseException) -> bool:
    """True when a connection failed because the host name could not be resolved (DNS), not refused."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        current = current.__cause__ or current.__context__
    text = str(exc).lower()
    return isinstance(exc, httpx.ConnectError) and any(word in text for word in _NAME_RESOLUTION_WORDS)


def _build(source: RequestSource) -> httpx.Request:
    return source() if callable(source) else source


def _label(request: httpx.Request) -> str:
    return f"{request.method} {request.url.host}{request.url.path}"


def _describe(outcome: Outcome) -> str:
    if isinstance(outcome, httpx.Response):
        return f"HTTP {outcome.status_code}"
    return f"{type(outcome).__name__}: {outcome}" if str(outcome) else type(outcome).__name__


def _give_up(
    request: httpx.Request, exc: BaseException, attempt: int, elapsed: float, single_use: bool
) -> TransportError:
    what = f"{_label(request)} failed ({_describe(exc)}) after {attempt} attempt(s) in {elapsed:.1f} s"
    if is_name_resolution_failure(exc):
        return TransportError(
            f"the host name {request.url.host!r} could not be resolved (DNS): {what}. Check the spelling "
            "of the connection's Host (endpoint override), and this machine's DNS and proxy settings",
            code="name_resolution_failed",
        )
    if single_use and isinstance(exc, AMBIGUOUS_ERRORS):
        error = TransportError(
            f"{what}. The service may have processed it and consumed the one-time code or refresh token, so "
            "it was not resent. Run the task again; if it then reports invalid_grant, authorize the "
            "connection again",
            code="outcome_unknown",
        )
    else:
        error = TransportError(
            f"{what}. Check that the service (or the connection's Host override) is reachable, then run "
            "the task again",
            code="connection_failed",
        )
    return error


def send(
    client: httpx.Client,
    request: RequestSource,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    single_use: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> httpx.Response:
    """Send with retries; returns the final response (any status) or raises ``errors.TransportError``.

    Pass a factory instead of a request when each attempt needs a fresh body (e.g. a new JWT ``jti``).
    """
    start = clock()
    attempt = 0
    unknown = False
    gate = current_gate()
    while True:
        attempt += 1
        if gate is not None:
            gate.wait()
        built = _build(request)
        bounded = _bounded(policy, built)
        outcome: Outcome
        try:
            outcome = client.send(built)
            if outcome.status_code == 409:
                outcome.read()  # small; says whether it is Dropbox's retryable write contention
        except httpx.RequestError as exc:
            outcome = exc
        elapsed = clock() - start
        delay = bounded.next_delay(attempt, outcome, elapsed, single_use=single_use, rng=rng)
        if delay is None:
            if isinstance(outcome, httpx.Response):
                if unknown:
                    outcome.extensions[MAY_HAVE_ACTED] = True
                return outcome
            raise _give_up(built, outcome, attempt, elapsed, single_use) from outcome
        unknown = unknown or _outcome_unknown(outcome)
        if gate is not None and slows_everyone(outcome):
            gate.hold(delay)  # the other workers of this transfer wait too
        if isinstance(outcome, httpx.Response):
            outcome.close()
        log.warning(
            "%s: %s; retrying in %.2f s (attempt %d)", _label(built), _describe(outcome), delay, attempt
        )
        sleep(delay)


async def asend(
    client: httpx.AsyncClient,
    request: RequestSource,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    single_use: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> httpx.Response:
    """Async twin of ``send`` with the same decisions (``RetryPolicy.next_delay``)."""
    start = clock()
    attempt = 0
    unknown = False
    gate = current_gate()
    while True:
        attempt += 1
        if gate is not None:
            await gate.await_open()
        built = _build(request)
        bounded = _bounded(policy, built)
        outcome: Outcome
        try:
            outcome = await client.send(built)
            if outcome.status_code == 409:
                await outcome.aread()  # small; says whether it is Dropbox's retryable write contention
        except httpx.RequestError as exc:
            outcome = exc
        elapsed = clock() - start
        delay = bounded.next_delay(attempt, outcome, elapsed, single_use=single_use, rng=rng)
        if delay is None:
            if isinstance(outcome, httpx.Response):
                if unknown:
                    outcome.extensions[MAY_HAVE_ACTED] = True
                return outcome
            raise _give_up(built, outcome, attempt, elapsed, single_use) from outcome
        unknown = unknown or _outcome_unknown(outcome)
        if gate is not None and slows_everyone(outcome):
            gate.hold(delay)
        if isinstance(outcome, httpx.Response):
            await outcome.aclose()
        log.warning(
            "%s: %s; retrying in %.2f s (attempt %d)", _label(built), _describe(outcome), delay, attempt
        )
        await sleep(delay)


def new_client(**kwargs: object) -> httpx.Client:
    """An httpx.Client with the provider's defaults (timeouts, no redirects, user agent)."""
    options: dict[str, object] = {
        "timeout": DEFAULT_TIMEOUT,
        "follow_redirects": False,
        "headers": {"User-Agent": USER_AGENT},
    }
    options.update(kwargs)
    return httpx.Client(**options)  # type: ignore[arg-type]


def new_async_client(**kwargs: object) -> httpx.AsyncClient:
    """An httpx.AsyncClient with the provider's defaults."""
    options: dict[str, object] = {
        "timeout": DEFAULT_TIMEOUT,
        "follow_redirects": False,
        "headers": {"User-Agent": USER_AGENT},
    }
    options.update(kwargs)
    return httpx.AsyncClient(**options)  # type: ignore[arg-type]


_shared_lock = threading.Lock()
_shared_client: httpx.Client | None = None
_shared_pid: int | None = None


def shared_client() -> httpx.Client:
    """A per-process keep-alive client for token requests; a forked child gets its own, never the parent's."""
    global _shared_client, _shared_pid  # noqa: PLW0603
    with _shared_lock:
        if _shared_client is None or _shared_pid != os.getpid():
            _shared_client = new_client()
            _shared_pid = os.getpid()
        return _shared_client


def _close_shared() -> None:
    if _shared_client is not None and _shared_pid == os.getpid():
        _shared_client.close()


atexit.register(_close_shared)
