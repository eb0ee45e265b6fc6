"""Secret inputs of the CLI: Fernet keys, PKCE verifiers and authorization codes from files, the
environment or stdin. A secret given as an argument still works but warns: argv is visible to other users
(``ps``) and kept in shell history."""

from __future__ import annotations

import os
import sys

from dropbox_box_provider.cli.errors import CliError
from dropbox_box_provider.cli.output import note

KEY_ENV = "DROPBOX_BOX_AUTH_KEY"
ARGV_WARNING = "visible to other users (ps) and in shell history"


def warn_argv(what: str, prefer: str) -> None:
    """The warning for a secret given on the command line (stderr)."""
    note(f"warning: {what} on the command line is {ARGV_WARNING}; prefer {prefer}")


def first_line(path: str, what: str) -> str:
    """The first line of ``path`` without its line end; a missing or unreadable file says so."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            value = handle.readline().rstrip("\r\n").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise CliError(
            f"cannot read the {what} file {path}: {why}; check the path and its permissions"
        ) from None
    if not value:
        raise CliError(f"the {what} file {path} is empty; put the {what} on its first line")
    return value


def store_key(given: str | None, key_file: str | None) -> str | None:
    """The store's Fernet key(s): ``--key-file``, ``--key`` (warns), ``$DROPBOX_BOX_AUTH_KEY``, else None."""
    if key_file:
        return first_line(key_file, "key")
    if given:
        warn_argv("a Fernet key", f"--key-file FILE or ${KEY_ENV}")
        return given
    return os.environ.get(KEY_ENV, "").strip() or None


def code_verifier(given: str | None, verifier_file: str | None) -> str | None:
    """A PKCE verifier from ``--code-verifier-file`` or ``--code-verifier`` (warns); None: the pending one."""
    if verifier_file:
        return first_line(verifier_file, "code verifier")
    if given:
        warn_argv(
            "a PKCE code verifier", "--code-verifier-file FILE, or nothing: `url` keeps it in the store"
        )
        return given
    return None


def code_or_stdin(given: str | None) -> str:
    """The code or redirected address: stdin when omitted or ``-``, else the argument (with a warning)."""
    if given is None or given == "-":
        if sys.stdin.isatty():
            note("Code or redirected address: ")
        return sys.stdin.readline()
    warn_argv("an authorization code", "omitting CODE and pasting it on stdin")
    return given
