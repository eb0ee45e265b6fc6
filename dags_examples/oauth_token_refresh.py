"""Keep Dropbox and Box OAuth tokens fresh without anyone watching.

Every 30 minutes, for each connection listed in the ``conn_ids`` param: a sensor waits (deferred, so no worker
slot is held) until the token is due, then the operator refreshes it through the token store, where every
worker picks the new token up. "Due" means the access token expires within 30 minutes, or a Box refresh
token is 30 days old (Box lets an unused one die after 60). A token that is not due before the next run is
skipped; a dead grant fails the task with the `dropbox-box-auth authorize <conn_id>` command to run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task, task_group

from dropbox_box_provider.operators.refresh import RefreshOAuthTokenOperator
from dropbox_box_provider.sensors.token import OAuthTokenSensor

WINDOW = timedelta(minutes=30)


@dag(
    schedule=timedelta(minutes=30),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "conn_ids": Param(
            ["dropbox_default", "box_default"],
            type="array",
            items={"type": "string"},
            description="Dropbox / Box (OAuth) connection ids whose tokens to keep fresh",
        )
    },
    tags=["dropbox", "box", "oauth"],
)
def oauth_token_refresh() -> None:
    @task
    def connection_ids(params: dict[str, Any] | None = None) -> list[str]:
        assert params is not None
        return list(params["conn_ids"])

    @task_group
    def keep_fresh(conn_id: str) -> None:
        due = OAuthTokenSensor(
            task_id="token_due",
            conn_id=conn_id,
            mode="due",
            window=WINDOW,
            deferrable=True,
            poke_interval=60,
            timeout=timedelta(minutes=25),  # before the next run starts
            soft_fail=True,  # not due this time: skip the refresh, the next run looks again
        )
        refresh = RefreshOAuthTokenOperator(task_id="refresh", conn_id=conn_id, min_validity=WINDOW)
        due >> refresh

    # One sensor -> operator pair per connection.
    keep_fresh.expand(conn_id=connection_ids())


oauth_token_refresh()
