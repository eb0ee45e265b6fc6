"""AuthConfig: a connection's fields parsed and validated into one frozen, typed object."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from dropbox_box_provider.auth import endpoint as endpoint_policy
from dropbox_box_provider.auth.fields import (
    CONN_TYPE_SERVICE,
    FIELD_SPECS,
    IGNORED_EXTRAS,
    LEGACY_ENTERPRISE_ID,
    SERVICE_CONN_TYPE,
    SPECS_BY_NAME,
    FieldSpec,
)
from dropbox_box_provider.errors import AuthConfigError
from dropbox_box_provider.store.urls import redact_url

Service = Literal["dropbox", "box"]
AuthScheme = Literal["oauth", "jwt", "ccg", "static"]
InitiateOAuth = Literal["GETANDREFRESH", "REFRESH", "OFF"]
JwtCertType = Literal["PEMKEY_FILE", "PEMKEY_BLOB", "JSONFILE", "JSONBLOB"]
SubjectType = Literal["enterprise", "user"]
AccessType = Literal["offline", "online"]

DEFAULT_CALLBACK_URL = "http://localhost:33333"
DEFAULT_REFRESH_MARGIN = 300

#: Extras whose value is ``true``/``false`` (a JSON boolean is accepted too).
_BOOLEAN_FIELDS = frozenset({"allow_insecure_endpoint", "verify_checksums"})
_OLD_FORM_PREFIX = re.compile(r"^extra__.+?__", re.IGNORECASE)
_JSON_CERT_TYPES = ("JSONFILE", "JSONBLOB")


@dataclass(frozen=True)
class AuthConfig:
    """Every field of a Dropbox or Box connection (auth, plus ``verify_checksums`` for transfers); secrets are
    excluded from the repr.

    Parsing and validation (canonical names, reference-connector aliases, one AuthConfigError
    listing every problem) live in ``from_mapping`` / ``from_connection``.
    """

    service: Service
    conn_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    allow_insecure_endpoint: bool = False
    auth_scheme: AuthScheme = "oauth"
    initiate_oauth: InitiateOAuth = "GETANDREFRESH"
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    verifier: str | None = field(default=None, repr=False)
    callback_url: str | None = None
    scopes: tuple[str, ...] = ()
    access_type: AccessType | None = None
    oauth_settings_location: str | None = None
    jwt_cert: str | None = field(default=None, repr=False)
    jwt_cert_type: JwtCertType | None = None
    jwt_cert_password: str | None = field(default=None, repr=False)
    jwt_public_key_id: str | None = None
    subject_type: SubjectType | None = None
    subject_id: str | None = None
    as_user: str | None = None
    select_user: str | None = None
    path_root: str | None = None
    refresh_margin: int = DEFAULT_REFRESH_MARGIN
    verify_checksums: bool = True

    def __repr__(self) -> str:
        """Show the non-secret fields; URLs lose any password they carry (e.g. a PostgreSQL store URL)."""
        shown = []
        for f in fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name in ("endpoint", "oauth_settings_location", "callback_url") and isinstance(value, str):
                value = redact_url_password(value)
            shown.append(f"{f.name}={value!r}")
        return f"AuthConfig({', '.join(shown)})"

    # ----------------------------------------------------------------- parsing

    @classmethod
    def from_mapping(cls, service: str, fields: Mapping[str, Any], conn_id: str | None = None) -> AuthConfig:
        """Parse a flat mapping of field names (canonical or alias) to values; raise one AuthConfigError."""
        parser = _Parser(conn_id)
        resolved = parser.service(service)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                parser.add_named(key, value, source="field")
        else:
            parser.problems.append("the fields must be a mapping of field names to values")
        return parser.build(resolved, legacy_client_extras=False)

    @classmethod
    def from_connection(
        cls, conn: Any, service: str | None = None, default_refresh_margin: int = DEFAULT_REFRESH_MARGIN
    ) -> AuthConfig:
        """Parse an Airflow Connection (duck-typed: login, password, host, conn_type, extra_dejson).

        ``default_refresh_margin`` applies when the connection sets no ``refresh_margin`` (the hooks pass
        ``[dropbox_box] refresh_margin``).
        """
        conn_id = _text_or_none(getattr(conn, "conn_id", None))
        parser = _Parser(conn_id)
        if service is None:
            conn_type = getattr(conn, "conn_type", None)
            resolved = parser.service(conn_type, from_conn_type=True)
        else:
            resolved = parser.service(service)
        parser.add("client_id", getattr(conn, "login", None), "Login")
        parser.add("client_secret", getattr(conn, "password", None), "Password")
        parser.add("endpoint", getattr(conn, "host", None), "Host")
        extras = _connection_extras(conn, parser.problems)
        legacy = False
        for key, value in extras.items():
            name = parser.add_named(key, value, source="extra")
            if (
                name is not None
                and isinstance(key, str)
                and _strip_prefix(key).lower() in _LEGACY_CLIENT_KEYS
            ):
                legacy = legacy or not _is_unset(value)
        has_columns = not (
            _is_unset(getattr(conn, "login", None)) and _is_unset(getattr(conn, "password", None))
        )
        return parser.build(
            resolved, legacy_client_extras=legacy and not has_columns, default_margin=default_refresh_margin
        )

    # ----------------------------------------------------------------- helpers

    @property
    def conn_type(self) -> str:
        """The Airflow connection type of this service (``dropbox`` or ``box_oauth``)."""
        return SERVICE_CONN_TYPE[self.service]

    @property
    def is_pkce(self) -> bool:
        """True for a Dropbox user-OAuth app without a client secret: the code exchange uses PKCE."""
        return self.service == "dropbox" and self.auth_scheme == "oauth" and not self.client_secret

    @property
    def uses_static_token(self) -> bool:
        """True when the access token is used as given and never refreshed (static, or InitiateOAuth OFF)."""
        return self.auth_scheme == "static" or (self.auth_scheme == "oauth" and self.initiate_oauth == "OFF")

    @property
    def is_service_account(self) -> bool:
        """True for grants that need no person and no refresh token (Box JWT and CCG)."""
        return self.auth_scheme in ("jwt", "ccg")

    @property
    def may_authorize_interactively(self) -> bool:
        """True when a missing grant may be obtained by a person (GETANDREFRESH); REFRESH only refreshes."""
        return self.auth_scheme == "oauth" and self.initiate_oauth == "GETANDREFRESH"

    @property
    def effective_callback_url(self) -> str:
        """The redirect URI the desktop ``authorize`` listens on: ``callback_url`` or the default."""
        return self.callback_url or DEFAULT_CALLBACK_URL

    @property
    def effective_subject_type(self) -> SubjectType:
        """JWT/CCG subject type, ``enterprise`` when unset (the reference connectors' default)."""
        return self.subject_type or "enterprise"

    @property
    def scope_string(self) -> str | None:
        """Scopes joined by spaces as the authorize URL wants them, None when none are configured."""
        return " ".join(self.scopes) or None

    def secrets_to_mask(self) -> tuple[str, ...]:
        """Secret values a hook passes to Airflow's ``mask_secret``, including secrets in non-secret names."""
        values = [
            self.client_secret,
            self.access_token,
            self.refresh_token,
            self.verifier,
            self.jwt_cert_password,
        ]
        if self.jwt_cert_type in ("PEMKEY_BLOB", "JSONBLOB"):
            values.append(self.jwt_cert)
        return tuple(v for v in values if v)


# --------------------------------------------------------------------- parser internals

_LEGACY_CLIENT_KEYS = frozenset({"client_id", "client_secret"})


def _build_lookup() -> tuple[dict[str, str], dict[str, str]]:
    """Lower-cased accepted name -> canonical name, and lower-cased name -> display spelling."""
    lookup: dict[str, str] = {}
    display: dict[str, str] = {}
    for spec in FIELD_SPECS:
        names = [*spec.aliases, spec.name]
        for name in names:
            lookup[name.lower()] = spec.name
            display[name.lower()] = name
    lookup[LEGACY_ENTERPRISE_ID] = "subject_id"
    display[LEGACY_ENTERPRISE_ID] = LEGACY_ENTERPRISE_ID
    for lowered, spelled in IGNORED_EXTRAS.items():
        display[lowered] = spelled
    return lookup, display


_LOOKUP, _DISPLAY = _build_lookup()


def _strip_prefix(key: str) -> str:
    """Drop the ``extra__<conn_type>__`` prefix that Airflow 2 forms wrote before every extra."""
    return _OLD_FORM_PREFIX.sub("", key.strip(), count=1)


def _is_unset(value: Any) -> bool:
    """None and empty/blank strings count as unset: the UI form saves its empty fields."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _show(value: Any) -> str:
    """A short repr of a non-secret value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def redact_url_password(url: str) -> str:
    """The URL with every password (userinfo, ``password``/``sslpassword`` query) shown as ``***``."""
    return redact_url(url)


def _extra_json_problem(conn: Any) -> str | None:
    """Airflow logs an Extra that is not JSON and hands out ``{}``; name the cause and where it is instead."""
    try:
        raw = getattr(conn, "extra", None)
    except Exception:
        return None
    if not isinstance(raw, str) or _is_unset(raw):
        return None
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        return (
            f"the connection's extra is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f'{exc.msg}; write it as a JSON object such as {{"auth_scheme": "oauth"}}'
        )
    except (TypeError, ValueError, RecursionError):
        return "the connection's extra is not valid JSON; write it as a JSON object"
    return None


def _connection_extras(conn: Any, problems: list[str]) -> Mapping[Any, Any]:
    """The connection's extras as a mapping; an Extra that is not a JSON object becomes a problem."""
    not_json = _extra_json_problem(conn)
    if not_json is not None:
        problems.append(not_json)
        return {}
    try:
        extras = getattr(conn, "extra_dejson", None)
    except Exception:
        extras = None
    if extras is None:
        raw = getattr(conn, "extra", None)
        if not isinstance(raw, str | bytes) or _is_unset(raw):
            return {}
        try:
            extras = json.loads(raw)
        except (TypeError, ValueError):
            problems.append(
                'Extra is not valid JSON; write it as a JSON object such as {"auth_scheme": "oauth"}'
            )
            return {}
    if not isinstance(extras, Mapping):
        problems.append("Extra must be a JSON object of field names to values, not a list or a scalar")
        return {}
    return extras


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _guess_cert_type(cert: str) -> JwtCertType:
    """PEM or JSON, inline text or file path, from what the JWT key field holds."""
    text = cert.lstrip()
    if text.startswith("-----BEGIN"):
        return "PEMKEY_BLOB"
    if text.startswith("{"):
        return "JSONBLOB"
    return "JSONFILE" if text.lower().endswith(".json") else "PEMKEY_FILE"


@dataclass
class _Parser:
    """Collects values (with where each came from) and every problem, then builds one AuthConfig."""

    conn_id: str | None
    problems: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    legacy_enterprise: bool = False

    def service(self, raw: Any, from_conn_type: bool = False) -> Service:
        text = raw.strip().lower() if isinstance(raw, str) else ""
        if text in CONN_TYPE_SERVICE:
            return cast(Service, CONN_TYPE_SERVICE[text])
        if text in ("box", "dropbox"):
            return cast(Service, text)
        what = "connection type" if from_conn_type else "service"
        self.problems.append(
            f"{what} {_show(raw)} is not supported; use connection type 'dropbox' or 'box_oauth'"
        )
        return "dropbox"

    def add_named(self, key: Any, value: Any, source: str) -> str | None:
        """Resolve ``key`` (canonical, alias, old-form prefix, any case) and add its value."""
        if not isinstance(key, str):
            self.problems.append(f"field name {_show(key)} is not text; field names are strings")
            return None
        lowered = _strip_prefix(key).lower()
        label = f"{source} {key!r}" if len(key) <= 60 else f"{source} {_show(key)}"
        if lowered in IGNORED_EXTRAS:
            return None
        canonical = _LOOKUP.get(lowered)
        if canonical is None:
            self.problems.append(self._unknown_key_message(key, lowered))
            return None
        if lowered == LEGACY_ENTERPRISE_ID and not _is_unset(value):
            self.legacy_enterprise = True
        self.add(canonical, value, label)
        return canonical

    def _unknown_key_message(self, key: str, lowered: str) -> str:
        close = difflib.get_close_matches(lowered, list(_DISPLAY), n=1, cutoff=0.6)
        shown = _show(key)
        if close:
            return f"unknown field {shown}; did you mean {_DISPLAY[close[0]]!r}?"
        known = ", ".join(spec.name for spec in FIELD_SPECS if spec.standard is None)
        return f"unknown field {shown}; remove it or use one of: {known}"

    def add(self, name: str, value: Any, source: str) -> None:
        """Convert and record one value; a second, different value for the same field is a conflict."""
        if _is_unset(value):
            return
        spec = SPECS_BY_NAME[name]
        converted = self._convert(spec, value, source)
        if converted is None:
            return
        if name in self.values:
            if self.values[name] != converted:
                self.problems.append(
                    f"{name} is set twice with different values ({self.sources[name]} and {source}); "
                    "keep only one of them"
                )
            return
        self.values[name] = converted
        self.sources[name] = source

    def _convert(self, spec: FieldSpec, value: Any, source: str) -> Any:
        """The value in the field's type, or None after recording a problem."""
        if spec.type == "integer":
            return self._convert_int(spec, value, source)
        if spec.name == "scopes" and isinstance(value, list | tuple):
            if all(isinstance(v, str) for v in value):
                return tuple(s for v in value for s in v.replace(",", " ").split())
            self.problems.append(f"{source}: scopes must be a space-separated string or a list of strings")
            return None
        if spec.name in _BOOLEAN_FIELDS and isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, bool) or not isinstance(value, str | int):
            shown = "a secret value" if spec.secret else _show(value)
            self.problems.append(f"{source}: {spec.name} must be text, got {shown}")
            return None
        text = str(value).strip()
        if spec.enum:
            return self._convert_enum(spec, text, source)
        if spec.name == "scopes":
            return tuple(text.replace(",", " ").split())
        return text

    def _convert_enum(self, spec: FieldSpec, text: str, source: str) -> str | None:
        lowered = text.lower()
        aliases = dict(spec.value_aliases)
        if lowered in aliases:
            return aliases[lowered]
        for allowed in spec.enum:
            if allowed.lower() == lowered:
                return allowed
        accepted = ", ".join(spec.enum)
        extra = (
            f" (also accepted: {', '.join(v for v, _ in spec.value_aliases)})" if spec.value_aliases else ""
        )
        self.problems.append(
            f"{source}: {spec.name} {_show(text)} is not allowed; use one of: {accepted}{extra}"
        )
        return None

    def _convert_int(self, spec: FieldSpec, value: Any, source: str) -> int | None:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
            number = int(value.strip())
        if number is None or number < 0:
            self.problems.append(
                f"{source}: {spec.name} must be a non-negative whole number of seconds, got {_show(value)}"
            )
            return None
        return number

    # ------------------------------------------------------------- validation and build

    def build(
        self, service: Service, legacy_client_extras: bool, default_margin: int = DEFAULT_REFRESH_MARGIN
    ) -> AuthConfig:
        v = self.values
        self._check_services(service)
        scheme = v.get("auth_scheme")
        if scheme is None and service == "box" and (self.legacy_enterprise or legacy_client_extras):
            scheme = "ccg"
        scheme = scheme or "oauth"
        if service == "dropbox" and scheme in ("jwt", "ccg"):
            self.problems.append(
                f"auth_scheme {scheme!r} is Box-only; a Dropbox connection uses 'oauth' or 'static'"
            )
        initiate = v.get("initiate_oauth", "GETANDREFRESH")
        cert = v.get("jwt_cert")
        cert_type = v.get("jwt_cert_type") or (_guess_cert_type(cert) if cert else None)
        subject_type = v.get("subject_type")
        if (
            scheme in ("jwt", "ccg")
            and subject_type is None
            and (self.legacy_enterprise or "subject_id" in v)
        ):
            subject_type = "enterprise"
        if service == "box":
            self._check_scheme(scheme, initiate, cert_type)
        elif scheme == "static" and not v.get("access_token"):
            self._missing_static_token()
        elif scheme == "oauth":
            self._check_oauth(service, initiate)
        self._check_urls()
        if self.problems:
            raise AuthConfigError(self.problems, conn_id=self.conn_id)
        return AuthConfig(
            service=service,
            conn_id=self.conn_id,
            client_id=v.get("client_id"),
            client_secret=v.get("client_secret"),
            endpoint=v.get("endpoint"),
            allow_insecure_endpoint=v.get("allow_insecure_endpoint") == "true",
            auth_scheme=cast(AuthScheme, scheme),
            initiate_oauth=cast(InitiateOAuth, initiate),
            access_token=v.get("access_token"),
            refresh_token=v.get("refresh_token"),
            verifier=v.get("verifier"),
            callback_url=v.get("callback_url"),
            scopes=v.get("scopes", ()),
            access_type=v.get("access_type"),
            oauth_settings_location=v.get("oauth_settings_location"),
            jwt_cert=cert,
            jwt_cert_type=cast("JwtCertType | None", cert_type),
            jwt_cert_password=v.get("jwt_cert_password"),
            jwt_public_key_id=v.get("jwt_public_key_id"),
            subject_type=cast("SubjectType | None", subject_type),
            subject_id=v.get("subject_id"),
            as_user=v.get("as_user"),
            select_user=v.get("select_user"),
            path_root=v.get("path_root"),
            refresh_margin=v.get("refresh_margin", default_margin),
            verify_checksums=v.get("verify_checksums") != "false",
        )

    def _check_services(self, service: Service) -> None:
        other = {"dropbox": "box_oauth", "box": "dropbox"}[service]
        here = {"dropbox": "Dropbox", "box": "Box"}[service]
        for name in self.values:
            spec = SPECS_BY_NAME[name]
            if not spec.applies_to(service):
                self.problems.append(
                    f"{self.sources[name]}: {name} does not apply to a {here} connection; remove it "
                    f"(it belongs on a {other!r} connection)"
                )

    def _missing(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if not self.values.get(n)]

    def _missing_static_token(self) -> None:
        self.problems.append(
            "auth_scheme 'static' needs access_token (OAuthAccessToken); set it, or use auth_scheme 'oauth'"
        )

    def _check_oauth(self, service: Service, initiate: str) -> None:
        if initiate == "OFF":
            # Valid without a token: a custom app may only call GetOAuthAuthorizationURL (headless option 1).
            # A hook that needs a token raises then (BaseOAuthHook.get_token_set).
            return
        if not self.values.get("client_id"):
            self.problems.append("OAuth needs the app's client id: put it in Login (Client ID / App key)")
        if service == "box" and not self.values.get("client_secret"):
            self.problems.append(
                "Box OAuth needs the app's client secret: put it in Password (Client secret)"
            )

    def _check_scheme(self, scheme: str, initiate: str, cert_type: str | None) -> None:
        v = self.values
        if scheme == "static":
            if not v.get("access_token"):
                self._missing_static_token()
        elif scheme == "oauth":
            self._check_oauth("box", initiate)
        elif scheme == "ccg":
            for name in self._missing(("client_id", "client_secret")):
                column = "Login" if name == "client_id" else "Password"
                self.problems.append(f"auth_scheme 'ccg' needs {name}: put it in {column}")
            if not v.get("subject_id"):
                self.problems.append(
                    "auth_scheme 'ccg' needs a subject: set subject_id to the enterprise id "
                    "(subject_type 'enterprise', the default) or to a user id with subject_type 'user'"
                )
        elif scheme == "jwt":
            self._check_jwt(cert_type)

    def _check_jwt(self, cert_type: str | None) -> None:
        v = self.values
        from_json = cert_type in _JSON_CERT_TYPES
        if not v.get("jwt_cert"):
            self.problems.append(
                "auth_scheme 'jwt' needs the private key: set jwt_cert (OAuthJWTCert) to a PEM file path "
                "or PEM text, or to the Box app config JSON (path or text)"
            )
        if not from_json:
            if not v.get("jwt_public_key_id"):
                self.problems.append(
                    "auth_scheme 'jwt' needs jwt_public_key_id (OAuthJWTPublicKeyId), the id of the public "
                    "key in the Box app settings, or use the Box app config JSON (jwt_cert_type JSONFILE or "
                    "JSONBLOB)"
                )
            for name in self._missing(("client_id", "client_secret")):
                column = "Login" if name == "client_id" else "Password"
                self.problems.append(f"auth_scheme 'jwt' needs {name}: put it in {column}")
            if not v.get("subject_id"):
                self.problems.append(
                    "auth_scheme 'jwt' needs subject_id (OAuthJWTSubject): the enterprise id, or a user id "
                    "with subject_type 'user'"
                )
        elif v.get("subject_type") == "user" and not v.get("subject_id"):
            self.problems.append("subject_type 'user' needs subject_id (OAuthJWTSubject), the Box user id")
        cert = v.get("jwt_cert")
        if cert and cert_type == "JSONBLOB":
            try:
                parsed = json.loads(cert)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                self.problems.append(
                    "jwt_cert is not a JSON object although jwt_cert_type is JSONBLOB; paste the whole "
                    "Box app config JSON, or set jwt_cert_type to match what jwt_cert holds"
                )
        if cert and cert_type == "PEMKEY_BLOB" and "-----BEGIN" not in cert:
            self.problems.append(
                "jwt_cert holds no PEM block although jwt_cert_type is PEMKEY_BLOB; paste the key including "
                "its -----BEGIN ... line, or use PEMKEY_FILE with a file path"
            )

    def _check_urls(self) -> None:
        endpoint = self.values.get("endpoint")
        if endpoint and not _is_http_url(endpoint):
            self.problems.append(
                f"Host (endpoint override) {_show(redact_url_password(endpoint))} is not an http(s) URL; "
                "use e.g. http://127.0.0.1:8765, or leave Host empty for the real services"
            )
        elif endpoint and endpoint_policy.is_clear_text_to_remote(endpoint):
            shown = _show(redact_url_password(endpoint))
            if self.values.get("allow_insecure_endpoint") == "true":
                if not self.problems:
                    endpoint_policy.warn_insecure_endpoint(self.conn_id, shown)
            else:
                self.problems.append(endpoint_policy.insecure_endpoint_problem(shown))
        callback = self.values.get("callback_url")
        if callback and not _is_http_url(callback):
            self.problems.append(
                f"callback_url {_show(callback)} is not an http(s) URL; use the redirect URI registered "
                "with your app, e.g. http://localhost:33333"
            )
