"""Fleet scenario 1: mapped tasks on both Celery queues call authorized Box and Dropbox endpoints while
access tokens live 2 s; the driver counts refresh grants at the emulator per token lifetime."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from tests.fleet.work import use_services


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_tasks=32,
    params={"per_queue": 20, "seconds": 5.0},
    default_args={"retries": 0, "queue": "worker_a"},
    tags=["fleet"],
)
def fleet_refresh_economy() -> None:
    @task(queue="worker_b")
    def plan(params: dict[str, Any] | None = None) -> list[int]:
        """One index per mapped task on each queue."""
        assert params is not None
        return list(range(int(params["per_queue"])))

    @task
    def use_tokens(index: int, params: dict[str, Any] | None = None) -> dict[str, int]:
        assert params is not None
        return use_services(f"economy-{index}", float(params["seconds"]))

    indexes = plan()
    use_tokens.override(task_id="on_worker_a", queue="worker_a").expand(index=indexes)
    use_tokens.override(task_id="on_worker_b", queue="worker_b").expand(index=indexes)


fleet_refresh_economy()
