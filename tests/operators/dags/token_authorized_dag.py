"""Test DAG: a deferrable OAuthTokenSensor waits (in the trigger) until a person authorized the connection
named by ``OPERATORS_TEST_CONN_ID``, then the refresh operator reads the token's metadata."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from dropbox_box_provider.operators.refresh import RefreshOAuthTokenOperator
from dropbox_box_provider.sensors.token import OAuthTokenSensor

CONN_ID = os.environ.get("OPERATORS_TEST_CONN_ID", "box_default")


@dag(dag_id="token_authorized", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def token_authorized() -> None:
    authorized = OAuthTokenSensor(
        task_id="authorized",
        conn_id=CONN_ID,
        mode="authorized",
        deferrable=True,
        poke_interval=0.2,
        timeout=120,
    )
    authorized >> RefreshOAuthTokenOperator(task_id="token_metadata", conn_id=CONN_ID)


token_authorized()
