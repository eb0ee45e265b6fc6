"""BoxHook: a Box connection (conn type ``box_oauth``; ``box`` is another provider's) with valid tokens."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.auth.config import Service
from dropbox_box_provider.hooks.base import BaseOAuthHook


class BoxHook(BaseOAuthHook):
    """Hook for one Box connection (user OAuth, JWT service account, CCG or static token)."""

    service: ClassVar[Service] = "box"
    conn_type = "box_oauth"
    default_conn_name = "box_default"
    hook_name = "Box (OAuth)"

    # Airflow < 3.2 reads these two only from the hook's own class dict, never from a base class.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form widgets of the Box extras (Airflow < 3.2)."""
        return super().get_connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard-field behaviour of the Box form (Airflow < 3.2)."""
        return super().get_ui_field_behaviour()
