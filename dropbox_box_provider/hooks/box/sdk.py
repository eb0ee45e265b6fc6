"""``BoxHook.get_sdk_client()``: a ``box_sdk_gen.BoxClient`` whose tokens all come from the TokenManager.

Imported only by ``get_sdk_client`` (it imports box-sdk-gen, the ``[sdk]`` extra). The client gets the
connection's endpoint override as its base URLs and its ``As-User`` header; its ``Authentication`` asks the
hook's TokenManager for every token and, after a 401, for a replacement through the store's lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from box_sdk_gen import AccessToken, BaseUrls, BoxClient, BoxRetryStrategy, NetworkSession
from box_sdk_gen.managers.authorization import AuthorizationManager
from box_sdk_gen.networking.auth import Authentication
from box_sdk_gen.schemas.post_o_auth_2_token import (
    PostOAuth2TokenGrantTypeField,
    PostOAuth2TokenSubjectTokenTypeField,
)

from dropbox_box_provider.hooks.sdk import HookTokenSource

if TYPE_CHECKING:
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.hooks.box.hook import BoxHook


def _access_token(tokens: TokenSet) -> Any:
    """The SDK's AccessToken for ``tokens``: the access token and its remaining life, never the refresh
    token (the store keeps that; the SDK has no use for it)."""
    remaining = tokens.expires_in()
    return AccessToken(
        access_token=tokens.access_token,
        expires_in=None if remaining is None else max(int(remaining), 0),
        token_type="bearer",  # noqa: S106 (the token type, not a secret)
    )


class TokenManagerAuth(Authentication):  # type: ignore[misc]
    """box-sdk-gen ``Authentication`` drawing every token from a hook's TokenManager.

    ``retrieve_token`` is the manager's valid token; ``refresh_token`` (the SDK's answer to a 401) replaces
    the token this thread sent, single-flight across workers, and only if the store still holds it.
    """

    def __init__(self, source: HookTokenSource, network_session: Any) -> None:
        super().__init__()
        self.source = source
        self.network_session = network_session

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.source.hook.conn_id!r})"

    def retrieve_token(self, *, network_session: Any = None) -> Any:
        """The connection's valid access token (refreshed by the manager when it is due)."""
        return _access_token(self.source.token_set())

    def refresh_token(self, *, network_session: Any = None) -> Any:
        """After a 401: a new token through the manager (one refresh however many workers saw the 401)."""
        return _access_token(self.source.renew())

    def retrieve_authorization_header(self, *, network_session: Any = None) -> str:
        """``Bearer <token>`` for the next request."""
        return f"Bearer {self.source.token()}"

    def revoke_token(self, *, network_session: Any = None) -> None:
        """Revoke the connection's grant and drop its stored tokens (``BoxHook.revoke``): every worker
        sharing the connection is logged out, and it needs ``dropbox-box-auth authorize`` again."""
        self.source.hook.revoke()

    def downscope_token(
        self,
        scopes: list[str],
        *,
        resource: str | None = None,
        shared_link: str | None = None,
        network_session: Any = None,
    ) -> Any:
        """A new token limited to ``scopes`` (token exchange with the current token as the subject); the
        connection's own token is unchanged and the downscoped one is not stored."""
        manager = AuthorizationManager(network_session=network_session or self.network_session)
        return manager.request_access_token(
            PostOAuth2TokenGrantTypeField.URN_IETF_PARAMS_OAUTH_GRANT_TYPE_TOKEN_EXCHANGE,
            subject_token=self.source.token(),
            subject_token_type=PostOAuth2TokenSubjectTokenTypeField.URN_IETF_PARAMS_OAUTH_TOKEN_TYPE_ACCESS_TOKEN,
            resource=resource,
            scope=" ".join(scopes),
            box_shared_link=shared_link,
        )


class RenewedTokenRetryStrategy(BoxRetryStrategy):  # type: ignore[misc]
    """The SDK's retries, but a 401 is retried at once: ``should_retry`` has already renewed the token
    through the manager, so a backoff (the SDK's default: 2 s and more) would only delay the task."""

    def retry_after(self, fetch_options: Any, fetch_response: Any, attempt_number: int) -> float:
        if fetch_response.status == 401:
            return 0.0
        delay: float = super().retry_after(fetch_options, fetch_response, attempt_number)
        return delay


def box_sdk_client(hook: BoxHook) -> Any:
    """A ``BoxClient`` on ``hook``'s connection: manager tokens, endpoint override, ``As-User``."""
    defaults = BaseUrls()
    network_session = NetworkSession(
        base_urls=BaseUrls(
            base_url=hook.api_url(defaults.base_url),
            upload_url=hook.api_url(defaults.upload_url),
            oauth_2_url=hook.api_url(defaults.oauth_2_url),
        ),
        additional_headers=hook.act_as_headers(),
        retry_strategy=RenewedTokenRetryStrategy(),
    )
    auth = TokenManagerAuth(HookTokenSource(hook), network_session)
    return BoxClient(auth=auth, network_session=network_session)
