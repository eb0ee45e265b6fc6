"""Box JWT (service account) grant: key loading, app-config resolution and the signed assertion."""

from __future__ import annotations

import email.utils
import functools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from dropbox_box_provider.auth import masking
from dropbox_box_provider.auth.config import AuthConfig, JwtCertType, SubjectType
from dropbox_box_provider.auth.services import BOX_JWT_AUDIENCE
from dropbox_box_provider.errors import AuthConfigError

DEFAULT_ALGORITHM = "RS256"
ALGORITHMS = ("RS256", "RS384", "RS512")
ASSERTION_LIFETIME = 45  # Box accepts exp at most 60 s ahead; 45 leaves room for clock drift.
MAX_SKEW_RETRIES = 3
_MAX_FILE_BYTES = 1 << 20
_CLAIM_RE = re.compile(r"\b(exp|jti)\b", re.IGNORECASE)


@dataclass(frozen=True)
class JwtSettings:
    """Everything needed to sign and send a Box JWT grant, resolved from the connection and app config."""

    client_id: str
    client_secret: str = field(repr=False)
    public_key_id: str
    private_key: RSAPrivateKey = field(repr=False)
    subject_type: SubjectType
    subject_id: str
    enterprise_id: str | None = None
    algorithm: str = DEFAULT_ALGORITHM


def infer_cert_type(cert: str) -> JwtCertType:
    """Guess jwt_cert_type when the connection leaves it empty: inline JSON/PEM, else a file path."""
    text = cert.strip()
    if text.startswith("{"):
        return "JSONBLOB"
    if text.startswith("-----BEGIN"):
        return "PEMKEY_BLOB"
    return "JSONFILE" if text.lower().endswith(".json") else "PEMKEY_FILE"


def _read_file(path_text: str, what: str) -> tuple[str | None, str | None]:
    """(content, problem); the path is not secret and is named, the content never is."""
    path = Path(path_text.strip()).expanduser()
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            return (
                None,
                f"jwt_cert {what} file {str(path)!r} is larger than 1 MiB: point jwt_cert at the right file",
            )
        return path.read_text(encoding="utf-8"), None
    except FileNotFoundError:
        return None, f"jwt_cert {what} file {str(path)!r} does not exist: fix the path in jwt_cert"
    except IsADirectoryError:
        return None, f"jwt_cert {what} path {str(path)!r} is a directory: point jwt_cert at the file"
    except PermissionError:
        return None, f"jwt_cert {what} file {str(path)!r} is not readable by this user: fix its permissions"
    except UnicodeDecodeError:
        return (
            None,
            f"jwt_cert {what} file {str(path)!r} is not UTF-8 text: give a PEM or Box JSON config file",
        )
    except OSError as exc:
        return None, f"jwt_cert {what} file {str(path)!r} cannot be read ({exc.strerror}): fix the path"


def _app_config(text: str, source: str) -> tuple[dict[str, Any], str | None]:
    """Parse a Box app config JSON; returns the flat fields it supplies, or a problem."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", "?")
        return (
            {},
            f"{source} is not valid JSON (error at line {line}): download the app config again from Box",
        )
    if not isinstance(data, dict) or not isinstance(data.get("boxAppSettings"), dict):
        return {}, f"{source} has no 'boxAppSettings' object: it must be the JSON config downloaded from Box"
    app: dict[str, Any] = data["boxAppSettings"]
    auth = app.get("appAuth") if isinstance(app.get("appAuth"), dict) else {}
    assert isinstance(auth, dict)

    def text_of(value: object) -> str | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value if isinstance(value, str) and value else None

    return {
        "client_id": text_of(app.get("clientID")),
        "client_secret": text_of(app.get("clientSecret")),
        "public_key_id": text_of(auth.get("publicKeyID")),
        "private_key": text_of(auth.get("privateKey")),
        "passphrase": auth.get("passphrase") if isinstance(auth.get("passphrase"), str) else None,
        "enterprise_id": text_of(data.get("enterpriseID")),
    }, None


@functools.lru_cache(maxsize=16)
def _load_cached(pem: bytes, passphrase: bytes | None) -> RSAPrivateKey | str:
    """Decrypting a key costs tens of ms; cache per (key, passphrase). Returns the key or a problem text."""
    header = pem.lstrip()[:64]
    if b"PUBLIC KEY" in header or b"CERTIFICATE" in header:
        return "holds a public key or certificate, not a private key: give the private key Box generated"
    encrypted = b"ENCRYPTED" in pem[:200]
    try:
        key = serialization.load_pem_private_key(pem, passphrase if encrypted else None)
    except TypeError:
        return "is an encrypted private key but no passphrase is set: fill in jwt_cert_password"
    except ValueError:
        if encrypted and passphrase:
            return "cannot be decrypted with the given passphrase: check jwt_cert_password"
        return "is not a readable PEM private key: give the PEM key (or Box JSON config) Box generated"
    except Exception:  # unsupported formats raise assorted errors; never echo the data
        return "is not a supported private key: give the RSA key (PEM) Box generated"
    if not isinstance(key, RSAPrivateKey):
        return "is not an RSA key: Box JWT needs the RSA key pair generated for the app"
    return key


def load_private_key(pem: str, passphrase: str | None, source: str) -> RSAPrivateKey:
    """Load an (optionally encrypted) PEM private key; failures are AuthConfigErrors naming ``source``."""
    text = pem.strip()
    if "\\n" in text and "\n" not in text:  # a PEM pasted with escaped newlines (env vars, JSON by hand)
        text = text.replace("\\n", "\n")
    result = _load_cached(text.encode("utf-8"), passphrase.encode("utf-8") if passphrase else None)
    if isinstance(result, str):
        raise AuthConfigError([f"{source} {result}"])
    return result


def resolve_jwt_settings(config: AuthConfig) -> JwtSettings:
    """Merge the connection with its key source; connection fields win, the Box JSON config fills gaps.

    Raises one AuthConfigError listing every problem found.
    """
    problems: list[str] = []
    if config.service != "box":
        raise AuthConfigError(
            ["auth_scheme 'jwt' exists for Box only: use oauth for Dropbox"], config.conn_id
        )
    if not config.jwt_cert:
        raise AuthConfigError(
            ["jwt_cert is empty: give the Box app config JSON (file path or content) or the private key PEM"],
            config.conn_id,
        )
    cert_type = config.jwt_cert_type or infer_cert_type(config.jwt_cert)
    supplied: dict[str, Any] = {}
    pem: str | None = None
    if cert_type in ("PEMKEY_FILE", "JSONFILE"):
        content, problem = _read_file(config.jwt_cert, "key" if cert_type == "PEMKEY_FILE" else "app config")
        if problem:
            raise AuthConfigError([problem], config.conn_id)
        assert content is not None
    else:
        content = config.jwt_cert
    if cert_type in ("JSONFILE", "JSONBLOB"):
        source = "the Box app config file" if cert_type == "JSONFILE" else "the Box app config in jwt_cert"
        supplied, problem = _app_config(content, source)
        masking.mask(
            supplied.get("client_secret"),
            supplied.get("passphrase"),
            *masking.pem_secrets(supplied.get("private_key")),
        )
        if problem:
            raise AuthConfigError([problem], config.conn_id)
        pem = supplied.get("private_key")
        key_source = f"privateKey of {source}"
        if not pem:
            problems.append(
                f"{source} has no boxAppSettings.appAuth.privateKey: download a config with a key pair"
            )
    else:
        pem = content
        masking.mask(*masking.pem_secrets(pem))
        key_source = "the key file in jwt_cert" if cert_type == "PEMKEY_FILE" else "the PEM key in jwt_cert"

    client_id = config.client_id or supplied.get("client_id")
    client_secret = config.client_secret or supplied.get("client_secret")
    public_key_id = config.jwt_public_key_id or supplied.get("public_key_id")
    enterprise_id = supplied.get("enterprise_id")
    subject_type: SubjectType = config.subject_type or "enterprise"
    subject_id = config.subject_id or (enterprise_id if subject_type == "enterprise" else None)
    passphrase = config.jwt_cert_password or supplied.get("passphrase")

    if not client_id:
        problems.append("client id is empty: fill in Login (or use the Box JSON app config)")
    if not client_secret:
        problems.append("client secret is empty: fill in Password (or use the Box JSON app config)")
    if not public_key_id:
        problems.append(
            "jwt_public_key_id is empty: give the public key id shown in the Box developer console"
        )
    if not subject_id:
        problems.append(
            "subject_id is empty: give the enterprise id (subject_type 'enterprise') or the app user's id "
            "(subject_type 'user')"
        )
    key: RSAPrivateKey | None = None
    if pem:
        try:
            key = load_private_key(pem, passphrase, key_source)
        except AuthConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise AuthConfigError(problems, config.conn_id)
    assert client_id and client_secret and public_key_id and subject_id and key is not None
    return JwtSettings(
        client_id=client_id,
        client_secret=client_secret,
        public_key_id=public_key_id,
        private_key=key,
        subject_type=subject_type,
        subject_id=subject_id,
        enterprise_id=enterprise_id,
    )


def build_assertion(settings: JwtSettings, *, now: float | None = None) -> str:
    """Sign the assertion: kid/typ header; iss, sub, box_sub_type, aud (the real token URL), jti, exp, iat."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": settings.client_id,
        "sub": settings.subject_id,
        "box_sub_type": settings.subject_type,
        "aud": BOX_JWT_AUDIENCE,
        "jti": secrets.token_urlsafe(48),
        "exp": issued + ASSERTION_LIFETIME,
        "iat": issued,
    }
    return pyjwt.encode(
        claims,
        settings.private_key,
        algorithm=settings.algorithm,
        headers={"kid": settings.public_key_id, "typ": "JWT"},
    )


def is_clock_or_jti_rejection(description: str | None) -> bool:
    """True when Box's invalid_grant description is about the 'exp' or 'jti' claim (clock skew, jti reuse)."""
    return bool(description and _CLAIM_RE.search(description))


def server_time(response: httpx.Response) -> float | None:
    """The service's clock from its ``Date`` header (Unix seconds), or None when absent/unreadable."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return None if when.tzinfo is None else when.timestamp()
