"""Bad input ends in the documented typed error, never a bare KeyError/TypeError/traceback from deep inside.

Hypothesis drives: connection fields with arbitrary extras, token-endpoint bodies (missing fields, wrong
types, huge values, non-JSON, HTML error pages), tampered store ciphertexts (truncated, bit-flipped), Box
JWT key material (garbage PEM, wrong passphrase, a public key), pasted authorization responses. The CLI is
driven as a subprocess for a pasted URL with the wrong state and an empty code.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth import jwt as box_jwt
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.cli.authorize import code_from_pasted
from dropbox_box_provider.errors import AuthConfigError, DropboxBoxError, ServiceError, TokenStoreError
from dropbox_box_provider.store import open_store
from tests.cli.helpers import CliHome, error_line, make_home
from tests.reliability import figures

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
KNOWN_KEYS = [
    "client_id",
    "client_secret",
    "auth_scheme",
    "initiate_oauth",
    "access_token",
    "refresh_token",
    "verifier",
    "callback_url",
    "scopes",
    "access_type",
    "oauth_settings_location",
    "jwt_cert",
    "jwt_cert_type",
    "jwt_cert_password",
    "jwt_public_key_id",
    "subject_type",
    "subject_id",
    "as_user",
    "select_user",
    "path_root",
    "refresh_margin",
    "endpoint",
    "OAuthClientId",
    "InitiateOAuth",
    "OAuthSettingsLocation",
    "OAuthJWTCert",
    "enterprise_id",
]
field_names = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=20))


def count(n: int = 1) -> None:
    figures.add("bad input", cases=n)


@EXAMPLES
@given(
    service=st.sampled_from(["dropbox", "box", "onedrive", ""]),
    fields=st.dictionaries(field_names, values, max_size=8),
)
def test_config_parsing_raises_only_auth_config_error(service: str, fields: dict[str, Any]) -> None:
    count()
    try:
        config = AuthConfig.from_mapping(service, fields, conn_id="fuzz")
    except AuthConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert config.service in ("dropbox", "box")


token_bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "access_token",
                "refresh_token",
                "expires_in",
                "token_type",
                "scope",
                "account_id",
                "uid",
                "error",
                "error_description",
                "team_id",
                "restricted_to",
            ]
        ),
        values | st.just("x" * 1_000_000) | st.just(10**400) | st.just(-(10**30)),
        max_size=6,
    ).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    st.just(b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.just(b'{"access_token": "x", "expires_in": 1e999}'),
    st.just(b'{"access_token": "x", "expires_in": "soon"}'),
    st.just(b'{"access_token": 12, "refresh_token": "r"}'),
    st.just(b'{"access_token": "x", "refresh_token": {"nested": 1}}'),
    st.just(b"null"),
)
content_types = st.sampled_from(["application/json", "text/html; charset=utf-8", "text/plain", ""])
statuses = st.sampled_from([200, 200, 201, 400, 401, 403, 404, 429, 500, 502, 503])


@EXAMPLES
@given(service=st.sampled_from(["dropbox", "box"]), status=statuses, body=token_bodies, ctype=content_types)
def test_token_responses_become_token_sets_or_typed_errors(
    service: str, status: int, body: bytes, ctype: str
) -> None:
    count()
    headers = {"content-type": ctype} if ctype else {}
    if status in (429, 503):
        headers["retry-after"] = "1"
    response = httpx.Response(status, content=body, headers=headers)
    try:
        tokens = flows.parse_token_response(service, response, conn_id="fuzz", grant="refresh_token")
    except DropboxBoxError as exc:
        assert str(exc)
        if 200 <= status < 300:
            assert isinstance(exc, ServiceError) and exc.code == "malformed_token_response"
        return
    assert 200 <= status < 300
    assert isinstance(tokens, TokenSet) and tokens.access_token


@pytest.fixture(scope="module")
def tampered_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A sqlite store holding one Box record; returns (url, key, the original ciphertext)."""
    from cryptography.fernet import Fernet

    path = tmp_path_factory.mktemp("tamper") / "tokens.db"
    url, key = f"sqlite:///{path}", Fernet.generate_key().decode()
    config = AuthConfig.from_mapping("box", {"client_id": "a", "client_secret": "s"}, conn_id="victim")
    TokenManager(open_store(url, key)).store_tokens(
        "victim", config, TokenSet(access_token="A" * 30, refresh_token="R" * 30, expires_at=1.0)
    )
    with sqlite3.connect(path) as db:
        (ciphertext,) = db.execute(
            "SELECT payload FROM oauth_token_records WHERE conn_id='victim'"
        ).fetchone()
    return url, key, ciphertext


def _set_payload(url: str, payload: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE oauth_token_records SET payload=? WHERE conn_id='victim'", (payload,))


@FEW
@given(data=st.data())
def test_tampered_ciphertext_is_a_token_store_error(
    data: st.DataObject, tampered_store: tuple[str, str, str]
) -> None:
    url, key, original = tampered_store
    raw = bytearray(original.encode())
    how = data.draw(st.sampled_from(["truncate", "flip", "garbage"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] ^= 1 << data.draw(st.integers(0, 6))
    else:
        raw = bytearray(data.draw(st.binary(max_size=120)).hex().encode())
    tampered = raw.decode("latin-1")
    if tampered == original:
        return
    count()
    _set_payload(url, tampered)
    try:
        store = open_store(url, key)
        config = AuthConfig.from_mapping("box", {"client_id": "a", "client_secret": "s"}, conn_id="victim")
        with pytest.raises(TokenStoreError) as info:
            store.read("victim")
        assert "victim" in str(info.value) and "A" * 30 not in str(info.value)
        with pytest.raises(TokenStoreError):
            TokenManager(store).get_valid_token("victim", config)
        assert [m.conn_id for m in store.list_meta()] == ["victim"]  # metadata stays readable
    finally:
        _set_payload(url, original)


def _rsa_pems(passphrase: bytes) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    return _rsa_pems(b"right passphrase")


def _jwt_config(cert: str, passphrase: str | None) -> AuthConfig:
    fields: dict[str, Any] = {
        "client_id": "jwt-app",
        "client_secret": "jwt-secret",
        "auth_scheme": "jwt",
        "jwt_cert_type": "PEMKEY_BLOB",
        "jwt_cert": cert,
        "jwt_public_key_id": "kid",
        "subject_type": "enterprise",
        "subject_id": "900001",
    }
    if passphrase is not None:
        fields["jwt_cert_password"] = passphrase
    return AuthConfig.from_mapping("box", fields, conn_id="jwt")


def _expect_config_error(cert: str, passphrase: str | None, *secrets: str) -> None:
    count()
    try:
        config = _jwt_config(cert, passphrase)
        box_jwt.build_assertion(box_jwt.resolve_jwt_settings(config))
    except AuthConfigError as exc:
        for secret in secrets:
            if secret:
                assert secret not in str(exc)
        return
    pytest.fail("bad key material was accepted")


def test_jwt_wrong_passphrase_public_key_and_missing_passphrase(rsa_pems: tuple[str, str]) -> None:
    private, public = rsa_pems
    _expect_config_error(private, "wrong passphrase", private, "wrong passphrase")
    _expect_config_error(private, None, private)
    _expect_config_error(public, "right passphrase", public, "right passphrase")
    # The right material works, so the failures above are about the material, not the setup.
    assert box_jwt.build_assertion(box_jwt.resolve_jwt_settings(_jwt_config(private, "right passphrase")))


garbage_pem = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda body: f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n",
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n",
            min_size=1,
            max_size=400,
        ),
    ),
    st.builds(
        lambda body: "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----",
        st.text(max_size=100),
    ),
)


@FEW
@given(
    cert=garbage_pem.filter(lambda s: s.strip() != ""),
    passphrase=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
)
def test_jwt_garbage_pem_is_an_auth_config_error(cert: str, passphrase: str | None) -> None:
    # Short strings ("1") turn up in any message by chance; a leak is a secret long enough to mean something.
    leakable = passphrase if passphrase and len(passphrase) >= 6 else ""
    _expect_config_error(cert, passphrase, cert if len(cert) > 8 else "", leakable)


@EXAMPLES
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.builds(lambda q: "http://127.0.0.1:33333/?" + q, st.text(max_size=100)),
        st.builds(
            lambda c, s: f"http://localhost:33333/cb?code={c}&state={s}",
            st.text(max_size=30),
            st.text(max_size=30),
        ),
    )
)
def test_pasted_authorization_responses_never_crash(text: str) -> None:
    count()
    code, params = code_from_pasted(text)
    assert code is None or isinstance(code, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())


def test_state_check_rejects_everything_but_the_sent_state() -> None:
    count(4)
    sent = "S" * 43
    for received in (None, "", "S" * 42, "T" + "S" * 42):
        with pytest.raises(DropboxBoxError) as info:
            flows.verify_state(sent, received, "c")
        assert type(info.value).__name__ == "StateMismatch" and "authorize c" in str(info.value)


@pytest.fixture
def cli_home(tmp_path: Path) -> CliHome:
    home = make_home(tmp_path / "home")
    home.add_connection(
        "bx",
        {
            "conn_type": "box_oauth",
            "login": "some-box-app",
            "password": "box-secret-value",
            "host": "http://127.0.0.1:9",
        },
    )
    return home


@pytest.mark.airflow
def test_cli_exchange_wrong_state_and_empty_code(cli_home: CliHome) -> None:
    count(3)
    pasted = "http://127.0.0.1:33333/?code=abc&state=forged"
    proc = cli_home.run("exchange", "bx", pasted, "--state", "the-state-we-sent")
    assert proc.returncode != 0
    assert "state" in error_line(proc.stderr).lower()
    proc = cli_home.run("exchange", "bx", "")
    assert proc.returncode != 0
    assert "code" in error_line(proc.stderr).lower()
    proc = cli_home.run("exchange", "bx", "-", stdin="\n")
    assert proc.returncode != 0
    assert "code" in error_line(proc.stderr).lower()
    cli_home.assert_no_secret_printed("box-secret-value")
