"""Token upkeep commands: ``refresh`` now, ``revoke`` a grant, ``rotate-keys`` of the store's encryption."""

from __future__ import annotations

from dropbox_box_provider.auth.manager import TokenManager, tokens_from_record
from dropbox_box_provider.auth.revocation import revoke_grant
from dropbox_box_provider.auth.services import endpoints_for
from dropbox_box_provider.cli.context import StoreChoice, default_store, load_config, store_for
from dropbox_box_provider.cli.errors import CliError
from dropbox_box_provider.cli.output import say, until


def refresh(conn_id: str, choice: StoreChoice, *, show_token: bool) -> str:
    """Obtain a new access token through the TokenManager (single-flight, stored for every worker)."""
    config = load_config(conn_id)
    store = store_for(config, choice)
    tokens = TokenManager(store).force_refresh(conn_id, config)
    if show_token:
        say(tokens.access_token)
    return (
        f"Refreshed {conn_id!r}: the access token expires {until(tokens.expires_at)}; saved in {store.url}."
    )


def revoke(conn_id: str, choice: StoreChoice) -> str:
    """Revoke the stored grant at the service, then forget the tokens (a saved definition stays)."""
    config = load_config(conn_id)
    store = store_for(config, choice)
    record = store.read(conn_id)
    if record is None:
        raise CliError(f"token store {store.url} holds no tokens for {conn_id!r}; there is nothing to revoke")
    revoke_grant(config, store, conn_id, tokens_from_record(record))
    name = endpoints_for(config.service).display_name
    return (
        f"Revoked the {name} grant of {conn_id!r} and removed its tokens from {store.url}. "
        f"Authorize again with `dropbox-box-auth authorize {conn_id}`."
    )


def rotate_keys(choice: StoreChoice) -> str:
    """Re-encrypt every record with the first key of ``--key NEW,OLD`` (or the configured keys)."""
    store = default_store(choice)
    rotation = store.rotate_keys()
    message = f"Re-encrypted {rotation.rotated} record(s) in {store.url} with the first key."
    if rotation.skipped:
        message += (
            f" Skipped {len(rotation.skipped)} record(s) that kept changing while rotating "
            f"({', '.join(rotation.skipped)}): run `dropbox-box-auth rotate-keys` again."
        )
    return message
