"""The ``dropbox-box-auth`` command: the interactive OAuth steps that cannot run inside an Airflow task."""

from dropbox_box_provider.cli.main import main

__all__ = ["main"]
