"""Revoking a connection's grant: one procedure for the hook and the CLI.

The grant is revoked at the service, then the connection's tokens leave the store while a connection
definition saved beside them stays (a connection the secrets backend serves must not disappear because its
grant was revoked; authorizing again refills it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.errors import AuthConfigError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import TokenStore


def token_to_revoke(config: AuthConfig, tokens: TokenSet | None) -> str | None:
    """Box revokes a refresh token with its access tokens; Dropbox revokes an access token with its refresh
    token. A static token is the connection's own."""
    if config.uses_static_token:
        return config.access_token
    if tokens is None:
        return None
    return (tokens.refresh_token if config.service == "box" else None) or tokens.access_token


def forget_tokens(store: TokenStore, conn_id: str) -> None:
    """Remove the connection's tokens from the store, keeping its saved connection definition."""
    definition = store.get_connection(conn_id)
    store.delete(conn_id)
    if definition is not None:
        store.save_connection(conn_id, definition)


def revoke_grant(config: AuthConfig, store: TokenStore, conn_id: str, tokens: TokenSet | None) -> None:
    """Revoke ``tokens`` (or the static token) at the service, then forget the stored tokens (a saved
    definition stays). A static token is only revoked: the store never held it."""
    token = token_to_revoke(config, tokens)
    if not token:
        raise AuthConfigError([f"there is no token to revoke for {conn_id!r}"], conn_id)
    flows.revoke(config, token)
    if not config.uses_static_token:
        forget_tokens(store, conn_id)
