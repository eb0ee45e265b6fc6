"""Typed errors of the command-line steps; each message says what to do next."""

from __future__ import annotations

from dropbox_box_provider.errors import DropboxBoxError


class CliError(DropboxBoxError):
    """A command could not do its job; nothing was written."""


class ConnectionNotFound(CliError):
    """No Airflow connection source (secrets backend, env var, metastore) knows the connection id."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        super().__init__(
            f"connection {conn_id!r} is not defined: create it with `airflow connections add {conn_id} "
            "--conn-type dropbox|box_oauth ...` or an AIRFLOW_CONN_" + conn_id.upper() + " environment "
            "variable (this command reads the same AIRFLOW_HOME and configuration as Airflow)"
        )


class AuthorizationDenied(CliError):
    """The person declined consent, or the service answered the redirect with an error."""


class AuthorizationTimeout(CliError):
    """No authorization redirect arrived in time."""


class CallbackServerError(CliError):
    """The local callback server cannot listen where the redirect URI points."""


class SettingsFileError(CliError):
    """A settings file cannot be written, read, decrypted or trusted."""


class PassphraseError(CliError):
    """No usable passphrase was given for a settings file."""
