"""Typed errors of the provider; every message says what to do next."""

from __future__ import annotations

from collections.abc import Sequence


class DropboxBoxError(Exception):
    """Base class of every error this provider raises on purpose."""


class AuthConfigError(DropboxBoxError, ValueError):
    """The connection's fields are wrong; ``problems`` lists every one found, not just the first."""

    def __init__(self, problems: Sequence[str], conn_id: str | None = None) -> None:
        self.problems = list(problems)
        self.conn_id = conn_id
        where = f"connection {conn_id!r}" if conn_id else "connection"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"{where} is misconfigured ({count} problem(s)); fix its fields:\n{lines}")


class ReauthorizationRequired(DropboxBoxError):
    """No usable refresh token or grant remains: a person must authorize the connection again."""

    def __init__(self, conn_id: str | None, reason: str) -> None:
        self.conn_id = conn_id
        self.reason = reason
        target = conn_id or "<conn_id>"
        super().__init__(
            f"{reason}. Authorize the connection again: run `dropbox-box-auth authorize {target}` "
            f"(or `dropbox-box-auth authorize {target} --headless` on a machine without a browser)."
        )


class TokenStoreError(DropboxBoxError):
    """The token store cannot be reached, read or decrypted; stored tokens are left untouched."""


class StoreConflict(TokenStoreError):
    """A compare-and-swap write lost: another process wrote the record first. Re-read and retry."""


class LeaseLost(TokenStoreError):
    """This process no longer holds a connection's refresh lease (it expired and another took it, or the
    record was deleted); it wrote nothing."""


class ServiceError(DropboxBoxError):
    """Dropbox or Box answered with an error that is not about authorization."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class RateLimited(ServiceError):
    """The service kept answering 429 past the retry budget; ``retry_after`` is its last hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=429, code="rate_limited")


class TransportError(ServiceError):
    """The connection failed (refused, dropped, timed out) past the retry budget."""


class StateMismatch(DropboxBoxError):
    """The ``state`` returned to the OAuth callback differs from the one sent (stale tab or forgery)."""

    def __init__(self, conn_id: str | None = None) -> None:
        self.conn_id = conn_id
        target = conn_id or "<conn_id>"
        super().__init__(
            "The authorization response's state does not match the request (a stale browser tab or a forged "
            f"redirect); nothing was exchanged. Start again: run `dropbox-box-auth authorize {target}`."
        )


class ItemNotFound(ServiceError):
    """A remote path or id names no file or folder (for the account the connection acts as)."""


class ItemExists(ServiceError):
    """The remote name is already taken and the call was not told to accept or replace it."""


class InvalidRemotePath(DropboxBoxError, ValueError):
    """A remote path or id is malformed (e.g. a relative path); the message shows the accepted forms."""


class ContentHashMismatch(ServiceError):
    """Transferred data does not match the service's checksum (Dropbox content_hash); nothing was kept."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, status=status, code="content_hash_mismatch")


class InvalidArgument(DropboxBoxError, ValueError):
    """A hook method got an argument it cannot use (e.g. a chunk size that is not a multiple of 4 MiB)."""
