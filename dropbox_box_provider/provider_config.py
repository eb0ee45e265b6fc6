"""The provider's own Airflow options, section ``[dropbox_box]`` (declared in get_provider_info's ``config``):
defaults a connection or a task can still override. Unset or empty options fall back to the built-in values.
"""

from __future__ import annotations

from dropbox_box_provider.errors import AuthConfigError
from dropbox_box_provider.secrets._airflow_config import get_option
from dropbox_box_provider.store.lease import DEFAULT_LEASE_SECONDS

SECTION = "dropbox_box"

DEFAULT_REFRESH_MARGIN = 300
DEFAULT_MAX_ACTIVE_TRANSFERS = 4
DEFAULT_MAX_CONCURRENT_TRANSFERS = DEFAULT_MAX_ACTIVE_TRANSFERS  # the old name


def _number(key: str, default: float, minimum: float, integer: bool) -> float:
    raw = get_option(SECTION, key)
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        kind = "a whole number" if integer else "a number"
        raise AuthConfigError(
            [
                f"[{SECTION}] {key} = {raw!r} is not {kind} >= {minimum:g}: set it to e.g. "
                f"{default:g}, or remove it (AIRFLOW__{SECTION.upper()}__{key.upper()}) for the default"
            ]
        )
    return value


def default_token_store() -> str | None:
    """``[dropbox_box] token_store``: the token store URL or path used when neither the secrets backend's
    ``store`` kwarg nor the connection's ``oauth_settings_location`` names one (None: the sqlite file
    ``$AIRFLOW_HOME/oauth_tokens.db``)."""
    return get_option(SECTION, "token_store") or None


def default_refresh_margin() -> int:
    """``[dropbox_box] refresh_margin``: seconds before expiry at which a token is refreshed, for
    connections that do not set their own ``refresh_margin``."""
    return int(_number("refresh_margin", DEFAULT_REFRESH_MARGIN, 0, integer=True))


def lease_seconds() -> float:
    """``[dropbox_box] lease_seconds``: how long a refresh lease lasts unless renewed; a dead holder's lease
    lapses within it (every process sharing a store should use the same value)."""
    return _number("lease_seconds", DEFAULT_LEASE_SECONDS, 1, integer=False)


def max_active_transfers() -> int:
    """``[dropbox_box] max_active_transfers``: files an upload, download or transfer operator moves at once
    (the deprecated ``max_concurrent_transfers`` is read when only it is set)."""
    # Airflow hands out the declared default for an unset option: an old name set beside it is the setting.
    unset = ("", str(DEFAULT_MAX_ACTIVE_TRANSFERS))
    if get_option(SECTION, "max_active_transfers") in unset and get_option(
        SECTION, "max_concurrent_transfers"
    ):
        from dropbox_box_provider.deprecation import warn_deprecated

        warn_deprecated("[dropbox_box] max_concurrent_transfers", "[dropbox_box] max_active_transfers")
        return int(_number("max_concurrent_transfers", DEFAULT_MAX_ACTIVE_TRANSFERS, 1, integer=True))
    return int(_number("max_active_transfers", DEFAULT_MAX_ACTIVE_TRANSFERS, 1, integer=True))


def max_concurrent_transfers() -> int:
    """Deprecated name of ``max_active_transfers``."""
    return max_active_transfers()
