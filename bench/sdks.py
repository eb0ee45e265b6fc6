"""The official SDKs pointed at the emulator, configured as a user of each would configure them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests

from dropbox_box_provider.emulator import seed


class EmulatorSession(requests.Session):
    """A requests session sending ``https://<host>/<path>`` to ``<emulator>/<host>/<path>`` (Dropbox SDK)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else str(url)
        if text.startswith("https://"):
            text = f"{self.base_url}/{text[len('https://') :]}"
        return super().request(method, text, *args, **kwargs)


def dropbox_client(url: str, grant: dict[str, Any], *, refresh_buffer: float | None = None) -> Any:
    """``dropbox.Dropbox`` with the grant's tokens and expiry; ``refresh_buffer`` replaces the SDK's 300 s
    refresh-before-expiry (module constant) so short benchmark lifetimes compare like for like."""
    import dropbox
    import dropbox.dropbox_client

    if refresh_buffer is not None:
        dropbox.dropbox_client.TOKEN_EXPIRATION_BUFFER = refresh_buffer
    expires = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=float(grant["expires_in"]))
    return dropbox.Dropbox(
        oauth2_access_token=grant["access_token"],
        oauth2_refresh_token=grant.get("refresh_token"),
        oauth2_access_token_expiration=expires,
        app_key=seed.DEMO_DROPBOX_CLIENT_ID,
        app_secret=seed.DEMO_DROPBOX_CLIENT_SECRET,
        session=EmulatorSession(url),
    )


def box_network_session(url: str) -> Any:
    """box-sdk-gen's NetworkSession with the emulator's base URLs."""
    from box_sdk_gen import BaseUrls, NetworkSession

    return NetworkSession(
        base_urls=BaseUrls(
            base_url=f"{url}/api.box.com",
            upload_url=f"{url}/upload.box.com/api",
            oauth_2_url=f"{url}/account.box.com/api/oauth2",
        )
    )


def box_client(url: str, grant: dict[str, Any] | None = None, *, token_file: str | None = None) -> Any:
    """``BoxClient`` over ``BoxOAuth``: tokens in memory (from ``grant``), or in a shared
    ``FileTokenStorage`` at ``token_file`` (already holding the grant)."""
    from box_sdk_gen import (
        AccessToken,
        BoxClient,
        BoxOAuth,
        FileTokenStorage,
        InMemoryTokenStorage,
        OAuthConfig,
    )

    if token_file is not None:
        storage: Any = FileTokenStorage(token_file)
    else:
        assert grant is not None
        storage = InMemoryTokenStorage(
            token=AccessToken(access_token=grant["access_token"], refresh_token=grant["refresh_token"])
        )
    auth = BoxOAuth(
        OAuthConfig(
            client_id=seed.DEMO_BOX_CLIENT_ID,
            client_secret=seed.DEMO_BOX_CLIENT_SECRET,
            token_storage=storage,
        )
    )
    return BoxClient(auth=auth, network_session=box_network_session(url))


def box_file_storage(token_file: str, grant: dict[str, Any]) -> None:
    """Write ``grant`` into a box-sdk-gen FileTokenStorage, as the user's authorization step would."""
    from box_sdk_gen import AccessToken, FileTokenStorage

    FileTokenStorage(token_file).store(
        AccessToken(
            access_token=grant["access_token"],
            refresh_token=grant["refresh_token"],
            expires_in=int(grant["expires_in"]),
            token_type="bearer",
        )
    )
