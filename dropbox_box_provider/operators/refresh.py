"""RefreshOAuthTokenOperator: the refresh-only (headless) flow of one Dropbox or Box connection, scheduled.

It goes through the TokenManager (store lock, single flight), so it never races the hooks of running tasks,
and it returns metadata only: an XCom never holds a token.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator

from dropbox_box_provider.auth.fields import CONN_TYPE_SERVICE
from dropbox_box_provider.auth.policy import DEFAULT_MAX_REFRESH_TOKEN_AGE, DEFAULT_WINDOW, due_reason
from dropbox_box_provider.errors import AuthConfigError
from dropbox_box_provider.wording import iso

if TYPE_CHECKING:
    from airflow.sdk import Context

    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.hooks.base import BaseOAuthHook


def oauth_hook_for(conn_id: str) -> BaseOAuthHook:
    """The Dropbox or Box hook of ``conn_id``, chosen by its connection type."""
    conn_type = BaseHook.get_connection(conn_id).conn_type or ""
    service = CONN_TYPE_SERVICE.get(conn_type)
    if service == "dropbox":
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        return DropboxHook(conn_id)
    if service == "box":
        from dropbox_box_provider.hooks.box import BoxHook

        return BoxHook(conn_id)
    raise AuthConfigError(
        [f"connection type {conn_type!r} is neither 'dropbox' nor 'box_oauth'; set the connection's type"],
        conn_id,
    )


def refresh_only(config: AuthConfig) -> AuthConfig:
    """The connection's config with InitiateOAuth=REFRESH: a task never starts a browser authorization."""
    if config.auth_scheme == "oauth" and config.initiate_oauth == "GETANDREFRESH":
        return replace(config, initiate_oauth="REFRESH")
    return config


def as_seconds(value: timedelta | float) -> float:
    """Seconds of a timedelta or a number of seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _mask_tokens(tokens: TokenSet) -> None:
    from dropbox_box_provider.hooks.base import mask_secrets

    mask_secrets(tokens.access_token, tokens.refresh_token)


class RefreshOAuthTokenOperator(BaseOperator):
    """Refresh ``conn_id``'s access token when it expires within ``min_validity``, when ``force`` is set, or
    when its Box refresh token is older than ``max_refresh_token_age`` (Box's limit is 60 unused days).

    Never interactive: a dead grant raises ReauthorizationRequired naming the ``dropbox-box-auth`` command.
    Returns ``{conn_id, service, scheme, expires_at, refresh_issued_at, version, refreshed, reason}``
    (Unix timestamps; no token).
    """

    template_fields: Sequence[str] = ("conn_id",)
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        conn_id: str,
        force: bool = False,
        min_validity: timedelta | float = timedelta(seconds=DEFAULT_WINDOW),
        max_refresh_token_age: timedelta | float = timedelta(seconds=DEFAULT_MAX_REFRESH_TOKEN_AGE),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.force = force
        self.min_validity = as_seconds(min_validity)
        self.max_refresh_token_age = as_seconds(max_refresh_token_age)

    def execute(self, context: Context) -> dict[str, Any]:
        """Refresh if needed through the TokenManager; return the token's metadata."""
        hook = oauth_hook_for(self.conn_id)
        config = refresh_only(hook.get_auth_config())
        manager = hook.token_manager
        previous = None if config.uses_static_token else manager.store.read(self.conn_id)
        previous_access = str(previous.payload.get("access_token") or "") if previous else ""
        tokens = manager.get_valid_token(self.conn_id, config)
        _mask_tokens(tokens)
        reason: str | None = "force=True" if self.force else None
        if reason is None:
            state = due_reason(
                config.service,
                tokens.expires_at,
                tokens.refresh_issued_at,
                window=self.min_validity,
                max_refresh_token_age=self.max_refresh_token_age,
                now=time.time(),
            )
            reason = state.reason if state.met else None
        if reason is not None:
            self.log.info("Refreshing the token of %r: %s", self.conn_id, reason)
            tokens = manager.force_refresh(self.conn_id, config)
            _mask_tokens(tokens)
        refreshed = not hmac.compare_digest(tokens.access_token, previous_access or config.access_token or "")
        meta = None if config.uses_static_token else manager.status(self.conn_id)
        self.log.info(
            "Token of %r (%s, %s): %s; valid until %s",
            self.conn_id,
            config.service,
            config.auth_scheme,
            "refreshed" if refreshed else "still valid, not refreshed",
            iso(tokens.expires_at) or "never",
        )
        return {
            "conn_id": self.conn_id,
            "service": config.service,
            "scheme": config.auth_scheme,
            "expires_at": tokens.expires_at,
            "refresh_issued_at": tokens.refresh_issued_at,
            "version": meta.version if meta else None,
            "refreshed": refreshed,
            "reason": reason,
        }
