"""DropboxHook: a Dropbox connection (conn type ``dropbox``) with OAuth tokens that stay valid."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.auth.config import Service
from dropbox_box_provider.hooks.base import BaseOAuthHook


class DropboxHook(BaseOAuthHook):
    """Hook for one Dropbox connection."""

    service: ClassVar[Service] = "dropbox"
    conn_type = "dropbox"
    default_conn_name = "dropbox_default"
    hook_name = "Dropbox"

    # Airflow < 3.2 reads these two only from the hook's own class dict, never from a base class.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form widgets of the Dropbox extras (Airflow < 3.2)."""
        return super().get_connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard-field behaviour of the Dropbox form (Airflow < 3.2)."""
        return super().get_ui_field_behaviour()
