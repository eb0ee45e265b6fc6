"""OAuthTokenSensor: waits until a connection's token is due for refresh, or until it has usable tokens."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from dropbox_box_provider.auth.policy import (
    CONDITIONS,
    DEFAULT_MAX_REFRESH_TOKEN_AGE,
    DEFAULT_WINDOW,
    TokenCondition,
    TokenState,
    is_authorized,
    meta_due,
)
from dropbox_box_provider.errors import AuthConfigError, TokenStoreError
from dropbox_box_provider.operators.refresh import as_seconds, oauth_hook_for
from dropbox_box_provider.triggers.token import (
    OAuthTokenTrigger,
    StoreRef,
    meta_payload,
    read_meta,
    store_reference,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

_AIRFLOW_SENSOR_MODES = ("poke", "reschedule")


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when the task is built (not when this module is imported)."""
    from airflow.sdk.configuration import conf

    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


class OAuthTokenSensor(BaseSensorOperator):
    """Succeeds when ``conn_id``'s token is ``due`` (it expires within ``window``, or its Box refresh token is
    older than ``max_refresh_token_age``, or the store holds none yet), or, with ``mode="authorized"``, when
    the connection has usable tokens (e.g. once a person ran the headless ``dropbox-box-auth`` exchange).

    ``mode`` is this sensor's condition; Airflow's own sensor mode is ``sensor_mode`` (a ``mode`` of
    ``poke``/``reschedule``, e.g. from ``default_args``, is taken as that, with the condition ``due``).
    ``deferrable`` (default ``[operators] default_deferrable``) waits in the triggerer instead of a worker.
    Pushes the token's clear metadata (never a token) as XCom.
    """

    template_fields: Sequence[str] = ("conn_id",)
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        conn_id: str,
        mode: str = "due",
        window: timedelta | float = timedelta(seconds=DEFAULT_WINDOW),
        max_refresh_token_age: timedelta | float = timedelta(seconds=DEFAULT_MAX_REFRESH_TOKEN_AGE),
        deferrable: bool | None = None,
        sensor_mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        if mode in _AIRFLOW_SENSOR_MODES:
            mode, sensor_mode = "due", mode
        if mode not in CONDITIONS:
            raise ValueError(
                f"OAuthTokenSensor mode {mode!r} is not one of {', '.join(CONDITIONS)}; Airflow's poke/"
                "reschedule mode goes in sensor_mode"
            )
        super().__init__(mode=sensor_mode, **kwargs)
        self.conn_id = conn_id
        self.condition: TokenCondition = "due" if mode == "due" else "authorized"
        self.window = as_seconds(window)
        self.max_refresh_token_age = as_seconds(max_refresh_token_age)
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def _check(self) -> tuple[TokenState, dict[str, Any], StoreRef | None]:
        """The condition now, the XCom metadata, and the reference of the store a trigger may watch (None:
        never wait); the trigger's kwargs never hold the store's URL."""
        hook = oauth_hook_for(self.conn_id)
        config = hook.get_auth_config()
        base = {"mode": self.condition, "scheme": config.auth_scheme}
        if self.condition == "authorized":
            if config.uses_static_token and config.access_token:
                return TokenState(True, "the connection has a fixed access token"), base, None
            if config.is_service_account:
                return TokenState(True, f"a {config.auth_scheme} service account needs no person"), base, None
            if config.refresh_token:
                return TokenState(True, "the connection carries a refresh token"), base, None
        elif config.uses_static_token:
            raise AuthConfigError(
                [
                    "a fixed access token (auth_scheme static or InitiateOAuth OFF) is never refreshed, so "
                    "it never becomes due: remove this connection from the refreshed ones"
                ],
                self.conn_id,
            )
        store = hook.token_store
        meta = read_meta(store, self.conn_id)
        now = time.time()
        if self.condition == "authorized":
            state = is_authorized(meta, now=now)
        else:
            state = meta_due(
                meta, window=self.window, max_refresh_token_age=self.max_refresh_token_age, now=now
            )
        return state, base | meta_payload(self.conn_id, meta), store_reference(config.oauth_settings_location)

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the store's clear metadata."""
        state, payload, _ = self._check()
        self.log.info(
            "Connection %r %s %s: %s",
            self.conn_id,
            "is" if state.met else "is not",
            self.condition,
            state.reason,
        )
        return PokeReturnValue(is_done=state.met, xcom_value=payload | {"reason": state.reason})

    def execute(self, context: Context) -> Any:
        """Poke/reschedule as any sensor; deferrable: check once, then wait in the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        state, payload, store_ref = self._check()
        if state.met or store_ref is None:
            self.log.info("Connection %r is %s: %s", self.conn_id, self.condition, state.reason)
            return payload | {"reason": state.reason}
        self.log.info("Connection %r is not %s (%s); deferring", self.conn_id, self.condition, state.reason)
        self.defer(
            trigger=OAuthTokenTrigger(
                conn_id=self.conn_id,
                store_ref=store_ref,
                mode=self.condition,
                window=self.window,
                max_refresh_token_age=self.max_refresh_token_age,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: its metadata is the XCom, its error message the failure."""
        if event.get("status") != "success":
            raise TokenStoreError(str(event.get("message") or f"the token trigger failed: {event!r}"))
        self.log.info("Connection %r is %s: %s", self.conn_id, self.condition, event.get("reason"))
        return {key: value for key, value in event.items() if key != "status"}
