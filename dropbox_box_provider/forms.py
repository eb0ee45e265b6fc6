"""The Dropbox and Box connection forms, built from the field specs (``auth/fields.py``): the declarative
``conn-fields`` of provider info (Airflow 3.2+) and the WTForms widgets older Airflow asks hooks for.

Importing this module is cheap: Flask/WTForms are imported only when older Airflow asks for widgets.
"""

from __future__ import annotations

from typing import Any

from dropbox_box_provider.auth.fields import FieldSpec, iter_extra_specs, standard_spec

#: Standard Connection columns the forms do not use.
HIDDEN_FIELDS = ["schema", "port"]


def conn_field_schema(spec: FieldSpec, service: str | None = None) -> dict[str, Any]:
    """The declarative ``conn-fields`` entry (label, description, JSON schema) of one extra."""
    schema: dict[str, Any] = {"type": [spec.type, "null"]}
    if spec.enum:
        # An optional select needs null among its choices, or an empty field fails validation; the UI
        # would show that choice as the word "null", so it gets a label saying what empty means.
        schema["enum"] = list(spec.enum) if spec.default is not None else [None, *spec.enum]
        if spec.default is None:
            schema["values_display"] = {"null": spec.unset_label or "(not set)"}
    if spec.default is not None:
        schema["default"] = spec.default
    if spec.secret:
        schema["format"] = "password"
    elif spec.multiline:
        schema["format"] = "multiline"
    if spec.type == "integer":
        schema["minimum"] = 0
    placeholder = spec.placeholder_for(service) if service else spec.placeholder
    if placeholder and not spec.secret:
        # Airflow >= 3.2 shows no placeholder for extras; a suggestion list carries the same hint.
        schema["examples"] = [placeholder]
    label = spec.label_for(service) if service else spec.label
    return {"label": label, "description": spec.description, "schema": schema}


def conn_fields(service: str) -> dict[str, dict[str, Any]]:
    """Every extra of ``service`` keyed by its canonical (stored) name."""
    return {spec.name: conn_field_schema(spec, service) for spec in iter_extra_specs(service)}


def ui_field_behaviour(service: str) -> dict[str, Any]:
    """Hidden, relabelled and placeholder standard fields, in the provider-info (kebab-case) shape."""
    placeholders = {
        spec.name: placeholder
        for spec in iter_extra_specs(service)
        if (placeholder := spec.placeholder_for(service)) is not None
    }
    host_placeholder = standard_spec("host").placeholder_for(service)
    if host_placeholder:
        placeholders["host"] = host_placeholder
    return {
        "hidden-fields": list(HIDDEN_FIELDS),
        "relabeling": {
            column: standard_spec(column).label_for(service) for column in ("login", "password", "host")
        },
        "placeholders": placeholders,
    }


def hook_field_behaviour(service: str) -> dict[str, Any]:
    """``ui_field_behaviour`` in the hook-method (snake_case) shape of ``get_ui_field_behaviour``."""
    behaviour = ui_field_behaviour(service)
    return {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }


def connection_form_widgets(service: str) -> dict[str, Any]:
    """WTForms widgets of ``service``'s extras, for Airflow < 3.2 (it ignores the declarative conn-fields)."""
    from flask_appbuilder.fieldwidgets import (
        BS3PasswordFieldWidget,
        BS3TextAreaFieldWidget,
        BS3TextFieldWidget,
    )
    from flask_babel import lazy_gettext
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for spec in iter_extra_specs(service):
        validators: list[Any] = [Optional()]
        if spec.enum:
            validators.append(any_of(list(spec.enum)))
        label = lazy_gettext(spec.label_for(service))
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
