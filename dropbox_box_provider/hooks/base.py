"""BaseOAuthHook: the Airflow side shared by the Dropbox and Box hooks (connection -> AuthConfig, forms)."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseHook

from dropbox_box_provider.auth.config import AuthConfig, Service
from dropbox_box_provider.auth.fields import iter_extra_specs
from dropbox_box_provider.get_provider_info import ui_field_behaviour


class BaseOAuthHook(BaseHook):
    """Reads every auth field of one Dropbox or Box connection into a validated ``AuthConfig``.

    Subclasses set ``service``, ``conn_type``, ``default_conn_name`` and ``hook_name``.
    """

    conn_name_attr = "conn_id"
    default_conn_name: ClassVar[str] = ""
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""
    service: ClassVar[Service]

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._auth_config: AuthConfig | None = None

    def get_auth_config(self) -> AuthConfig:
        """The connection's parsed auth fields (read once per hook); secrets are registered for masking."""
        if self._auth_config is None:
            config = AuthConfig.from_connection(self.get_connection(self.conn_id), service=self.service)
            from airflow.sdk.log import mask_secret

            for secret in config.secrets_to_mask():
                mask_secret(secret)
            self._auth_config = config
        return self._auth_config

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """WTForms widgets of the extras, for Airflow < 3.2 (it ignores the declarative conn-fields)."""
        from flask_appbuilder.fieldwidgets import (
            BS3PasswordFieldWidget,
            BS3TextAreaFieldWidget,
            BS3TextFieldWidget,
        )
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, PasswordField, StringField
        from wtforms.validators import Optional, any_of

        widgets: dict[str, Any] = {}
        for spec in iter_extra_specs(cls.service):
            validators: list[Any] = [Optional()]
            if spec.enum:
                validators.append(any_of(list(spec.enum)))
            label = lazy_gettext(spec.label)
            if spec.secret:
                widgets[spec.name] = PasswordField(
                    label,
                    widget=BS3PasswordFieldWidget(),
                    description=spec.description,
                    validators=validators,
                )
            elif spec.type == "integer":
                widgets[spec.name] = IntegerField(
                    label,
                    widget=BS3TextFieldWidget(),
                    description=spec.description,
                    validators=validators,
                    default=spec.default,
                )
            else:
                widget = BS3TextAreaFieldWidget() if spec.multiline else BS3TextFieldWidget()
                widgets[spec.name] = StringField(
                    label,
                    widget=widget,
                    description=spec.description,
                    validators=validators,
                    default=spec.default,
                )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden and relabelled standard fields, in the hook-method (snake_case) shape."""
        behaviour = ui_field_behaviour(cls.service)
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }
