"""The connection fields in one place: names, aliases, labels and rules shared by parsing and the UI forms.

``AuthConfig`` parses with these specs; ``get_provider_info`` and the hooks' form methods render them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

FieldType = Literal["string", "integer"]
StandardField = Literal["login", "password", "host"]

BOTH: frozenset[str] = frozenset({"dropbox", "box"})
DROPBOX_ONLY: frozenset[str] = frozenset({"dropbox"})
BOX_ONLY: frozenset[str] = frozenset({"box"})

#: Airflow connection types of this provider, and the service each one talks to.
CONN_TYPE_SERVICE: dict[str, str] = {"dropbox": "dropbox", "box_oauth": "box"}
#: Connection type per service (the inverse of ``CONN_TYPE_SERVICE``).
SERVICE_CONN_TYPE: dict[str, str] = {"dropbox": "dropbox", "box": "box_oauth"}


#: Other spellings of a true/false extra's two values.
BOOLEAN_ALIASES: tuple[tuple[str, str], ...] = (
    ("no", "false"),
    ("0", "false"),
    ("off", "false"),
    ("yes", "true"),
    ("1", "true"),
    ("on", "true"),
)


@dataclass(frozen=True)
class FieldSpec:
    """One connection field: canonical name, how the UI shows it, which services use it, its aliases.

    ``standard`` names the Airflow Connection column that carries the field (Login, Password, Host);
    such fields are not extras in the form but their aliases are still accepted in the extras.
    ``value_aliases`` maps lower-cased alternative spellings of enum values to the canonical value.
    ``service_labels`` / ``service_placeholders`` override label and placeholder in one service's form
    (Dropbox says "App key" where Box says "Client ID"); ``unset_label`` names an optional dropdown's
    empty choice.
    """

    name: str
    label: str
    description: str
    type: FieldType = "string"
    enum: tuple[str, ...] = ()
    secret: bool = False
    services: frozenset[str] = BOTH
    aliases: tuple[str, ...] = ()
    standard: StandardField | None = None
    default: str | int | None = None
    placeholder: str | None = None
    multiline: bool = False
    value_aliases: tuple[tuple[str, str], ...] = ()
    service_labels: tuple[tuple[str, str], ...] = ()
    service_placeholders: tuple[tuple[str, str], ...] = ()
    unset_label: str | None = None

    def applies_to(self, service: str) -> bool:
        """True when a connection of ``service`` may set this field."""
        return service in self.services

    def label_for(self, service: str) -> str:
        """The label ``service``'s form shows."""
        return dict(self.service_labels).get(service, self.label)

    def placeholder_for(self, service: str) -> str | None:
        """The placeholder ``service``'s form shows."""
        return dict(self.service_placeholders).get(service, self.placeholder)


FIELD_SPECS: tuple[FieldSpec, ...] = (
    # Form order: what most users fill first (the scheme decides the rest), token plumbing last.
    FieldSpec(
        "client_id",
        "Client ID (App key)",
        "OAuth client id of your app (Dropbox calls it App key).",
        aliases=("OAuthClientId", "client_id"),
        standard="login",
        service_labels=(("dropbox", "App key"), ("box", "Client ID")),
    ),
    FieldSpec(
        "client_secret",
        "Client secret",
        "OAuth client secret (Dropbox App secret). Leave empty for a Dropbox PKCE app.",
        secret=True,
        aliases=("OAuthClientSecret", "client_secret"),
        standard="password",
        service_labels=(("dropbox", "App secret"), ("box", "Client secret")),
    ),
    FieldSpec(
        "endpoint",
        "Endpoint override (optional)",
        "Leave empty for the real service. Only for the local emulator or a proxy: a base URL that stands "
        "in for every real host, e.g. http://127.0.0.1:8765.",
        standard="host",
        placeholder="empty: the real service",
        service_placeholders=(("dropbox", "empty: the real Dropbox"), ("box", "empty: the real Box")),
    ),
    FieldSpec(
        "auth_scheme",
        "Auth scheme",
        "oauth: user authorization with refresh; static: a fixed access token; "
        "jwt: Box service account (JWT); ccg: Box client credentials grant.",
        enum=("oauth", "jwt", "ccg", "static"),
        aliases=("AuthScheme",),
        default="oauth",
        value_aliases=(("oauthjwt", "jwt"),),
    ),
    FieldSpec(
        "callback_url",
        "Callback URL",
        "Redirect URI registered with your app; `dropbox-box-auth authorize` listens on it "
        "(default http://localhost:33333). Empty with Dropbox headless: no-redirect flow.",
        aliases=("CallbackURL",),
        placeholder="http://localhost:33333",
    ),
    FieldSpec(
        "scopes",
        "Scopes",
        "Space-separated scopes to request at authorization (empty: the app's configured scopes).",
        aliases=("Scope", "Scopes"),
        service_placeholders=(
            ("dropbox", "files.metadata.read files.content.read files.content.write"),
            ("box", "root_readwrite"),
        ),
    ),
    FieldSpec(
        "access_type",
        "Access type",
        "Dropbox token_access_type: offline returns a refresh token, online does not.",
        enum=("offline", "online"),
        services=DROPBOX_ONLY,
        unset_label="(default: offline)",
    ),
    FieldSpec(
        "select_user",
        "Select user",
        "Dropbox-API-Select-User header: the team member id to act as (team apps).",
        services=DROPBOX_ONLY,
    ),
    FieldSpec(
        "path_root",
        "Path root",
        "Dropbox-API-Path-Root namespace id (e.g. a team space root namespace).",
        services=DROPBOX_ONLY,
    ),
    FieldSpec(
        "jwt_cert",
        "JWT key (path or content)",
        "Box JWT private key: a PEM file path or PEM text, or the Box app config JSON (path or text).",
        services=BOX_ONLY,
        aliases=("OAuthJWTCert",),
        multiline=True,
    ),
    FieldSpec(
        "jwt_cert_type",
        "JWT key type",
        "How to read the JWT key field; empty: guessed from its content.",
        enum=("PEMKEY_FILE", "PEMKEY_BLOB", "JSONFILE", "JSONBLOB"),
        services=BOX_ONLY,
        aliases=("OAuthJWTCertType",),
        unset_label="(guess from the key)",
    ),
    FieldSpec(
        "jwt_cert_password",
        "JWT key passphrase",
        "Passphrase of an encrypted private key (the Box app config JSON carries its own).",
        secret=True,
        services=BOX_ONLY,
        aliases=("OAuthJWTCertPassword",),
    ),
    FieldSpec(
        "jwt_public_key_id",
        "JWT public key ID",
        "ID of the public key registered with the Box app (read from the app config JSON if empty).",
        services=BOX_ONLY,
        aliases=("OAuthJWTPublicKeyId",),
    ),
    FieldSpec(
        "subject_type",
        "Subject type",
        "JWT/CCG subject: enterprise (service account) or user (an app or managed user). Default enterprise.",
        enum=("enterprise", "user"),
        services=BOX_ONLY,
        aliases=("OAuthJWTSubjectType",),
        unset_label="(default: enterprise)",
    ),
    FieldSpec(
        "subject_id",
        "Subject ID",
        "Enterprise id (subject type enterprise) or user id (subject type user), for JWT and CCG.",
        services=BOX_ONLY,
        aliases=("OAuthJWTSubject",),
    ),
    FieldSpec(
        "as_user",
        "Act as user",
        "Box As-User header: a managed user id to act as (needs an admin or service account token).",
        services=BOX_ONLY,
    ),
    FieldSpec(
        "initiate_oauth",
        "Initiate OAuth",
        "GETANDREFRESH: obtain tokens (authorize) and refresh them; REFRESH: only refresh the "
        "seeded tokens; OFF: use the access token as is.",
        enum=("GETANDREFRESH", "REFRESH", "OFF"),
        aliases=("InitiateOAuth",),
        default="GETANDREFRESH",
    ),
    FieldSpec(
        "refresh_token",
        "Refresh token",
        "Seed refresh token; paste a new one here after re-authorizing to re-seed the token store.",
        secret=True,
        aliases=("OAuthRefreshToken",),
    ),
    FieldSpec(
        "access_token",
        "Access token",
        "Seed or fixed access token (optional once the token store holds tokens).",
        secret=True,
        aliases=("OAuthAccessToken",),
    ),
    FieldSpec(
        "verifier",
        "Verifier code",
        "One-time authorization code for the headless exchange (`dropbox-box-auth exchange`).",
        secret=True,
        aliases=("OAuthVerifier",),
    ),
    FieldSpec(
        "oauth_settings_location",
        "Token store (OAuth settings location)",
        "Token store URL (sqlite:///path, postgresql+psycopg://..., memory://) or a sqlite file path.",
        aliases=("OAuthSettingsLocation",),
        placeholder="sqlite:////var/lib/airflow/oauth_tokens.db",
    ),
    FieldSpec(
        "refresh_margin",
        "Refresh margin (seconds)",
        "A token expiring within this many seconds counts as expired and is refreshed. "
        "Empty: [dropbox_box] refresh_margin (300 unless configured).",
        type="integer",
    ),
    FieldSpec(
        "allow_insecure_endpoint",
        "Allow plain-http endpoint",
        "true: accept an http:// Host other than 127.0.0.1/::1/localhost, sending tokens and the client "
        "secret in clear text (a warning is logged). Default false.",
        enum=("false", "true"),
        value_aliases=BOOLEAN_ALIASES,
    ),
    FieldSpec(
        "verify_checksums",
        "Verify checksums",
        "true (default): every upload and download is checked against the service's checksum (Dropbox "
        "content_hash, Box SHA-1), which costs CPU time. false: skip the checks the service does not "
        "require; sizes are still checked, but corruption that keeps the size goes unnoticed.",
        enum=("true", "false"),
        value_aliases=BOOLEAN_ALIASES,
        unset_label="(default: true)",
    ),
)

#: Extras accepted for compatibility with the reference connectors but without effect.
IGNORED_EXTRAS: dict[str, str] = {
    # The reference picks a certificate from a store ("*" = the first one); a Box key here is a file or blob.
    "oauthjwtcertsubject": "OAuthJWTCertSubject",
}

#: The existing Box provider's extra naming the enterprise of a client-credentials (CCG) connection.
LEGACY_ENTERPRISE_ID = "enterprise_id"

SPECS_BY_NAME: dict[str, FieldSpec] = {spec.name: spec for spec in FIELD_SPECS}


def iter_extra_specs(service: str) -> Iterator[FieldSpec]:
    """The extras (not Login/Password/Host) a connection of ``service`` shows in its form."""
    return (spec for spec in FIELD_SPECS if spec.standard is None and spec.applies_to(service))


def standard_spec(standard: StandardField) -> FieldSpec:
    """The spec carried by the Airflow standard column ``standard``."""
    return next(spec for spec in FIELD_SPECS if spec.standard == standard)
