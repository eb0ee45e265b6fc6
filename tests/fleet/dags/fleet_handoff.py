"""Fleet scenario 4: worker A forces one refresh of each connection; worker B then uses the stored tokens
and fails if it had to refresh (the store's record versions must not move)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from tests.fleet.work import refresh_now, use_without_refresh


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    params={"calls": 5},
    default_args={"retries": 0, "queue": "worker_a"},
    tags=["fleet"],
)
def fleet_handoff() -> None:
    @task(queue="worker_a")
    def refresh_on_worker_a() -> dict[str, Any]:
        return refresh_now()

    @task(queue="worker_b")
    def use_on_worker_b(refreshed: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params is not None
        return use_without_refresh(refreshed["versions"], int(params["calls"]))

    use_on_worker_b(refresh_on_worker_a())


fleet_handoff()
