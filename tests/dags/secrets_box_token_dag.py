"""Test DAG: one task uses the Box hook, whose tokens live in the token store the secrets backend names.

The test copies this file into a temporary AIRFLOW_HOME's dags folder and runs ``airflow dags test``. The
connection id comes from ``SECRETS_TEST_CONN_ID``; the task writes what it saw (no token) as JSON to
``SECRETS_TEST_RESULT``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="secrets_box_token", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def secrets_box_token() -> None:
    """Get the current Box user through the hook (refreshing the token only when the store's expired)."""

    @task
    def current_box_user() -> str:
        from dropbox_box_provider.hooks.box import BoxHook
        from dropbox_box_provider.secrets.token_store import find_configured_backend

        hook = BoxHook(os.environ["SECRETS_TEST_CONN_ID"])
        user = hook.get_current_user()
        backend = find_configured_backend()
        result = {
            "user_id": user["id"],
            "store_url": hook.token_store.url,
            "backend_found": backend is not None,
        }
        with open(os.environ["SECRETS_TEST_RESULT"], "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        return str(user["id"])

    current_box_user()


secrets_box_token()
