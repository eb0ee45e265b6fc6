"""Fernet encryption of stored payloads: comma-separated keys, the first encrypts, every one decrypts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from dropbox_box_provider.errors import TokenStoreError

NO_KEY_CONFIGURED = "no encryption key is configured: set [core] fernet_key or the backend's key"
#: Airflow's config template value for an unset ``[core] fernet_key`` (returned as is by the task SDK).
_UNSET_PLACEHOLDER = "{FERNET_KEY}"
GENERATE_KEY_HINT = (
    "generate one with `python -c "
    '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
)


class UndecryptableError(TokenStoreError):
    """A ciphertext matches none of the configured keys (internal; stores re-raise it naming the record)."""


def split_keys(keys: str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalise a comma-separated string or a sequence of keys into a tuple of non-empty keys."""
    if keys is None:
        return ()
    parts = keys.split(",") if isinstance(keys, str) else [p for k in keys for p in k.split(",")]
    return tuple(p.strip() for p in parts if p.strip())


class TokenCipher:
    """Encrypts JSON payloads with the first key and decrypts with any key (MultiFernet).

    The repr shows only how many keys there are, never a key.
    """

    def __init__(self, keys: str | Sequence[str] | None) -> None:
        self.keys = tuple(k for k in split_keys(keys) if k != _UNSET_PLACEHOLDER)
        if not self.keys:
            raise TokenStoreError(
                f"{NO_KEY_CONFIGURED} (AIRFLOW__CORE__FERNET_KEY, or the token store secrets backend's `key` "
                f"kwarg); {GENERATE_KEY_HINT}"
            )
        fernets: list[Fernet] = []
        for index, key in enumerate(self.keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise TokenStoreError(
                    f"token store key #{index} of {len(self.keys)} is not a valid Fernet key "
                    f"(32 url-safe base64-encoded bytes); {GENERATE_KEY_HINT}"
                ) from None
        self._multi = MultiFernet(fernets)

    def __repr__(self) -> str:
        return f"TokenCipher(keys={len(self.keys)})"

    def encrypt(self, data: dict[str, Any]) -> str:
        """JSON-encode ``data`` and encrypt it with the first key."""
        return self._multi.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> dict[str, Any]:
        """Decrypt with any configured key; raises UndecryptableError when none matches or the data is bad."""
        try:
            plain = self._multi.decrypt(ciphertext.encode("ascii"))
            data = json.loads(plain)
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise UndecryptableError("ciphertext matches none of the configured keys") from None
        if not isinstance(data, dict):
            raise UndecryptableError("decrypted payload is not a JSON object")
        return data

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ``ciphertext`` with the first key (it may be encrypted with any configured key)."""
        try:
            return self._multi.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise UndecryptableError("ciphertext matches none of the configured keys") from None


def undecryptable_message(conn_id: str, column: str, store_url: str) -> str:
    """The what-to-do message for a record none of the configured keys can decrypt."""
    return (
        f"the stored {column} of connection {conn_id!r} in token store {store_url} cannot be decrypted with "
        "the configured key(s). Likely cause: the wrong Fernet key, or the key was rotated without keeping "
        "the old one. Put the old key after the new one (comma-separated: NEW,OLD) and retry; the record is "
        f"left untouched. If the old key is lost, authorize again: `dropbox-box-auth authorize {conn_id}`."
    )
