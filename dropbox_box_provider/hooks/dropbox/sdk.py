"""``DropboxHook.get_sdk_client()``: a ``dropbox.Dropbox`` whose tokens all come from the TokenManager.

Imported only by ``get_sdk_client`` (it imports the dropbox SDK, the ``[sdk]`` extra). The SDK client
holds one static token and refreshes it on its own; this subclass instead reads the manager's valid token
before every request and, on the SDK's ``expired_access_token`` retry, replaces it through the store's
lease. It holds no refresh token or app secret. The connection's endpoint override and team headers apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dropbox

from dropbox_box_provider.hooks.sdk import HookTokenSource

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox.hook import DropboxHook

_NO_TOKEN_YET = "drawn-from-the-token-manager"  # noqa: S105 (a placeholder, not a secret)


class TokenManagerDropbox(dropbox.Dropbox):  # type: ignore[misc]
    """``dropbox.Dropbox`` on a hook's TokenManager: every request carries the manager's valid token.

    The SDK's own clones (``clone``, ``with_path_root``) stay on the same manager.
    """

    _token_source: HookTokenSource | None = None

    @property
    def _oauth2_access_token(self) -> str | None:
        """The token this thread is sending (read by the SDK when it builds the Authorization header)."""
        source = self._token_source
        if source is None:
            return None
        return source.last_sent() or source.token()

    @_oauth2_access_token.setter
    def _oauth2_access_token(self, value: str | None) -> None:
        """The SDK's constructor and refresh assign here; the manager owns the token, so this is ignored."""

    def __repr__(self) -> str:
        source = self._token_source
        return f"{type(self).__name__}(conn_id={source.hook.conn_id if source else None!r})"

    def request_json_string(self, *args: Any, **kwargs: Any) -> Any:
        """Take the manager's valid token for this request (refreshed once per expiry across workers)."""
        if self._token_source is not None:
            self._token_source.token()
        return super().request_json_string(*args, **kwargs)

    def refresh_access_token(self, host: str | None = None, scope: list[str] | None = None) -> None:
        """The SDK calls this after a 401 ``expired_access_token``: replace the token this thread sent,
        through the manager (one refresh however many workers saw the 401). ``host``/``scope`` are unused:
        the connection's own settings decide where and how to refresh."""
        if self._token_source is not None:
            self._token_source.renew()

    def check_and_refresh_access_token(self) -> None:
        """Refresh ahead of expiry: the manager's valid token, refreshed if it is due."""
        if self._token_source is not None:
            self._token_source.token()

    def _get_route_url(self, hostname: str, route_name: str) -> str:
        url: str = super()._get_route_url(hostname, route_name)
        return url if self._token_source is None else self._token_source.hook.api_url(url)

    def clone(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``clone`` (and ``with_path_root``), still drawing tokens from the manager."""
        copy = super().clone(*args, **kwargs)
        copy._token_source = self._token_source
        return copy


def dropbox_sdk_client(hook: DropboxHook) -> Any:
    """A ``dropbox.Dropbox`` on ``hook``'s connection: manager tokens, endpoint override, team headers."""
    # The SDK insists on a token at construction; the property above ignores it, and no request is made yet.
    client = TokenManagerDropbox(oauth2_access_token=_NO_TOKEN_YET, headers=hook.act_as_headers() or None)
    client._token_source = HookTokenSource(hook)
    return client
