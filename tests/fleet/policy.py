"""The fleet's cluster policy (installed as ``airflow_local_settings``): places DAGs the fleet did not write.

The shipped example ``dropbox_to_box_sync`` names no queue; as an operator would, the fleet pins its task to
queue ``worker_a`` by policy, and scenario 3 hands that queue from worker A to worker B between two runs.
"""

from __future__ import annotations

from typing import Any

PINNED_QUEUES = {"dropbox_to_box_sync": "worker_a"}


def task_policy(task: Any) -> None:
    """Give the tasks of a pinned DAG their queue."""
    queue = PINNED_QUEUES.get(task.dag_id)
    if queue is not None:
        task.queue = queue
