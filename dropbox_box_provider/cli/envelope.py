"""The settings file that moves a connection to a headless machine (Option 2): a versioned JSON envelope
around a Fernet token whose key is derived from a passphrase with scrypt and a random salt.

Fernet authenticates the ciphertext, and every header field feeds the key derivation, so a wrong passphrase
and any modification both fail decryption; nothing is trusted before that.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import tempfile
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dropbox_box_provider.cli.errors import SettingsFileError

FORMAT = "dropbox-box-auth/connection-settings"
VERSION = 1
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
MAX_SCRYPT_N = 2**20  # refuse absurd work factors from an untrusted file
MAX_FILE_BYTES = 1_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> Fernet:
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def seal(content: dict[str, Any], passphrase: str) -> bytes:
    """The envelope (JSON bytes) holding ``content`` encrypted under ``passphrase``."""
    salt = secrets.token_bytes(SALT_BYTES)
    fernet = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    envelope = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "cipher": "fernet",
        "data": fernet.encrypt(json.dumps(content).encode("utf-8")).decode("ascii"),
    }
    return (json.dumps(envelope, indent=2) + "\n").encode("ascii")


def _not_ours(path: str, why: str) -> SettingsFileError:
    return SettingsFileError(
        f"{path} is not a dropbox-box-auth settings file ({why}); give the file written by "
        "`dropbox-box-auth export`"
    )


def _kdf_params(envelope: dict[str, Any]) -> tuple[bytes, int, int, int, str] | None:
    """Salt, scrypt n/r/p and ciphertext of an envelope, or None when any is missing or out of bounds."""
    kdf, data = envelope.get("kdf"), envelope.get("data")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt" or envelope.get("cipher") != "fernet":
        return None
    if not isinstance(data, str):
        return None
    try:
        n, r, p = (int(kdf[name]) for name in ("n", "r", "p"))
        salt = base64.urlsafe_b64decode(str(kdf["salt"]))
    except (KeyError, TypeError, ValueError):
        return None
    if not (2 <= n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and salt):
        return None
    return salt, n, r, p, data


def open_envelope(raw: bytes, passphrase: str, path: str) -> dict[str, Any]:
    """The decrypted content of an envelope; SettingsFileError for any problem, nothing half-read."""
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _not_ours(path, "not JSON") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise _not_ours(path, "unknown format")
    if envelope.get("version") != VERSION:
        raise SettingsFileError(
            f"{path} has settings format version {envelope.get('version')!r}; this provider reads version "
            f"{VERSION}: export it again with the same provider version as this machine's"
        )
    params = _kdf_params(envelope)
    if params is None:
        raise SettingsFileError(
            f"{path} was modified or damaged (its key-derivation header is invalid); export it again"
        )
    salt, n, r, p, data = params
    try:
        plain = _derive(passphrase, salt, n, r, p).decrypt(data.encode("ascii"))
        content = json.loads(plain)
    except (InvalidToken, UnicodeEncodeError, ValueError):
        raise SettingsFileError(
            f"cannot decrypt {path}: the passphrase is wrong or the file was modified; nothing was imported. "
            "Check the passphrase, or export the file again and copy it unchanged"
        ) from None
    if not isinstance(content, dict):
        raise _not_ours(path, "its content is not an object")
    return content


def read_file(path: str) -> bytes:
    """The bytes of a settings file (bounded), with a what-to-do error when unreadable."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsFileError(f"cannot read {path}: {exc.strerror}; check the path") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _not_ours(path, "too large")
    return raw


def write_private(path: str, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically; refuse an existing file unless ``overwrite``."""
    if os.path.exists(path) and not overwrite:
        raise SettingsFileError(
            f"{path} already exists; choose another --out path or pass --force to replace it"
        )
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dropbox-box-auth-", dir=directory)  # created 0600
    except OSError as exc:
        raise SettingsFileError(f"cannot write into {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the path appeared meanwhile: never clobbers
    except FileExistsError:
        raise SettingsFileError(f"{path} already exists; choose another --out path or pass --force") from None
    except OSError as exc:
        raise SettingsFileError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
