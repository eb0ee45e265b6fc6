"""AuthConfig: a connection's fields parsed and validated into one frozen, typed object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Service = Literal["dropbox", "box"]
AuthScheme = Literal["oauth", "jwt", "ccg", "static"]
InitiateOAuth = Literal["GETANDREFRESH", "REFRESH", "OFF"]
JwtCertType = Literal["PEMKEY_FILE", "PEMKEY_BLOB", "JSONFILE", "JSONBLOB"]
SubjectType = Literal["enterprise", "user"]
AccessType = Literal["offline", "online"]

DEFAULT_CALLBACK_URL = "http://localhost:33333"
DEFAULT_REFRESH_MARGIN = 300


@dataclass(frozen=True)
class AuthConfig:
    """Every auth field of a Dropbox or Box connection; secrets are excluded from the repr.

    Parsing and validation (canonical names, reference-connector aliases, one AuthConfigError
    listing every problem) live in ``from_mapping`` / ``from_connection``.
    """

    service: Service
    conn_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    endpoint: str | None = None
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
