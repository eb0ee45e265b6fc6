"""The ``[core] hostname_callable`` of the fleet: each worker reports the name the driver gave it.

Both Celery workers run on this one machine, so the FQDN Airflow records by default would be the same for
both; ``FLEET_HOSTNAME`` (set per worker) stands in for a machine's own name in ``task_instance.hostname``.
"""

from __future__ import annotations

import os
import socket

HOSTNAME_ENV = "FLEET_HOSTNAME"


def worker_hostname() -> str:
    """``$FLEET_HOSTNAME`` when set (a fleet worker), else this machine's FQDN (scheduler, api-server)."""
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()
