"""Moving a connection to where Airflow reads it: ``export`` / ``import`` of an encrypted settings file
(headless Option 2) and ``save-connection`` into the token store the secrets backend serves."""

from __future__ import annotations

import getpass
import os
import sys
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.fields import SPECS_BY_NAME
from dropbox_box_provider.auth.manager import TokenManager, tokens_from_record
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.cli import envelope, pending
from dropbox_box_provider.cli.context import StoreChoice, connection_store, load_connection, store_for
from dropbox_box_provider.cli.errors import CliError, PassphraseError, SettingsFileError
from dropbox_box_provider.cli.output import note
from dropbox_box_provider.errors import DropboxBoxError, TokenStoreError
from dropbox_box_provider.secrets._connections import definition_from

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import TokenStore

PASSPHRASE_ENV = "DROPBOX_BOX_AUTH_PASSPHRASE"  # noqa: S105 - the variable's name
MIN_PASSPHRASE = 8
# Extras that travel as tokens, not as part of the definition (any accepted spelling).
_TOKEN_EXTRAS = frozenset(
    name.lower()
    for field in ("access_token", "refresh_token", "verifier")
    for name in (field, *SPECS_BY_NAME[field].aliases)
)
_BACKEND_HINT = (
    "no token store secrets backend is configured on this machine, so Airflow does not serve it from the "
    "store yet: set [secrets] backend = dropbox_box_provider.secrets.token_store.TokenStoreBackend "
    "(backend_kwargs store/key as for this command)"
)


def passphrase(from_file: str | None, given: str | None, *, confirm: bool) -> str:
    """The settings-file passphrase: --passphrase-file, $DROPBOX_BOX_AUTH_PASSPHRASE, or a prompt."""
    if from_file:
        try:
            with open(from_file, encoding="utf-8") as handle:
                value = handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise PassphraseError(f"cannot read the passphrase file {from_file}: {exc.strerror}") from None
    elif given:
        note(
            "warning: a passphrase on the command line is visible to other users (ps) and in shell history; "
            f"prefer --passphrase-file or ${PASSPHRASE_ENV}"
        )
        value = given
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV]
    elif sys.stdin.isatty():
        value = getpass.getpass("Passphrase for the settings file: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != value:
            raise PassphraseError("the two passphrases differ; run the command again")
    else:
        raise PassphraseError(
            f"no passphrase: give --passphrase-file FILE or set ${PASSPHRASE_ENV} (stdin is not a terminal, "
            "so it cannot be asked for)"
        )
    if not value:
        raise PassphraseError("the passphrase is empty; choose one of at least 8 characters")
    if confirm and len(value) < MIN_PASSPHRASE:
        raise PassphraseError(
            f"the passphrase is shorter than {MIN_PASSPHRASE} characters; choose a longer one"
        )
    return value


def _without_token_extras(definition: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in definition["extra"].items() if str(k).lower() not in _TOKEN_EXTRAS}
    return {**definition, "extra": extra}


def _as_connection(conn_id: str, definition: dict[str, Any]) -> Any:
    """A duck-typed Connection of a stored definition, for AuthConfig.from_connection."""
    return SimpleNamespace(
        conn_id=conn_id,
        conn_type=definition.get("conn_type"),
        login=definition.get("login"),
        password=definition.get("password"),
        host=definition.get("host"),
        extra_dejson=definition.get("extra") or {},
    )


def _file_warnings(config: AuthConfig) -> None:
    if config.jwt_cert and config.jwt_cert_type in ("PEMKEY_FILE", "JSONFILE"):
        note(
            f"note: jwt_cert names a file ({config.jwt_cert}); copy it to the same path on the other machine"
        )


def export_connection(conn_id: str, out: str, choice: StoreChoice, secret: str, *, force: bool) -> str:
    """Write ``conn_id``'s definition and stored tokens to ``out``, encrypted; nothing is written on error."""
    conn = load_connection(conn_id)
    config = AuthConfig.from_connection(conn)
    definition = definition_from(conn_id, conn)
    store = store_for(config, choice)
    record = store.read(conn_id)
    tokens = tokens_from_record(record).to_dict() if record is not None else None
    waiting = pending.load(store, conn_id)
    if tokens is not None:
        definition = _without_token_extras(definition)
    elif (
        config.auth_scheme == "oauth"
        and not config.uses_static_token
        and not config.refresh_token
        and waiting is None
    ):
        raise CliError(
            f"connection {conn_id!r} has no tokens in token store {store.url}, so the other machine "
            f"could not use it: authorize it here first (`dropbox-box-auth authorize {conn_id}`), or start "
            f"one with `dropbox-box-auth url {conn_id}` to finish there, then export"
        )
    _file_warnings(config)
    content = {
        "conn_id": conn_id,
        "service": config.service,
        "connection": definition,
        "tokens": tokens,
        "pending_authorization": waiting,
        "exported_at": time.time(),
    }
    envelope.write_private(out, envelope.seal(content, secret), overwrite=force)
    what = "definition and tokens" if tokens is not None else "definition (no stored tokens)"
    if waiting is not None:
        what += " and its pending authorization (finish it there with `dropbox-box-auth exchange`)"
    return f"Exported the {what} of {conn_id!r} to {out} (mode 0600, encrypted with the passphrase)."


def _read_content(content: dict[str, Any], path: str) -> tuple[str, dict[str, Any], TokenSet | None]:
    conn_id = content.get("conn_id")
    connection = content.get("connection")
    tokens = content.get("tokens")
    if not isinstance(conn_id, str) or not conn_id or not isinstance(connection, dict):
        raise SettingsFileError(f"{path} holds no connection; export it again")
    try:
        definition = definition_from(conn_id, connection)
        parsed = TokenSet.from_dict(tokens) if isinstance(tokens, dict) else None
    except (TokenStoreError, TypeError) as exc:
        raise SettingsFileError(f"{path} holds an unusable connection ({exc}); export it again") from None
    if parsed is not None and not (isinstance(parsed.access_token, str) and parsed.access_token):
        raise SettingsFileError(f"{path} holds tokens without an access token; export it again")
    return conn_id, definition, parsed


def _occupied(conn_id: str, stores: list[TokenStore]) -> str | None:
    for store in stores:
        if any(meta.conn_id == conn_id for meta in store.list_meta()):
            return store.url
    return None


def import_settings(path: str, choice: StoreChoice, secret: str, *, force: bool) -> str:
    """Decrypt and validate ``path`` completely, then save its definition and tokens into the stores."""
    content = envelope.open_envelope(envelope.read_file(path), secret, path)
    conn_id, definition, tokens = _read_content(content, path)
    config = AuthConfig.from_connection(_as_connection(conn_id, definition))
    definitions, served = connection_store(choice)
    token_store = store_for(config, choice)
    stores = [definitions] if token_store.url == definitions.url else [definitions, token_store]
    occupied = _occupied(conn_id, stores)
    if occupied is not None and not force:
        raise CliError(
            f"token store {occupied} already holds {conn_id!r}; pass --force to replace it with the imported "
            "connection"
        )
    previous = _previous_definition(definitions, conn_id)
    definitions.save_connection(conn_id, definition)
    if tokens is not None:
        try:
            TokenManager(token_store).store_tokens(conn_id, config, tokens, force=force)
        except DropboxBoxError:
            _restore_definition(definitions, conn_id, previous)
            raise
    waiting = content.get("pending_authorization")
    if isinstance(waiting, dict) and isinstance(waiting.get("state"), str):
        pending.save(token_store, conn_id, config, waiting)
    _file_warnings(config)
    lines = [f"Imported {conn_id!r} ({config.service}) into token store {definitions.url}."]
    if tokens is not None and token_store.url != definitions.url:
        lines.append(f"Its tokens went to {token_store.url} (the connection's oauth_settings_location).")
    if not served:
        note(f"note: {_BACKEND_HINT}")
    return " ".join(lines)


def _previous_definition(store: TokenStore, conn_id: str) -> dict[str, Any] | None:
    try:
        return store.get_connection(conn_id)
    except TokenStoreError:
        return None


def _restore_definition(store: TokenStore, conn_id: str, previous: dict[str, Any] | None) -> None:
    """Undo the definition write after a failed token write, so an import is all or nothing."""
    if previous is not None:
        store.save_connection(conn_id, previous)
    elif store.read(conn_id) is None:
        store.delete(conn_id)


def save_connection(conn_id: str, choice: StoreChoice) -> str:
    """Copy ``conn_id``'s definition (as Airflow resolves it) into the store the secrets backend serves."""
    conn = load_connection(conn_id)
    AuthConfig.from_connection(conn)  # refuse to save a definition the hooks would reject
    definition = definition_from(conn_id, conn)
    store, served = connection_store(choice)
    store.save_connection(conn_id, definition)
    if not served:
        note(f"note: {_BACKEND_HINT}")
    return f"Saved the definition of {conn_id!r} into token store {store.url}."
