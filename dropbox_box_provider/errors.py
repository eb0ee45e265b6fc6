"""Typed errors of the provider; every message says what to do next.

One tree, for both services::

    DropboxBoxError                    anything this provider raises on purpose
    ├── AuthConfigError (ValueError)   the connection's fields are wrong (lists every problem)
    ├── ReauthorizationRequired        no usable grant remains: a person must authorize again
    ├── StateMismatch                  the OAuth callback's state differs (stale tab or forgery)
    ├── TokenStoreError                the token store cannot be reached, read or decrypted
    │   ├── StoreConflict              a compare-and-swap write lost; re-read and retry
    │   └── LeaseLost                  this process no longer holds the refresh lease; it wrote nothing
    ├── InvalidArgument (ValueError)   a call got an argument it cannot use (no request was sent)
    │   ├── InvalidRemotePath          a malformed remote path or id
    │   └── UnsafePath                 a remote name that would escape the local folder it is written to
    ├── TransferError                  the bytes moved do not match what they should be
    │   ├── ChecksumMismatch           Dropbox content_hash or Box SHA-1 differs; nothing was kept
    │   └── SourceChanged              the local file changed (shrank) while it was being uploaded
    ├── MissingDependency (ImportError) an optional extra is not installed (the message names it)
    ├── TransportError                 no answer: refused, dropped, timed out past the retry budget
    ├── EventTriggerUnavailable (ImportError)  event triggers imported on Airflow older than 3.3
    └── ServiceError                   Dropbox or Box answered with an error (``status``, ``code``)
        ├── NotFound                   no file or folder at that path or id
        ├── AlreadyExists              the name is taken and the call was not told to replace it
        ├── PreconditionFailed         a stale etag / If-Match, or a non-empty folder without recursive
        ├── RateLimited                429 past the retry budget (``retry_after``)
        └── CursorReset                a change-feed cursor too old for the service (Dropbox ``reset``)

Transport errors are kept apart from service errors: after a ``TransportError`` the outcome of a write is
unknown (the service may have applied it), after a ``ServiceError`` the service said no. ``ItemNotFound``,
``ItemExists`` and ``ContentHashMismatch`` are the old names of ``NotFound``, ``AlreadyExists`` and
``ChecksumMismatch``; they still work and warn once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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


class StateMismatch(DropboxBoxError):
    """The ``state`` returned to the OAuth callback differs from the one sent (stale tab or forgery)."""

    def __init__(self, conn_id: str | None = None) -> None:
        self.conn_id = conn_id
        target = conn_id or "<conn_id>"
        super().__init__(
            "The authorization response's state does not match the request (a stale browser tab or a forged "
            f"redirect); nothing was exchanged. Start again: run `dropbox-box-auth authorize {target}`."
        )


class TokenStoreError(DropboxBoxError):
    """The token store cannot be reached, read or decrypted; stored tokens are left untouched."""


class StoreConflict(TokenStoreError):
    """A compare-and-swap write lost: another process wrote the record first. Re-read and retry."""


class LeaseLost(TokenStoreError):
    """This process no longer holds a connection's refresh lease (it expired and another took it, or the
    record was deleted); it wrote nothing."""


class InvalidArgument(DropboxBoxError, ValueError):
    """A call got an argument it cannot use (a chunk size not a multiple of 4 MiB, a bad time)."""


class InvalidRemotePath(InvalidArgument):
    """A remote path or id is malformed (e.g. a relative Box path); the message shows the accepted forms."""


class UnsafePath(InvalidArgument):
    """A remote name would land outside the local folder it is downloaded into (``..``, ``/``, a drive)."""


class MissingDependency(DropboxBoxError, ImportError):
    """A feature needs an optional extra that is not installed; the message says what to ``pip install``."""


class _Coded(DropboxBoxError):
    """An error with the HTTP ``status`` and the service's (or the provider's) short ``code``."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class TransferError(_Coded):
    """The data that moved is not the data that should have: nothing was kept; run the transfer again."""


class ChecksumMismatch(TransferError):
    """Transferred data does not match the service's checksum (Dropbox content_hash, Box SHA-1)."""

    def __init__(self, message: str, status: int | None = None, code: str = "checksum_mismatch") -> None:
        super().__init__(message, status=status, code=code)


class SourceChanged(TransferError):
    """The local file changed size while it was being uploaded; upload it again once it is whole."""

    def __init__(self, message: str, status: int | None = None, code: str = "source_changed") -> None:
        super().__init__(message, status=status, code=code)


class TransportError(_Coded):
    """The connection failed (refused, dropped, timed out) past the retry budget; a write's outcome is
    unknown."""


class ServiceError(_Coded):
    """Dropbox or Box answered with an error that is not about authorization."""


class NotFound(ServiceError):
    """A remote path or id names no file or folder (for the account the connection acts as)."""


class AlreadyExists(ServiceError):
    """The remote name is already taken and the call was not told to accept or replace it."""


class PreconditionFailed(ServiceError):
    """The item is not in the state the call requires: a stale etag (If-Match, HTTP 412) or a non-empty
    folder deleted without ``recursive``."""


class RateLimited(ServiceError):
    """The service kept answering 429 past the retry budget; ``retry_after`` is its last hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=429, code="rate_limited")


class CursorReset(ServiceError):
    """A change-feed position is too old for the service (Dropbox 409 ``reset``): start again from a new
    cursor, and list the folder if changes in between matter."""


class EventTriggerUnavailable(DropboxBoxError, ImportError):
    """The event triggers need Airflow 3.3 or later (``BaseEventTrigger`` with ``asset_state_store``)."""


_OLD_NAMES = {"ItemNotFound": NotFound, "ItemExists": AlreadyExists, "ContentHashMismatch": ChecksumMismatch}


def __getattr__(name: str) -> Any:
    """The old error names, with a DeprecationWarning (once) naming the new one."""
    new = _OLD_NAMES.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from dropbox_box_provider.deprecation import warn_deprecated

    warn_deprecated(f"dropbox_box_provider.errors.{name}", f"dropbox_box_provider.errors.{new.__name__}")
    return new
