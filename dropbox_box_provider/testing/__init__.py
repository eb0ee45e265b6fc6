"""Test DAGs offline: the Dropbox + Box emulator as a testing kit for DAG authors.

``emulated_services()`` starts the emulator in a thread and yields ready-made, authorized connections plus
helpers for files, token lifetimes and expiry, faults and counters (see ``docs/testing-your-dags.md``). The
opt-in pytest plugin is ``dropbox_box_provider.testing.pytest_plugin``. Importing this package is cheap: the
emulator, Airflow and the SDKs load only when the services start.
"""

from __future__ import annotations

from dropbox_box_provider.testing.services import (
    BOX_CCG_CONN_ID,
    BOX_CONN_ID,
    BOX_JWT_CONN_ID,
    DROPBOX_CONN_ID,
    EmulatedServices,
    emulated_services,
    mark_expired,
    user_grant,
)

__all__ = [
    "BOX_CCG_CONN_ID",
    "BOX_CONN_ID",
    "BOX_JWT_CONN_ID",
    "DROPBOX_CONN_ID",
    "EmulatedServices",
    "emulated_services",
    "mark_expired",
    "user_grant",
]
