"""AuthConfig parsing: canonical names, every alias, every validation message, secret-free repr."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropbox_box_provider.auth import services
from dropbox_box_provider.auth.config import DEFAULT_CALLBACK_URL, AuthConfig
from dropbox_box_provider.auth.fields import FIELD_SPECS, IGNORED_EXTRAS
from dropbox_box_provider.errors import AuthConfigError

BOX_JWT_JSON = json.dumps({"boxAppSettings": {"clientID": "c", "appAuth": {"publicKeyID": "k"}}})
PEM = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----"


@dataclass
class FakeConnection:
    """The attributes an Airflow Connection offers (duck typing keeps auth/ free of Airflow)."""

    conn_id: str = "c1"
    conn_type: str = "dropbox"
    login: str | None = "app"
    password: str | None = "app-secret"
    host: str | None = None
    extra_dejson: Any = field(default_factory=dict)


def problems(service: str, fields: dict[str, Any]) -> list[str]:
    with pytest.raises(AuthConfigError) as info:
        AuthConfig.from_mapping(service, fields, conn_id="x")
    return info.value.problems


def one_problem(service: str, fields: dict[str, Any]) -> str:
    found = problems(service, fields)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- canonical names and aliases

DROPBOX_BASE = {"client_id": "app", "client_secret": "sec"}


def test_defaults_of_a_minimal_dropbox_connection() -> None:
    config = AuthConfig.from_mapping("dropbox", {"client_id": "app"})
    assert (config.auth_scheme, config.initiate_oauth, config.refresh_margin) == (
        "oauth",
        "GETANDREFRESH",
        300,
    )
    assert config.is_pkce and config.effective_callback_url == DEFAULT_CALLBACK_URL
    assert config.conn_type == "dropbox" and config.scope_string is None
    assert config.verify_checksums is True  # checksums are verified unless a connection says otherwise


@pytest.mark.parametrize(
    ("alias", "value", "attribute", "expected"),
    [
        ("OAuthClientId", "app2", "client_id", "app2"),
        ("oauthclientid", "app2", "client_id", "app2"),
        ("OAuthClientSecret", "s2", "client_secret", "s2"),
        ("InitiateOAuth", "refresh", "initiate_oauth", "REFRESH"),
        ("OAuthAccessToken", "at", "access_token", "at"),
        ("OAuthRefreshToken", "rt", "refresh_token", "rt"),
        ("OAuthVerifier", "code", "verifier", "code"),
        ("CallbackURL", "http://localhost:9000/cb", "callback_url", "http://localhost:9000/cb"),
        ("OAuthSettingsLocation", "/tmp/t.db", "oauth_settings_location", "/tmp/t.db"),
        ("Scope", "a b", "scopes", ("a", "b")),
        ("Scopes", "a,b  c", "scopes", ("a", "b", "c")),
        ("SCOPES", ["a", "b c"], "scopes", ("a", "b", "c")),
        ("AuthScheme", "OAuth", "auth_scheme", "oauth"),
        ("extra__dropbox__access_type", "offline", "access_type", "offline"),
        ("EXTRA__DROPBOX__SELECT_USER", "dbmid:1", "select_user", "dbmid:1"),
        ("path_root", "12345", "path_root", "12345"),
        ("refresh_margin", "60", "refresh_margin", 60),
        ("Refresh_Margin", 0, "refresh_margin", 0),
        ("refresh_margin", 120.0, "refresh_margin", 120),
        ("verify_checksums", "false", "verify_checksums", False),
        ("Verify_Checksums", "FALSE", "verify_checksums", False),
        ("verify_checksums", False, "verify_checksums", False),
        ("verify_checksums", "off", "verify_checksums", False),
        ("extra__dropbox__verify_checksums", "no", "verify_checksums", False),
        ("verify_checksums", "true", "verify_checksums", True),
        ("verify_checksums", True, "verify_checksums", True),
        ("verify_checksums", "", "verify_checksums", True),  # the form's empty field: the default
    ],
)
def test_dropbox_aliases(alias: str, value: Any, attribute: str, expected: Any) -> None:
    fields = {"client_id": "app", alias: value}
    if attribute == "client_id":
        fields = {alias: value}
    config = AuthConfig.from_mapping("dropbox", fields)
    assert getattr(config, attribute) == expected


BOX_JWT = {
    "client_id": "c",
    "client_secret": "s",
    "AuthScheme": "OAuthJWT",
    "OAuthJWTCert": "/keys/box.pem",
    "OAuthJWTCertType": "pemkey_file",
    "OAuthJWTCertPassword": "pw",
    "OAuthJWTPublicKeyId": "kid",
    "OAuthJWTSubjectType": "enterprise",
    "OAuthJWTSubject": "900001",
    "OAuthJWTCertSubject": "*",
}


def test_box_jwt_reference_property_names() -> None:
    config = AuthConfig.from_mapping("box", BOX_JWT)
    assert config.auth_scheme == "jwt" and config.is_service_account
    assert (config.jwt_cert, config.jwt_cert_type, config.jwt_cert_password) == (
        "/keys/box.pem",
        "PEMKEY_FILE",
        "pw",
    )
    assert (config.jwt_public_key_id, config.subject_type, config.subject_id) == (
        "kid",
        "enterprise",
        "900001",
    )
    assert "oauthjwtcertsubject" in IGNORED_EXTRAS


def test_box_canonical_names_any_case_and_old_form_prefix() -> None:
    config = AuthConfig.from_mapping(
        "box_oauth",
        {
            "CLIENT_ID": "c",
            "extra__box_oauth__client_secret": "s",
            "Auth_Scheme": "JWT",
            "jwt_cert": PEM,
            "jwt_public_key_id": "kid",
            "subject_type": "USER",
            "subject_id": 42,
            "as_user": "7",
        },
    )
    assert config.service == "box" and config.jwt_cert_type == "PEMKEY_BLOB"
    assert (config.subject_type, config.subject_id, config.as_user) == ("user", "42", "7")


@pytest.mark.parametrize(
    ("cert", "guessed"),
    [
        (PEM, "PEMKEY_BLOB"),
        (BOX_JWT_JSON, "JSONBLOB"),
        ("/k/config.JSON", "JSONFILE"),
        ("/k/key.pem", "PEMKEY_FILE"),
    ],
)
def test_jwt_cert_type_is_guessed_when_unset(cert: str, guessed: str) -> None:
    config = AuthConfig.from_mapping(
        "box",
        {
            "auth_scheme": "jwt",
            "jwt_cert": cert,
            **{"client_id": "c", "client_secret": "s", "jwt_public_key_id": "k", "subject_id": "1"},
        },
    )
    assert config.jwt_cert_type == guessed


def test_json_config_supplies_key_id_client_and_subject() -> None:
    config = AuthConfig.from_mapping("box", {"auth_scheme": "jwt", "jwt_cert": BOX_JWT_JSON})
    assert config.jwt_cert_type == "JSONBLOB" and config.effective_subject_type == "enterprise"
    assert config.secrets_to_mask() == (BOX_JWT_JSON,)


def test_existing_box_provider_extras_mean_ccg() -> None:
    conn = FakeConnection(
        conn_type="box_oauth",
        login=None,
        password="",
        extra_dejson={"client_id": "c", "client_secret": "s", "enterprise_id": 900001},
    )
    config = AuthConfig.from_connection(conn)
    assert (config.auth_scheme, config.subject_type, config.subject_id) == ("ccg", "enterprise", "900001")
    assert (config.client_id, config.client_secret) == ("c", "s")


def test_enterprise_id_alone_implies_ccg_and_explicit_scheme_wins() -> None:
    base = {"client_id": "c", "client_secret": "s", "enterprise_id": "9"}
    assert AuthConfig.from_mapping("box", base).auth_scheme == "ccg"
    jwt = AuthConfig.from_mapping("box", {**base, "auth_scheme": "jwt", "jwt_cert": BOX_JWT_JSON})
    assert (jwt.auth_scheme, jwt.subject_type, jwt.subject_id) == ("jwt", "enterprise", "9")


def test_from_connection_reads_standard_fields_and_conn_type() -> None:
    conn = FakeConnection(
        conn_type="box_oauth",
        host="http://127.0.0.1:8765",
        extra_dejson={"refresh_token": "rt", "scopes": "", "verifier": None, "jwt_cert": ""},
    )
    config = AuthConfig.from_connection(conn)
    assert (config.service, config.conn_id, config.client_id, config.client_secret) == (
        "box",
        "c1",
        "app",
        "app-secret",
    )
    assert config.endpoint == "http://127.0.0.1:8765" and config.scopes == ()
    assert services.resolve_url(config, "https://api.box.com/2.0/users/me?x=1") == (
        "http://127.0.0.1:8765/api.box.com/2.0/users/me?x=1"
    )
    assert (
        AuthConfig.from_connection(FakeConnection(conn_type="anything"), service="dropbox").service
        == "dropbox"
    )


def test_from_connection_falls_back_to_raw_extra_json() -> None:
    class Raw:
        conn_id, conn_type, login, password, host = "r", "dropbox", "app", None, None
        extra = '{"InitiateOAuth": "REFRESH"}'

    assert AuthConfig.from_connection(Raw()).initiate_oauth == "REFRESH"


def test_static_and_initiate_off_use_the_token_as_is() -> None:
    static = AuthConfig.from_mapping("box", {"auth_scheme": "static", "access_token": "at"})
    off = AuthConfig.from_mapping("dropbox", {"InitiateOAuth": "OFF", "OAuthAccessToken": "at"})
    assert static.uses_static_token and off.uses_static_token
    assert not AuthConfig.from_mapping("dropbox", DROPBOX_BASE).uses_static_token


def test_same_value_under_alias_and_canonical_is_fine() -> None:
    config = AuthConfig.from_mapping(
        "dropbox",
        {
            **DROPBOX_BASE,
            "OAuthClientId": "app",
            "initiate_oauth": "off",
            "InitiateOAuth": "OFF",
            "access_token": "t",
        },
    )
    assert config.initiate_oauth == "OFF"


# ---------------------------------------------------------------- validation messages


def test_unknown_key_names_the_closest_known_one() -> None:
    assert one_problem("dropbox", {**DROPBOX_BASE, "acess_token": "x"}) == (
        "unknown field 'acess_token'; did you mean 'access_token'?"
    )
    assert "did you mean 'OAuthRefreshToken'?" in one_problem(
        "dropbox", {**DROPBOX_BASE, "OAuthRefreshTkn": "x"}
    )
    assert one_problem("box", {**DROPBOX_BASE, "verify_checksum": False}) == (
        "unknown field 'verify_checksum'; did you mean 'verify_checksums'?"
    )
    assert "did you mean 'verify_checksums'?" in one_problem(
        "dropbox", {**DROPBOX_BASE, "verifyChecksums": "false"}
    )
    message = one_problem("dropbox", {**DROPBOX_BASE, "zzzz": 1})
    assert message.startswith("unknown field 'zzzz'; remove it or use one of: auth_scheme, callback_url")


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("auth_scheme", "password", "oauth, jwt, ccg, static (also accepted: oauthjwt)"),
        ("initiate_oauth", "ALWAYS", "GETANDREFRESH, REFRESH, OFF"),
        ("access_type", "forever", "offline, online"),
        ("verify_checksums", "maybe", "true, false (also accepted: no, 0, off, yes, 1, on)"),
    ],
)
def test_wrong_enum_value_lists_the_allowed_ones(key: str, value: str, allowed: str) -> None:
    message = one_problem("dropbox", {**DROPBOX_BASE, key: value})
    assert message == f"field {key!r}: {key} {value!r} is not allowed; use one of: {allowed}"


def test_box_enums() -> None:
    base = {"client_id": "c", "client_secret": "s"}
    assert "use one of: PEMKEY_FILE, PEMKEY_BLOB, JSONFILE, JSONBLOB" in one_problem(
        "box", {**base, "OAuthJWTCertType": "P12"}
    )
    assert "use one of: enterprise, user" in one_problem("box", {**base, "subject_type": "group"})


def test_jwt_without_key_material_or_key_id() -> None:
    found = problems("box", {"client_id": "c", "client_secret": "s", "auth_scheme": "jwt", "subject_id": "1"})
    assert found == [
        "auth_scheme 'jwt' needs the private key: set jwt_cert (OAuthJWTCert) to a PEM file path or PEM "
        "text, or to the Box app config JSON (path or text)",
        "auth_scheme 'jwt' needs jwt_public_key_id (OAuthJWTPublicKeyId), the id of the public key in the "
        "Box app settings, or use the Box app config JSON (jwt_cert_type JSONFILE or JSONBLOB)",
    ]


def test_jwt_pem_needs_client_and_subject_and_blobs_are_checked() -> None:
    found = problems(
        "box",
        {
            "auth_scheme": "jwt",
            "jwt_cert": "not pem",
            "jwt_cert_type": "PEMKEY_BLOB",
            "jwt_public_key_id": "k",
        },
    )
    assert "auth_scheme 'jwt' needs client_id: put it in Login" in found
    assert "auth_scheme 'jwt' needs client_secret: put it in Password" in found
    assert any(p.startswith("auth_scheme 'jwt' needs subject_id (OAuthJWTSubject)") for p in found)
    assert any(
        p.startswith("jwt_cert holds no PEM block although jwt_cert_type is PEMKEY_BLOB") for p in found
    )
    assert one_problem(
        "box", {"auth_scheme": "jwt", "jwt_cert": "{nope", "jwt_cert_type": "JSONBLOB"}
    ).startswith("jwt_cert is not a JSON object although jwt_cert_type is JSONBLOB")
    assert one_problem("box", {"auth_scheme": "jwt", "jwt_cert": BOX_JWT_JSON, "subject_type": "user"}) == (
        "subject_type 'user' needs subject_id (OAuthJWTSubject), the Box user id"
    )


def test_box_only_fields_and_schemes_on_dropbox() -> None:
    found = problems(
        "dropbox",
        {
            **DROPBOX_BASE,
            "auth_scheme": "ccg",
            "OAuthJWTCert": "/k.pem",
            "as_user": "1",
            "subject_id": "2",
            "enterprise_id": "3",
        },
    )
    assert "auth_scheme 'ccg' is Box-only; a Dropbox connection uses 'oauth' or 'static'" in found
    assert (
        "field 'OAuthJWTCert': jwt_cert does not apply to a Dropbox connection; remove it (it belongs on a "
        "'box_oauth' connection)" in found
    )
    assert (
        sum("does not apply to a Dropbox connection" in p for p in found) == 3
    )  # jwt_cert, as_user, subject_id
    assert any("set twice with different values" in p for p in found)  # subject_id vs enterprise_id


def test_dropbox_only_fields_on_box() -> None:
    found = problems(
        "box",
        {
            "client_id": "c",
            "client_secret": "s",
            "select_user": "u",
            "path_root": "1",
            "access_type": "offline",
            "scopes": "root_readwrite",
        },
    )
    assert found == [
        f"field {name!r}: {name} does not apply to a Box connection; remove it "
        "(it belongs on a 'dropbox' connection)"
        for name in ("select_user", "path_root", "access_type")
    ]


def test_ccg_without_subject_or_client() -> None:
    found = problems("box", {"auth_scheme": "ccg"})
    assert found == [
        "auth_scheme 'ccg' needs client_id: put it in Login",
        "auth_scheme 'ccg' needs client_secret: put it in Password",
        "auth_scheme 'ccg' needs a subject: set subject_id to the enterprise id (subject_type "
        "'enterprise', the default) or to a user id with subject_type 'user'",
    ]


def test_static_without_access_token() -> None:
    expected = (
        "auth_scheme 'static' needs access_token (OAuthAccessToken); set it, or use auth_scheme 'oauth'"
    )
    assert one_problem("dropbox", {"auth_scheme": "static"}) == expected
    assert one_problem("box", {"auth_scheme": "static", "access_token": "  "}) == expected


def test_initiate_off_without_access_token_parses() -> None:
    # Headless option 1: InitiateOAuth=OFF with a custom app only to build the authorization URL.
    config = AuthConfig.from_mapping("dropbox", {"InitiateOAuth": "OFF", "OAuthClientId": "app"})
    assert config.initiate_oauth == "OFF" and config.access_token is None and config.uses_static_token
    assert AuthConfig.from_mapping("box", {"InitiateOAuth": "OFF"}).initiate_oauth == "OFF"


def test_oauth_needs_client_id_and_box_needs_secret() -> None:
    assert problems("box", {}) == [
        "OAuth needs the app's client id: put it in Login (Client ID / App key)",
        "Box OAuth needs the app's client secret: put it in Password (Client secret)",
    ]


@pytest.mark.parametrize("endpoint", ["ftp://host", "127.0.0.1:8765", "http://", "localhost"])
def test_endpoint_override_must_be_http_url(endpoint: str) -> None:
    assert one_problem("dropbox", {**DROPBOX_BASE, "endpoint": endpoint}) == (
        f"Host (endpoint override) {endpoint!r} is not an http(s) URL; use e.g. http://127.0.0.1:8765, "
        "or leave Host empty for the real services"
    )


def test_callback_url_must_be_http_url() -> None:
    assert one_problem("dropbox", {**DROPBOX_BASE, "CallbackURL": "localhost:33333"}).startswith(
        "callback_url 'localhost:33333' is not an http(s) URL"
    )


@pytest.mark.parametrize("margin", [-1, "-5", "soon", 1.5, True, [300], float("nan")])
def test_refresh_margin_must_be_non_negative_int(margin: Any) -> None:
    message = one_problem("dropbox", {**DROPBOX_BASE, "refresh_margin": margin})
    assert message.startswith(
        "field 'refresh_margin': refresh_margin must be a non-negative whole number of seconds"
    )


def test_conflicting_duplicates_name_both_sources_without_values() -> None:
    conn = FakeConnection(password="col-secret", extra_dejson={"OAuthClientSecret": "extra-secret"})
    with pytest.raises(AuthConfigError) as info:
        AuthConfig.from_connection(conn)
    assert info.value.problems == [
        "client_secret is set twice with different values (Password and extra 'OAuthClientSecret'); "
        "keep only one of them"
    ]
    assert "secret" not in str(info.value).replace("client_secret", "").replace("OAuthClientSecret", "")
    assert "col-secret" not in str(info.value) and "extra-secret" not in str(info.value)
    found = problems("dropbox", {**DROPBOX_BASE, "scopes": "a", "extra__dropbox__scopes": "b"})
    assert found == [
        "scopes is set twice with different values (field 'scopes' and field "
        "'extra__dropbox__scopes'); keep only one of them"
    ]


def test_every_problem_is_reported_at_once_with_conn_id() -> None:
    with pytest.raises(AuthConfigError) as info:
        AuthConfig.from_mapping(
            "dropbox", {"bogus": 1, "refresh_margin": -1, "endpoint": "x"}, conn_id="my_conn"
        )
    assert len(info.value.problems) == 4  # bogus, margin, endpoint, missing client id
    assert str(info.value).startswith("connection 'my_conn' is misconfigured (4 problem(s)); fix its fields:")


def test_bad_service_extra_shapes_and_types() -> None:
    assert one_problem("sharepoint", DROPBOX_BASE) == (
        "service 'sharepoint' is not supported; use connection type 'dropbox' or 'box_oauth'"
    )
    with pytest.raises(AuthConfigError, match=r"^connection 'c1' is misconfigured \(1 problem\(s\)\)"):
        AuthConfig.from_connection(FakeConnection(extra_dejson=[1, 2]))
    assert one_problem("dropbox", {**DROPBOX_BASE, "select_user": {"a": 1}}) == (
        "field 'select_user': select_user must be text, got {'a': 1}"
    )
    assert one_problem("dropbox", {**DROPBOX_BASE, "access_token": ["tok"]}) == (
        "field 'access_token': access_token must be text, got a secret value"
    )


def test_secret_values_never_in_messages() -> None:
    with pytest.raises(AuthConfigError) as info:
        AuthConfig.from_mapping(
            "dropbox",
            {
                "client_id": "app",
                "OAuthClientSecret": "S3CRET-1",
                "client_secret": "S3CRET-2",
                "auth_scheme": "nope",
            },
        )
    assert "S3CRET" not in str(info.value)


# ---------------------------------------------------------------- repr and helpers


def test_repr_has_no_secret() -> None:
    config = AuthConfig.from_mapping(
        "box",
        {
            "client_id": "c",
            "client_secret": "CLIENT-SECRET-VALUE",
            "auth_scheme": "jwt",
            "jwt_cert": PEM,
            "jwt_cert_password": "PASSPHRASE-VALUE",
            "jwt_public_key_id": "kid",
            "subject_id": "1",
            "access_token": "ACCESS-VALUE",
            "refresh_token": "REFRESH-VALUE",
            "verifier": "VERIFIER-VALUE",
            "oauth_settings_location": "postgresql+psycopg://u:DB-PASSWORD@127.0.0.1:5432/test",
        },
    )
    text = repr(config)
    for secret in (
        "CLIENT-SECRET",
        "PASSPHRASE",
        "ACCESS-VALUE",
        "REFRESH-VALUE",
        "VERIFIER",
        "BEGIN",
        "DB-PASSWORD",
    ):
        assert secret not in text
    assert "postgresql+psycopg://u:***@127.0.0.1:5432/test" in text and "kid" in text
    assert str(config) == text
    assert set(config.secrets_to_mask()) == {
        "CLIENT-SECRET-VALUE",
        "ACCESS-VALUE",
        "REFRESH-VALUE",
        "VERIFIER-VALUE",
        "PASSPHRASE-VALUE",
        PEM,
    }


def test_pkce_only_for_dropbox_oauth_without_secret() -> None:
    assert AuthConfig.from_mapping("dropbox", {"client_id": "a"}).is_pkce
    assert not AuthConfig.from_mapping("dropbox", DROPBOX_BASE).is_pkce
    assert not AuthConfig.from_mapping("box", {"client_id": "a", "client_secret": "s"}).is_pkce
    assert AuthConfig.from_mapping(
        "box", {"client_id": "a", "client_secret": "s"}
    ).may_authorize_interactively


# ---------------------------------------------------------------- property: parse or AuthConfigError only

KNOWN_NAMES = sorted(
    {n for spec in FIELD_SPECS for n in (spec.name, *spec.aliases)} | {"enterprise_id", "OAuthJWTCertSubject"}
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "oauth",
            "OAuthJWT",
            "jwt",
            "ccg",
            "static",
            "OFF",
            "REFRESH",
            "enterprise",
            "user",
            "http://127.0.0.1:1",
            PEM,
            BOX_JWT_JSON,
            "JSONBLOB",
            "PEMKEY_BLOB",
            "offline",
            "300",
            "false",
            "true",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
keys = (
    st.sampled_from(KNOWN_NAMES)
    | st.sampled_from(KNOWN_NAMES).map(str.upper)
    | st.text(max_size=20)
    | st.sampled_from([f"extra__dropbox__{n}" for n in KNOWN_NAMES])
)


@settings(max_examples=300, deadline=None)
@given(
    service=st.sampled_from(["dropbox", "box", "box_oauth", "nope"]),
    extras=st.dictionaries(keys, json_values),
)
def test_arbitrary_extras_parse_or_raise_auth_config_error(service: str, extras: dict[str, Any]) -> None:
    try:
        config = AuthConfig.from_mapping(service, extras)
    except AuthConfigError as error:
        assert error.problems and all(isinstance(p, str) and p for p in error.problems)
        return
    assert config.service in ("dropbox", "box")
    assert isinstance(config.refresh_margin, int) and config.refresh_margin >= 0
    repr(config)


@settings(max_examples=150, deadline=None)
@given(
    conn_type=st.sampled_from(["dropbox", "box_oauth", "box", "x"]),
    login=st.none() | st.text(max_size=5),
    password=st.none() | st.text(max_size=5),
    host=st.none() | st.text(max_size=10) | st.just("http://127.0.0.1:9"),
    extras=st.dictionaries(keys, json_values) | json_values,
)
def test_arbitrary_connections_parse_or_raise_auth_config_error(
    conn_type: str, login: str | None, password: str | None, host: str | None, extras: Any
) -> None:
    conn = FakeConnection(conn_type=conn_type, login=login, password=password, host=host, extra_dejson=extras)
    try:
        AuthConfig.from_connection(conn)
    except AuthConfigError as error:
        assert error.problems
