"""Small helpers shared by the emulator tests: token requests, JWT assertions, PKCE pairs."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from dropbox_box_provider.emulator import seed

DROPBOX_TOKEN = "/api.dropboxapi.com/oauth2/token"
BOX_TOKEN = "/api.box.com/oauth2/token"
REDIRECT = "http://localhost:33333"


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def dropbox_tokens(url: str, client: Any, **authorize: Any) -> dict[str, Any]:
    """Authorize the demo Dropbox app offline and exchange the code."""
    code = client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID, token_access_type="offline", **authorize)
    data = {"grant_type": "authorization_code", "code": code}
    if authorize.get("redirect_uri"):
        data["redirect_uri"] = authorize["redirect_uri"]
    response = httpx.post(
        url + DROPBOX_TOKEN, data=data, auth=(seed.DEMO_DROPBOX_CLIENT_ID, seed.DEMO_DROPBOX_CLIENT_SECRET)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def box_tokens(
    url: str, client: Any, client_id: str = seed.DEMO_BOX_CLIENT_ID, **authorize: Any
) -> dict[str, Any]:
    """Authorize the demo Box OAuth app and exchange the code."""
    code = client.authorize("box", client_id, **authorize)
    response = httpx.post(
        url + BOX_TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def box_refresh(url: str, refresh_token: str) -> httpx.Response:
    """One Box refresh with the demo OAuth app."""
    return httpx.post(
        url + BOX_TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
        },
    )


def box_ccg_token(
    url: str, subject_type: str = "enterprise", subject_id: str = seed.DEMO_BOX_ENTERPRISE_ID
) -> str:
    """A Box CCG access token for the demo CCG app."""
    response = httpx.post(
        url + BOX_TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": seed.DEMO_BOX_CCG_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CCG_CLIENT_SECRET,
            "box_subject_type": subject_type,
            "box_subject_id": subject_id,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def load_jwt_key(config_path: Path) -> Any:
    """The demo JWT app's private key from its Box app config."""
    config = json.loads(config_path.read_text())
    auth = config["boxAppSettings"]["appAuth"]
    return serialization.load_pem_private_key(
        auth["privateKey"].encode(), password=auth["passphrase"].encode()
    )


def jwt_assertion(
    config_path: Path, key: Any = None, headers: dict[str, Any] | None = None, **claims: Any
) -> str:
    """A signed assertion for the demo JWT app; ``claims`` override the defaults."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": seed.DEMO_BOX_JWT_CLIENT_ID,
        "sub": seed.DEMO_BOX_ENTERPRISE_ID,
        "box_sub_type": "enterprise",
        "aud": "https://api.box.com/oauth2/token",
        "jti": secrets.token_hex(16),
        "exp": now + 30,
    }
    body.update(claims)
    header = {"kid": seed.DEMO_BOX_JWT_KID, **(headers or {})}
    algorithm = header.pop("alg", "RS256")
    return jwt.encode(body, key or load_jwt_key(config_path), algorithm=algorithm, headers=header)


def jwt_grant(url: str, assertion: str) -> httpx.Response:
    """POST a jwt-bearer grant for the demo JWT app."""
    return httpx.post(
        url + BOX_TOKEN,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion,
            "client_id": seed.DEMO_BOX_JWT_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_JWT_CLIENT_SECRET,
        },
    )
