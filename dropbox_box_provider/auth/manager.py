"""TokenManager: hands out valid access tokens, calling the token endpoint once per expiry across
threads, processes and machines that share one token store (docs/architecture.md, "single-flight refresh").

Threads of one process single-flight on a per-connection lock; processes and machines on the store's
per-connection lease (``store/lease.py``), which no database transaction holds while the token request runs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.tokens import CachedToken, TokenSet
from dropbox_box_provider.errors import AuthConfigError, ReauthorizationRequired, TokenStoreError
from dropbox_box_provider.store.base import RecordMeta, TokenRecord, TokenStore
from dropbox_box_provider.store.lease import Lease, LeaseSettings

# Payload keys stored beside TokenSet.to_dict() (TokenSet.from_dict ignores them).
OBTAINED_AT_KEY = "obtained_at"
VERIFIER_FINGERPRINT_KEY = "verifier_fingerprint"
KNOWN_TOKENS_KEY = "known_token_fingerprints"
KNOWN_TOKENS_LIMIT = 64
# force_refresh reuses a token another process obtained this recently instead of calling the endpoint again.
FORCE_REFRESH_REUSE_SECONDS = 5.0
_FINGERPRINT_LABEL = b"dropbox-box-provider/seed-fingerprint/v1"


class TokenFlows(Protocol):
    """The token-endpoint calls the manager makes (``dropbox_box_provider.auth.flows`` implements them)."""

    def refresh(self, config: AuthConfig, refresh_token: str) -> TokenSet: ...

    def exchange_code(
        self, config: AuthConfig, code: str, callback_url: str | None = None, code_verifier: str | None = None
    ) -> TokenSet: ...

    def fetch_service_token(self, config: AuthConfig) -> TokenSet: ...


Authorizer = Callable[[str, AuthConfig], TokenSet]


def fingerprint(secret: str) -> str:
    """A keyed hash identifying ``secret`` without revealing it (HMAC-SHA256 under a fixed label)."""
    return hmac.new(_FINGERPRINT_LABEL, secret.encode(), hashlib.sha256).hexdigest()


def tokens_from_record(record: TokenRecord) -> TokenSet:
    """The TokenSet held in a record's decrypted payload."""
    return TokenSet.from_dict(record.payload)


def seed_fingerprint(config: AuthConfig) -> str | None:
    """What the store's record must have been started from for this connection to be served from it.

    OAuth: the seed refresh token (else seed access token) pasted into the connection, None without one.
    JWT/CCG: the app and subject, so a connection pointed at another app or subject gets a fresh token.
    """
    if config.is_service_account:
        identity = "|".join(
            str(part or "")
            for part in (
                config.auth_scheme,
                config.client_id,
                config.subject_type,
                config.subject_id,
                config.jwt_cert,
                config.jwt_public_key_id,
            )
        )
        return fingerprint(identity)
    seed = config.refresh_token or config.access_token
    return fingerprint(seed) if seed else None


_SEEDS: dict[int, tuple[AuthConfig, str | None]] = {}
_SEEDS_LIMIT = 1024


def _seed_of(config: AuthConfig) -> str | None:
    """``seed_fingerprint`` memoized per config object: the HMAC would dominate the no-I/O hot path."""
    entry = _SEEDS.get(id(config))
    if entry is not None and entry[0] is config:
        return entry[1]
    seed = seed_fingerprint(config)
    if len(_SEEDS) >= _SEEDS_LIMIT:
        _SEEDS.clear()
    _SEEDS[id(config)] = (config, seed)  # holding the config keeps its id from being reused
    return seed


class _NeedsPerson(Exception):
    """Internal: no grant is left and only an interactive authorization can produce one."""


_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_THREAD_LOCKS_MUTEX = threading.Lock()


def _thread_lock(store_url: str, conn_id: str) -> threading.Lock:
    """The process-wide lock of one connection in one store: threads single-flight before the lease."""
    with _THREAD_LOCKS_MUTEX:
        return _THREAD_LOCKS.setdefault((store_url, conn_id), threading.Lock())


def _fresh_locks_in_child() -> None:
    # A lock held by a parent thread at fork time would stay held forever in the child (Airflow forks tasks).
    # Cached tokens stay usable there: their deadlines are on the system-wide monotonic clock.
    global _THREAD_LOCKS_MUTEX  # noqa: PLW0603
    _THREAD_LOCKS_MUTEX = threading.Lock()
    _THREAD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_child)


class TokenManager:
    """Single-flight token refresh against a TokenStore, for every auth scheme.

    ``get_valid_token`` serves (1) a valid in-process cached token with no I/O (hooks hold the cache entry,
    ``cached_token``, and hand its token out with one monotonic compare until its deadline), else a store
    record valid beyond the effective margin with no lock; otherwise (2) it takes the thread lock and the
    store's lease (or waits for the holder's refresh to land) and re-reads, and only then (3) calls the token
    endpoint once, with no transaction open, and writes the result by a compare-and-swap fenced by the lease.
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        clock: Callable[[], float] = time.time,
        flows: TokenFlows | None = None,
        authorizer: Authorizer | None = None,
        lease: LeaseSettings | None = None,
    ) -> None:
        if flows is None:
            from dropbox_box_provider.auth import flows as flows_module

            flows = flows_module
        self.store = store
        self._clock = clock
        self._flows = flows
        self._authorizer = authorizer
        self.lease = lease or LeaseSettings()
        # One entry per connection, shared by every hook of it (``cached_token``): expiring the entry after
        # a 401 or a refresh drops the token for all of them at once.
        self._cache: dict[str, CachedToken] = {}

    def __repr__(self) -> str:
        return f"TokenManager(store={self.store.url!r})"

    # -- public API --------------------------------------------------------------------------------

    def get_valid_token(self, conn_id: str, config: AuthConfig, *, interactive: bool = False) -> TokenSet:
        """A token valid for more than ``config.refresh_margin`` seconds, refreshed at most once per expiry.

        ``interactive`` allows an ``authorizer`` (the CLI's browser flow) when GETANDREFRESH finds no grant.
        Raises ReauthorizationRequired when a person must authorize again.
        """
        if config.uses_static_token:
            return self._static_token(conn_id, config)
        seed = _seed_of(config)
        tokens = self._cached(conn_id, seed, config.refresh_margin)
        if tokens is not None:
            return tokens
        record = self.store.read(conn_id)
        tokens = self._usable(record, config, seed)
        if tokens is not None:
            self._remember(conn_id, seed, tokens, config.refresh_margin)
            return tokens
        return self._renew(conn_id, config, seed, _version(record), force=False, interactive=interactive)

    def cached_token(self, conn_id: str, config: AuthConfig) -> CachedToken:
        """``get_valid_token`` as the hooks' hot path holds it: the connection's shared cache entry, trusted
        until its monotonic deadline (expiry minus the effective margin) unless a 401, a refresh or
        ``forget`` expires it first."""
        tokens = self.get_valid_token(conn_id, config)
        entry = self._cache.get(conn_id)
        if entry is not None and entry.tokens is tokens:
            return entry
        # A static token, or another thread replaced the entry meanwhile: trusted on its own terms.
        return CachedToken.trusted(tokens, config.refresh_margin, self._clock(), _seed_of(config))

    def force_refresh(self, conn_id: str, config: AuthConfig) -> TokenSet:
        """Obtain a new token now (the refresh operator), unless another process did so moments ago."""
        if config.uses_static_token:
            raise AuthConfigError(
                [
                    "a static access token (auth_scheme static or initiate_oauth OFF) cannot be refreshed; "
                    "set initiate_oauth to REFRESH and give a refresh_token, or replace access_token"
                ],
                conn_id,
            )
        known = _version(self.store.read(conn_id))
        return self._renew(conn_id, config, _seed_of(config), known, force=True, interactive=False)

    def invalidate(self, conn_id: str, access_token: str, config: AuthConfig | None = None) -> bool:
        """After a 401: forget ``access_token``; mark it expired in the store if it is still the stored one.

        Only the token that failed is marked, so N workers hitting the same 401 cause one refresh, not N.
        Returns True when the stored record was marked.
        """
        entry = self._cache.get(conn_id)
        if entry is not None and hmac.compare_digest(entry.access_token, access_token):
            self._drop(conn_id)
        if config is not None and config.uses_static_token:
            return False
        record = self.store.read(conn_id)
        if record is None or not self._holds(record, access_token):
            return False
        with _thread_lock(self.store.url, conn_id), self._lease(conn_id, record.service) as lease:

            def replaced() -> bool | None:
                current = self.store.read(conn_id)
                return True if current is None or not self._holds(current, access_token) else None

            if lease.acquire(replaced, known_version=record.version):
                return False  # another worker's refresh replaced the failed token meanwhile
            record = lease.record()
            if record is None or not self._holds(record, access_token):
                return False
            payload = dict(record.payload)
            payload["expires_at"] = 0.0
            lease.write(
                payload,
                expires_at=0.0,
                refresh_issued_at=record.refresh_issued_at,
                seed_fingerprint=record.seed_fingerprint,
            )
        return True

    def replace_rejected(self, conn_id: str, config: AuthConfig, access_token: str) -> TokenSet:
        """After a 401: a token other than ``access_token``, calling the endpoint only if the store still
        holds it (another worker may have replaced it already). One store write, where ``invalidate`` then
        ``get_valid_token`` makes two; for clients that ask for "a new token" outright (the SDK bridge)."""
        if config.uses_static_token:
            return self._static_token(conn_id, config)
        entry = self._cache.get(conn_id)
        if entry is not None and hmac.compare_digest(entry.access_token, access_token):
            self._drop(conn_id)
        known = _version(self.store.read(conn_id))
        return self._renew(
            conn_id, config, _seed_of(config), known, force=False, interactive=False, rejected=access_token
        )

    def status(self, conn_id: str) -> RecordMeta | None:
        """The store's clear metadata of ``conn_id`` (no decryption, no network), or None."""
        return next((meta for meta in self.store.list_meta() if meta.conn_id == conn_id), None)

    def store_tokens(
        self, conn_id: str, config: AuthConfig, tokens: TokenSet, *, force: bool = False
    ) -> TokenSet:
        """Save tokens a person just obtained (CLI code exchange) as the connection's current grant.

        The connection's present seed and verifier are recorded as used, so neither overrides these tokens.
        ``force`` overwrites a record that cannot be decrypted (lost key) instead of refusing.
        """
        return self._replace_grant(conn_id, config, lambda: tokens, force=force)

    def refresh_with(self, conn_id: str, config: AuthConfig, refresh_token: str) -> TokenSet:
        """RefreshOAuthAccessToken with an explicitly given refresh token: one token call, made under the
        same locks as every other refresh so no worker races it, and stored as the current grant."""

        def refresh() -> TokenSet:
            return self._flows.refresh(config, refresh_token).with_refresh_fallback(refresh_token)

        return self._replace_grant(conn_id, config, refresh)

    def _replace_grant(
        self, conn_id: str, config: AuthConfig, obtain: Callable[[], TokenSet], *, force: bool = False
    ) -> TokenSet:
        seed = _seed_of(config)
        with _thread_lock(self.store.url, conn_id), self._lease(conn_id, config.service) as lease:
            lease.acquire()
            previous = None if force else lease.record()
            stored = self._write(
                lease,
                config,
                obtain(),
                previous=previous,
                seed=seed,
                verifier_fp=fingerprint(config.verifier) if config.verifier else None,
                force=force,
            )
        self._remember(conn_id, seed, stored, config.refresh_margin)
        return stored

    def forget(self, conn_id: str | None = None) -> None:
        """Drop the in-process cache of one connection (or all): the next call reads the store."""
        for cached in list(self._cache) if conn_id is None else [conn_id]:
            self._drop(cached)

    def _remember(self, conn_id: str, seed: str | None, tokens: TokenSet, margin: float) -> CachedToken:
        """Cache ``tokens`` as the connection's entry; the entry it replaces stops being trusted, so the
        hooks holding it pick up this one at their next call."""
        entry = CachedToken.trusted(tokens, margin, self._clock(), seed)
        previous = self._cache.get(conn_id)
        self._cache[conn_id] = entry
        if previous is not None:
            previous.expire()
        return entry

    def _drop(self, conn_id: str) -> None:
        entry = self._cache.pop(conn_id, None)
        if entry is not None:
            entry.expire()

    # -- steps of the protocol ---------------------------------------------------------------------

    def _lease(self, conn_id: str, service: str) -> Lease:
        return Lease(self.store, conn_id, service=service, settings=self.lease)

    def _static_token(self, conn_id: str, config: AuthConfig) -> TokenSet:
        if not config.access_token:
            raise AuthConfigError(
                ["auth_scheme static / initiate_oauth OFF uses access_token as is, but it is empty: set it"],
                conn_id,
            )
        return TokenSet(access_token=config.access_token)

    def _cached(self, conn_id: str, seed: str | None, margin: float) -> TokenSet | None:
        entry = self._cache.get(conn_id)
        if entry is None or entry.seed != seed or not entry.tokens.is_valid(margin, self._clock()):
            return None
        return entry.tokens

    def _needs_reseed(self, record: TokenRecord, config: AuthConfig, seed: str | None) -> bool:
        """True when the connection names a token this record never held (a person pasted a new one).

        A connection served by the token-store backend carries the record's own, possibly already
        rotated, tokens: those are known to the record and never trigger a re-seed.
        """
        if config.is_service_account:
            return record.seed_fingerprint != seed
        if seed is None or record.seed_fingerprint == seed:
            return False
        return seed not in record.payload.get(KNOWN_TOKENS_KEY, ())

    def _usable(self, record: TokenRecord | None, config: AuthConfig, seed: str | None) -> TokenSet | None:
        if record is None or self._needs_reseed(record, config, seed):
            return None
        tokens = tokens_from_record(record)
        return tokens if tokens.is_valid(config.refresh_margin, self._clock()) else None

    @staticmethod
    def _holds(record: TokenRecord, access_token: str) -> bool:
        stored = str(record.payload.get("access_token") or "")
        return bool(stored) and hmac.compare_digest(stored, access_token)

    def _renew(
        self,
        conn_id: str,
        config: AuthConfig,
        seed: str | None,
        known_version: int | None,
        *,
        force: bool,
        interactive: bool,
        rejected: str | None = None,
    ) -> TokenSet:
        """Steps 2 and 3: lock (threads, then processes), re-read, call the endpoint only if still needed.

        ``known_version`` is the record version this call found wanting: any other version is checked first.
        ``rejected`` is an access token the service refused: any other valid token serves, it never does.
        """
        with _thread_lock(self.store.url, conn_id):
            if not force:
                tokens = self._cached(conn_id, seed, config.refresh_margin)
                if tokens is not None and not _is_token(tokens, rejected):
                    return tokens
            try:
                tokens = self._renew_under_lease(
                    conn_id, config, seed, known_version, force=force, rejected=rejected
                )
            except _NeedsPerson as needs:
                if not (interactive and self._authorizer is not None):
                    raise ReauthorizationRequired(conn_id, str(needs)) from None
                tokens = None
        if tokens is None:
            assert self._authorizer is not None
            return self.store_tokens(conn_id, config, self._authorizer(conn_id, config))
        cached = self._cache.get(conn_id)
        if cached is None or cached.tokens is not tokens:
            self._remember(conn_id, seed, tokens, config.refresh_margin)
        return tokens

    def _renew_under_lease(
        self,
        conn_id: str,
        config: AuthConfig,
        seed: str | None,
        known_version: int | None,
        *,
        force: bool,
        rejected: str | None = None,
    ) -> TokenSet:
        def served() -> TokenSet | None:
            """While waiting: the tokens another worker's refresh just stored, if they serve this call."""
            record = self.store.read(conn_id)
            if force:
                return self._recently_obtained(record, config, seed, self._clock())
            tokens = self._usable(record, config, seed)
            return None if _is_token(tokens, rejected) else tokens

        obtained: TokenSet | None = None
        try:
            with self._lease(conn_id, config.service) as lease:
                landed = lease.acquire(served, known_version=known_version)
                if landed is not None:
                    return landed
                record = lease.record()
                now = self._clock()
                if force:
                    recent = self._recently_obtained(record, config, seed, now)
                    if recent is not None:
                        return recent
                else:
                    tokens = self._usable(record, config, seed)
                    if tokens is not None and not _is_token(tokens, rejected):
                        return tokens
                obtained, record_seed, verifier_fp = self._obtain(
                    conn_id, config, record, seed, force=force or rejected is not None
                )
                # Kept in this process even if the store cannot take them: the running task still finishes.
                self._remember(conn_id, seed, obtained, config.refresh_margin)
                return self._write(
                    lease, config, obtained, previous=record, seed=record_seed, verifier_fp=verifier_fp
                )
        except TokenStoreError as exc:
            if obtained is None:
                raise
            lost = (
                "the rotated refresh token is not stored and the previous one is used up: if the store stays "
                "unavailable, every other worker will need re-authorization"
                if config.service == "box" and obtained.refresh_token
                else "the stored tokens stay usable; other workers will refresh on their own"
            )
            raise TokenStoreError(
                f"new tokens for {conn_id!r} were obtained but could not be saved ({exc}). This process "
                f"keeps using them; {lost}. What to do: restore the token store; if workers report "
                f"invalid_grant, authorize again with `dropbox-box-auth authorize {conn_id}`"
            ) from exc

    def _recently_obtained(
        self, record: TokenRecord | None, config: AuthConfig, seed: str | None, now: float
    ) -> TokenSet | None:
        if record is None or self._needs_reseed(record, config, seed):
            return None
        obtained_at = record.payload.get(OBTAINED_AT_KEY)
        tokens = tokens_from_record(record)
        if isinstance(obtained_at, (int, float)) and now - obtained_at <= FORCE_REFRESH_REUSE_SECONDS:
            # Only while in the first half of its life, as good as a fresh one: a short-lived token obtained
            # moments ago may be about to expire, whatever the margin.
            remaining, lifetime = tokens.expires_in(now), tokens.lifetime()
            fresh = remaining is None or (lifetime is not None and remaining > lifetime / 2)
            return tokens if tokens.access_token and fresh else None
        return None

    def _obtain(
        self, conn_id: str, config: AuthConfig, record: TokenRecord | None, seed: str | None, *, force: bool
    ) -> tuple[TokenSet, str | None, str | None]:
        """Call the token endpoint once; returns the tokens, the seed fingerprint and verifier fingerprint."""
        used_verifier = record.payload.get(VERIFIER_FINGERPRINT_KEY) if record is not None else None
        if config.is_service_account:
            return self._flows.fetch_service_token(config), seed, None
        reseed = record is None or self._needs_reseed(record, config, seed)
        if reseed and seed is not None:
            if config.refresh_token:
                tokens = self._flows.refresh(config, config.refresh_token)
                return tokens.with_refresh_fallback(config.refresh_token), seed, used_verifier
            if not force:
                return TokenSet(access_token=config.access_token or ""), seed, used_verifier
            raise _NeedsPerson(
                f"connection {conn_id!r} has a new access_token but no refresh_token: it cannot be refreshed"
            )
        if record is not None and not reseed:
            current = tokens_from_record(record)
            if current.refresh_token:
                tokens = self._flows.refresh(config, current.refresh_token)
                return (
                    tokens.with_refresh_fallback(current.refresh_token),
                    record.seed_fingerprint,
                    used_verifier,
                )
        # No refresh token anywhere: a verifier not exchanged before is the headless way in.
        record_seed = record.seed_fingerprint if record is not None else seed
        if config.verifier and fingerprint(config.verifier) != used_verifier:
            tokens = self._flows.exchange_code(config, config.verifier, callback_url=config.callback_url)
            return tokens, record_seed, fingerprint(config.verifier)
        if record is not None and tokens_from_record(record).access_token:
            raise _NeedsPerson(
                f"the access token of connection {conn_id!r} expired and no refresh token is stored"
            )
        if config.initiate_oauth == "GETANDREFRESH":
            raise _NeedsPerson(
                f"connection {conn_id!r} has no tokens yet and InitiateOAuth=GETANDREFRESH needs a person "
                "to authorize it in a browser, which this non-interactive process cannot do"
            )
        raise _NeedsPerson(
            f"connection {conn_id!r} has no tokens and no unused verifier (InitiateOAuth=REFRESH)"
        )

    def _write(
        self,
        lease: Lease,
        config: AuthConfig,
        tokens: TokenSet,
        *,
        previous: TokenRecord | None,
        seed: str | None,
        verifier_fp: str | None,
        force: bool = False,
    ) -> TokenSet:
        """Write ``tokens`` fenced by ``lease``, stamping when they were obtained and refresh-issued."""
        now = self._clock()
        if tokens.refresh_token and tokens.refresh_issued_at is None:
            before = tokens_from_record(previous) if previous is not None else None
            same = before is not None and before.refresh_token == tokens.refresh_token
            tokens = replace(tokens, refresh_issued_at=before.refresh_issued_at if same and before else now)
        if previous is not None and tokens.account_id is None:
            before = tokens_from_record(previous)
            tokens = replace(tokens, account_id=before.account_id, extra={**before.extra, **tokens.extra})
        tokens = replace(tokens, obtained_at=now)
        payload: dict[str, Any] = tokens.to_dict()
        payload[KNOWN_TOKENS_KEY] = _known_tokens(previous, tokens)
        payload[VERIFIER_FINGERPRINT_KEY] = verifier_fp
        lease.write(
            payload,
            expires_at=tokens.expires_at,
            refresh_issued_at=tokens.refresh_issued_at,
            seed_fingerprint=seed,
            force=force,
        )
        return tokens


def _is_token(tokens: TokenSet | None, access_token: str | None) -> bool:
    """True when ``tokens`` carries exactly ``access_token`` (constant-time compare)."""
    if tokens is None or not access_token:
        return False
    return hmac.compare_digest(tokens.access_token, access_token)


def _version(record: TokenRecord | None) -> int | None:
    return None if record is None else record.version


def _known_tokens(previous: TokenRecord | None, tokens: TokenSet) -> list[str]:
    """Fingerprints of every token the record has held (bounded), newest last."""
    known: list[str] = list(previous.payload.get(KNOWN_TOKENS_KEY, ())) if previous is not None else []
    for token in (tokens.refresh_token, tokens.access_token):
        if token and (fp := fingerprint(token)) not in known:
            known.append(fp)
    return known[-KNOWN_TOKENS_LIMIT:]
