"""Fleet scenario 2: tasks on worker A refresh and transfer until the driver SIGKILLs worker A; Airflow's
task-instance heartbeat timeout fails them and their retry (try 2) runs wherever ``worker_a`` is served."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from tests.fleet.work import use_services


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_tasks=32,
    params={
        "per_queue": 4,
        "seconds_a": 120.0,
        "seconds_b": 15.0,
        "retry_seconds": 5.0,
        "transfer_bytes": 262144,
    },
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1), "queue": "worker_a"},
    tags=["fleet"],
)
def fleet_worker_dies() -> None:
    @task(queue="worker_b")
    def plan(params: dict[str, Any] | None = None) -> list[int]:
        """One index per mapped task on each queue (worker A's count fills its slots exactly)."""
        assert params is not None
        return list(range(int(params["per_queue"])))

    @task
    def busy(index: int, seconds_key: str, params: dict[str, Any] | None = None) -> dict[str, int]:
        """Refresh and transfer for ``params[seconds_key]``; a retry only proves it works again."""
        assert params is not None
        retried = get_current_context()["ti"].try_number > 1
        seconds = float(params["retry_seconds"] if retried else params[seconds_key])
        return use_services(
            f"dies-{seconds_key}-{index}", seconds, int(params["transfer_bytes"]), folder="/fleet-dies"
        )

    indexes = plan()
    busy.override(task_id="on_worker_a", queue="worker_a").partial(seconds_key="seconds_a").expand(
        index=indexes
    )
    busy.override(task_id="on_worker_b", queue="worker_b").partial(seconds_key="seconds_b").expand(
        index=indexes
    )


fleet_worker_dies()
