"""EmulatorClient: the control plane (/_emulator/) over HTTP, for tests, the demo and benchmarks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx


class EmulatorClient:
    """Drive a running emulator: register apps, issue codes, configure, inject faults, read stats, reset."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __repr__(self) -> str:
        return f"EmulatorClient({self.base_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> EmulatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        response = self._http.request(method, f"/_emulator/{path}", json=payload)
        if response.status_code >= 400:
            raise RuntimeError(f"emulator control {path} failed: HTTP {response.status_code} {response.text}")
        return response.json()

    def register_app(  # noqa: PLR0917
        self,
        service: str,
        client_id: str,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] = (),
        public_keys: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None,
        enterprise_id: str | None = None,
        users: Sequence[str | Mapping[str, Any]] | None = None,
        team: bool = False,
        *,
        scopes: Sequence[str] | None = None,
        app_folder: bool = False,
    ) -> dict[str, Any]:
        """Create or replace an app. ``public_keys``: {kid: PEM}; ``users``: Box user / Dropbox member ids;
        Dropbox ``scopes``: the app's permissions (None: all); ``app_folder``: App folder access."""
        keys: Any = public_keys
        if keys is not None and not isinstance(keys, Mapping):
            keys = [dict(k) for k in keys]
        elif keys is not None:
            keys = dict(keys)
        payload = {
            "service": service,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": list(redirect_uris),
            "public_keys": keys,
            "enterprise_id": enterprise_id,
            "users": [u if isinstance(u, str) else dict(u) for u in users or []],
            "team": team,
            "scopes": list(scopes) if scopes is not None else None,
            "app_folder": app_folder,
        }
        result: dict[str, Any] = self._call("POST", "apps", payload)
        return result

    def authorize(  # noqa: PLR0917
        self,
        service: str,
        client_id: str,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        scope: str | None = None,
        user_id: str | None = None,
        token_access_type: str | None = None,
    ) -> str:
        """An authorization code, as if the user clicked Allow."""
        payload = {
            "service": service,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
            "scope": scope,
            "user_id": user_id,
            "token_access_type": token_access_type,
        }
        return str(self._call("POST", "authorize", payload)["code"])

    def configure(
        self,
        access_token_ttl: float | None = None,
        refresh_token_ttl: float | None = None,
        box_refresh_grace: bool | None = None,
        code_ttl: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Change lifetimes/switches (None leaves a value alone); returns the whole config.

        ``extra`` accepts the finer keys: dropbox_access_token_ttl, box_access_token_ttl, box_commit_pending,
        latency_ms (every API request waits that long), dropbox_write_concurrency (writes at once per
        account before 409 too_many_write_operations; 0 unlimited).
        """
        payload = {
            "access_token_ttl": access_token_ttl,
            "refresh_token_ttl": refresh_token_ttl,
            "box_refresh_grace": box_refresh_grace,
            "code_ttl": code_ttl,
            **extra,
        }
        result: dict[str, Any] = self._call("POST", "config", payload)
        return result

    def fault(  # noqa: PLR0917
        self,
        route: str,
        status: int | None = None,
        retry_after: int | None = None,
        delay: float | None = None,
        drop: bool = False,
        count: int = 1,
        error: str | None = None,
        drop_after: bool = False,
    ) -> None:
        """Arm a fault for the next ``count`` requests whose path matches the glob ``route``.

        ``error`` injects a named service error in the route's exact shape: ``too_many_write_operations``
        (Dropbox 409) or ``parts_mismatch`` (Box 400). ``drop`` closes the connection before the service
        sees the request; ``drop_after`` lets the service act and answer, then drops the answer.
        """
        payload = {
            "drop_after": drop_after,
            "error": error,
            "route": route,
            "status": status,
            "retry_after": retry_after,
            "delay": delay,
            "drop": drop,
            "count": count,
        }
        self._call("POST", "faults", payload)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._call("DELETE", "faults")

    def expire_access_tokens(
        self, service: str | None = None, client_id: str | None = None, token: str | None = None
    ) -> int:
        """Make matching access tokens expired now; returns how many."""
        payload = {"service": service, "client_id": client_id, "token": token}
        return int(
            self._call("POST", "expire", {k: v for k, v in payload.items() if v is not None})["expired"]
        )

    def stats(self) -> dict[str, Any]:
        """Counts per service: requests, token answers per grant and outcome, routes per status."""
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def clear_stats(self) -> None:
        """Zero the counters and ``max_in_flight`` (files, tokens and config stay)."""
        self._call("DELETE", "stats")

    def reset(self) -> None:
        """Back to the seeded state (seeded apps only, no tokens, no files, default config, zero stats)."""
        self._call("POST", "reset")
