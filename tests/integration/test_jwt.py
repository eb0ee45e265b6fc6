"""Box JWT (service account) grant against the emulator: key sources, app config, errors, clock skew."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dropbox_box_provider import errors
from dropbox_box_provider.auth import flows, services, transport
from dropbox_box_provider.auth import jwt as box_jwt
from dropbox_box_provider.auth.config import AuthConfig

CONN = "jwt_test_conn"
PASSPHRASE = "correct horse battery staple"
BOX_ENTERPRISE = "900001"  # the demo seed's enterprise
BOX_USER = "10001"  # a demo-seed Box user in that enterprise


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def encrypted_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()


@pytest.fixture(scope="module")
def plain_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with transport.new_client() as client:
        yield client


class JwtApp:
    """A JWT app registered on the emulator with this module's key pair."""

    def __init__(self, emu: Any, public_pem: str) -> None:
        self.client_id = f"t-jwt-{uuid.uuid4().hex[:12]}"
        self.client_secret = f"s-{uuid.uuid4().hex}"
        self.kid = f"kid-{uuid.uuid4().hex[:6]}"
        self.url = emu.url
        emu.client.register_app(
            "box",
            self.client_id,
            client_secret=self.client_secret,
            public_keys={self.kid: public_pem},
            enterprise_id=BOX_ENTERPRISE,
        )

    def config(self, **fields: Any) -> AuthConfig:
        values: dict[str, Any] = {
            "service": "box",
            "conn_id": CONN,
            "auth_scheme": "jwt",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "jwt_public_key_id": self.kid,
            "endpoint": self.url,
            "subject_type": "user",
            "subject_id": BOX_USER,
        }
        values.update(fields)
        return AuthConfig(**values)

    def app_config_json(self, pem: str, passphrase: str = PASSPHRASE) -> str:
        return json.dumps(
            {
                "boxAppSettings": {
                    "clientID": self.client_id,
                    "clientSecret": self.client_secret,
                    "appAuth": {"publicKeyID": self.kid, "privateKey": pem, "passphrase": passphrase},
                },
                "enterpriseID": BOX_ENTERPRISE,
            }
        )


@pytest.fixture
def app(emulator: Any, public_pem: str) -> JwtApp:
    return JwtApp(emulator, public_pem)


def whoami(url: str, tokens: Any, http: httpx.Client) -> dict[str, Any]:
    response = http.get(
        services.resolve_url(url, services.BOX.api_base + "/users/me"),
        headers={"Authorization": f"Bearer {tokens.access_token}"},
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def jwt_stats(emu: Any) -> dict[str, int]:
    stats: dict[str, Any] = emu.client.stats()
    return dict(stats["box"]["token"].get(services.GRANT_JWT_BEARER, {}))


# --- the assertion ----------------------------------------------------------------------------------------


def test_assertion_claims_and_header(app: JwtApp, key: rsa.RSAPrivateKey, plain_pem: str) -> None:
    settings = box_jwt.resolve_jwt_settings(app.config(jwt_cert=plain_pem, jwt_cert_type="PEMKEY_BLOB"))
    assertion = box_jwt.build_assertion(settings, now=1_700_000_000.4)
    header = pyjwt.get_unverified_header(assertion)
    assert header == {"alg": "RS256", "kid": app.kid, "typ": "JWT"}
    claims = pyjwt.decode(
        assertion,
        key.public_key(),
        algorithms=["RS256"],
        audience=services.BOX_JWT_AUDIENCE,
        options={"verify_exp": False},
    )
    assert claims["aud"] == "https://api.box.com/oauth2/token"  # not rewritten by the endpoint override
    assert claims["iss"] == app.client_id and claims["sub"] == BOX_USER and claims["box_sub_type"] == "user"
    assert claims["iat"] == 1_700_000_000 and claims["exp"] == 1_700_000_045
    assert len(claims["jti"]) >= 32 and claims["jti"].replace("-", "").replace("_", "").isalnum()
    assert box_jwt.build_assertion(settings) != box_jwt.build_assertion(settings)  # fresh jti each time
    assert plain_pem not in repr(settings) and app.client_secret not in repr(settings)


# --- key sources against the emulator ---------------------------------------------------------------------


def test_pem_key_file_with_passphrase(
    app: JwtApp, encrypted_pem: str, tmp_path: Path, http: httpx.Client
) -> None:
    path = tmp_path / "box_key.pem"
    path.write_text(encrypted_pem)
    config = app.config(jwt_cert=str(path), jwt_cert_type="PEMKEY_FILE", jwt_cert_password=PASSPHRASE)
    tokens = flows.fetch_service_token(config, client=http)
    assert tokens.refresh_token is None and tokens.expires_at and tokens.expires_at > time.time() + 3000
    assert whoami(app.url, tokens, http)["id"] == BOX_USER


def test_pem_key_blob_unencrypted(app: JwtApp, plain_pem: str, http: httpx.Client) -> None:
    tokens = flows.fetch_service_token(
        app.config(jwt_cert=plain_pem, jwt_cert_type="PEMKEY_BLOB"), client=http
    )
    assert whoami(app.url, tokens, http)["id"] == BOX_USER


def test_pem_blob_with_escaped_newlines(app: JwtApp, encrypted_pem: str, http: httpx.Client) -> None:
    blob = encrypted_pem.replace("\n", "\\n")
    config = app.config(jwt_cert=blob, jwt_cert_password=PASSPHRASE)  # type inferred from the content
    assert flows.fetch_service_token(config, client=http).access_token


def test_json_config_file_supplies_every_empty_field(
    app: JwtApp, encrypted_pem: str, tmp_path: Path, http: httpx.Client
) -> None:
    path = tmp_path / "config.json"
    path.write_text(app.app_config_json(encrypted_pem))
    config = AuthConfig(
        service="box",
        conn_id=CONN,
        auth_scheme="jwt",
        endpoint=app.url,
        jwt_cert=str(path),
        jwt_cert_type="JSONFILE",
        subject_type="user",
        subject_id=BOX_USER,
    )
    settings = box_jwt.resolve_jwt_settings(config)
    assert (settings.client_id, settings.client_secret, settings.public_key_id) == (
        app.client_id,
        app.client_secret,
        app.kid,
    )
    assert settings.enterprise_id == BOX_ENTERPRISE
    tokens = flows.fetch_service_token(config, client=http)
    assert whoami(app.url, tokens, http)["id"] == BOX_USER


def test_json_blob_connection_fields_win(app: JwtApp, encrypted_pem: str, http: httpx.Client) -> None:
    blob = app.app_config_json(encrypted_pem, passphrase="stale passphrase in the file")
    config = app.config(jwt_cert=blob, jwt_cert_type="JSONBLOB", jwt_cert_password=PASSPHRASE)
    assert flows.fetch_service_token(config, client=http).access_token


def test_json_config_defaults_subject_to_its_enterprise(app: JwtApp, encrypted_pem: str) -> None:
    config = AuthConfig(service="box", auth_scheme="jwt", jwt_cert=app.app_config_json(encrypted_pem))
    settings = box_jwt.resolve_jwt_settings(config)
    assert (settings.subject_type, settings.subject_id) == ("enterprise", BOX_ENTERPRISE)


def test_demo_seed_json_config_enterprise_token(emulator: Any, http: httpx.Client) -> None:
    """The seed's own app config (encrypted PKCS#8 from Box's JSON format) gets an enterprise token."""
    config_file: Path = emulator.box_jwt_config
    assert config_file.exists()
    config = AuthConfig(
        service="box", conn_id=CONN, auth_scheme="jwt", endpoint=emulator.url, jwt_cert=str(config_file)
    )
    tokens = flows.fetch_service_token(config, client=http)
    assert whoami(emulator.url, tokens, http)["id"]


# --- configuration errors (never echo the key or passphrase) ----------------------------------------------


def config_error(config: AuthConfig) -> errors.AuthConfigError:
    with pytest.raises(errors.AuthConfigError) as info:
        box_jwt.resolve_jwt_settings(config)
    return info.value


def test_wrong_passphrase(app: JwtApp, encrypted_pem: str) -> None:
    error = config_error(app.config(jwt_cert=encrypted_pem, jwt_cert_password="not the passphrase"))
    assert "passphrase" in str(error) and "jwt_cert_password" in str(error)
    assert "not the passphrase" not in str(error) and "PRIVATE KEY" not in str(error)
    assert error.conn_id == CONN


def test_missing_passphrase(app: JwtApp, encrypted_pem: str) -> None:
    error = config_error(app.config(jwt_cert=encrypted_pem, jwt_cert_type="PEMKEY_BLOB"))
    assert "jwt_cert_password" in str(error)


def test_garbage_pem(app: JwtApp) -> None:
    garbage = "-----BEGIN PRIVATE KEY-----\nnot-base64-at-all\n-----END PRIVATE KEY-----"
    error = config_error(app.config(jwt_cert=garbage, jwt_cert_type="PEMKEY_BLOB"))
    assert "not a readable PEM private key" in str(error) and "not-base64" not in str(error)


def test_public_key_instead_of_private(app: JwtApp, public_pem: str) -> None:
    error = config_error(app.config(jwt_cert=public_pem, jwt_cert_type="PEMKEY_BLOB"))
    assert "public key" in str(error)


def test_non_rsa_key(app: JwtApp) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    assert "RSA" in str(config_error(app.config(jwt_cert=ec_pem, jwt_cert_type="PEMKEY_BLOB")))


def test_missing_file_and_bad_json(app: JwtApp, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert str(missing) in str(config_error(app.config(jwt_cert=str(missing), jwt_cert_type="PEMKEY_FILE")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"boxAppSettings": {"clientSecret": "leak-me"')
    error = config_error(app.config(jwt_cert=str(bad), jwt_cert_type="JSONFILE"))
    assert "not valid JSON" in str(error) and "leak-me" not in str(error)
    assert "boxAppSettings" in str(config_error(app.config(jwt_cert="{}", jwt_cert_type="JSONBLOB")))


def test_every_missing_field_is_listed_at_once(plain_pem: str) -> None:
    error = config_error(AuthConfig(service="box", conn_id=CONN, auth_scheme="jwt", jwt_cert=plain_pem))
    text = str(error)
    assert len(error.problems) == 4
    for field in ("client id", "client secret", "jwt_public_key_id", "subject_id"):
        assert field in text


def test_wrong_kid_is_a_config_error_from_the_service(
    app: JwtApp, plain_pem: str, http: httpx.Client
) -> None:
    config = app.config(jwt_cert=plain_pem, jwt_public_key_id="some-other-kid")
    with pytest.raises(errors.AuthConfigError, match="jwt_public_key_id") as info:
        flows.fetch_service_token(config, client=http)
    assert "Signature" in str(info.value)
    assert app.client_secret not in str(info.value)


def test_unauthorized_enterprise(app: JwtApp, plain_pem: str, http: httpx.Client) -> None:
    config = app.config(jwt_cert=plain_pem, subject_type="enterprise", subject_id="424242")
    with pytest.raises(errors.AuthConfigError, match="Admin Console"):
        flows.fetch_service_token(config, client=http)


# --- clock skew -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [-300.0, 300.0])
def test_clock_skew_is_corrected_from_the_date_header(
    fresh_emulator: Any, public_pem: str, plain_pem: str, http: httpx.Client, skew: float
) -> None:
    app = JwtApp(fresh_emulator, public_pem)
    config = app.config(jwt_cert=plain_pem)
    tokens = flows.fetch_service_token(config, client=http, clock=lambda: time.time() + skew)
    assert whoami(app.url, tokens, http)["id"] == BOX_USER
    assert tokens.expires_at and abs(tokens.expires_at - (time.time() + 3600)) < 120  # local time, not skewed
    stats = jwt_stats(fresh_emulator)
    assert stats["ok"] == 1 and stats["invalid_grant"] == 1


def test_skew_retries_are_bounded(
    fresh_emulator: Any, public_pem: str, plain_pem: str, http: httpx.Client
) -> None:
    """A clock that keeps drifting (here: moving an hour per call) exhausts the retries with a clear error."""
    app = JwtApp(fresh_emulator, public_pem)
    drift = iter(range(3600, 10**6, 3600))
    with pytest.raises(errors.AuthConfigError, match="clock"):
        flows.fetch_service_token(
            app.config(jwt_cert=plain_pem), client=http, clock=lambda: time.time() - next(drift)
        )
    assert jwt_stats(fresh_emulator)["invalid_grant"] == 1 + box_jwt.MAX_SKEW_RETRIES


def test_claim_detection() -> None:
    assert box_jwt.is_clock_or_jti_rejection(
        "Please check the 'jti' claim. A unique 'jti' value is required."
    )
    assert box_jwt.is_clock_or_jti_rejection(
        "Current date/time MUST be before the expiration date/time listed in the 'exp' claim"
    )
    assert not box_jwt.is_clock_or_jti_rejection("Signature verification error")
    assert not box_jwt.is_clock_or_jti_rejection("Please check the 'sub' claim. expired")
    assert not box_jwt.is_clock_or_jti_rejection(None)
