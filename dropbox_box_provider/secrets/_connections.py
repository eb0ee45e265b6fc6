"""Connection definitions as the token store keeps them, and the JSON the secrets backend serves.

A saved definition is a plain dict of Airflow Connection columns with ``extra`` as an object. Serving it
merges the store's current tokens into the extras under their canonical names, so every reader (hooks,
``airflow connections get``) sees the live, possibly rotated, tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dropbox_box_provider.auth.fields import SPECS_BY_NAME
from dropbox_box_provider.errors import TokenStoreError

#: Connection columns a saved definition may carry (the keys ``Connection.from_json`` accepts).
COLUMNS = ("conn_type", "description", "host", "login", "password", "schema", "port")
#: Token payload keys merged into the served extras.
TOKEN_FIELDS = ("access_token", "refresh_token")

_OLD_FORM_PREFIX = re.compile(r"^extra__.+?__", re.IGNORECASE)


def _token_field_of(key: str) -> str | None:
    """The token field (``access_token``/``refresh_token``) an extra name stands for, in any spelling."""
    lowered = _OLD_FORM_PREFIX.sub("", key.strip(), count=1).lower()
    return _TOKEN_EXTRA_NAMES.get(lowered)


_TOKEN_EXTRA_NAMES: dict[str, str] = {
    name.lower(): field_name
    for field_name in TOKEN_FIELDS
    for name in (SPECS_BY_NAME[field_name].name, *SPECS_BY_NAME[field_name].aliases)
}


def _parse_extra(extra: Any, conn_id: str) -> dict[str, Any]:
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise TokenStoreError(
                f"the Extra of connection {conn_id!r} is not valid JSON; write it as a JSON object"
            ) from None
    if not isinstance(extra, Mapping):
        raise TokenStoreError(f"the Extra of connection {conn_id!r} must be a JSON object of field names")
    return dict(extra)


def definition_from(conn_id: str, connection: Any) -> dict[str, Any]:
    """A storable definition from a mapping (columns + ``extra``) or an Airflow Connection object.

    Raises TokenStoreError when it has no ``conn_type`` or its extra is not a JSON object.
    """
    if isinstance(connection, Mapping):
        source: Mapping[str, Any] = connection
        unknown = sorted(str(k) for k in source if k not in (*COLUMNS, "extra", "conn_id"))
        if unknown:
            raise TokenStoreError(
                f"connection {conn_id!r} has unknown key(s) {unknown}; "
                f"a definition holds only {', '.join(COLUMNS)} and extra"
            )
        extra = source.get("extra")
    else:
        source = {name: getattr(connection, name, None) for name in COLUMNS}
        extra = getattr(connection, "extra", None)
    definition: dict[str, Any] = {
        name: source.get(name) for name in COLUMNS if source.get(name) not in (None, "")
    }
    conn_type = definition.get("conn_type")
    if not isinstance(conn_type, str) or not conn_type.strip():
        raise TokenStoreError(
            f"connection {conn_id!r} has no conn_type; set it (e.g. 'box_oauth' or 'dropbox')"
        )
    definition["extra"] = _parse_extra(extra, conn_id)
    return definition


def served_connection_json(definition: Mapping[str, Any], payload: Mapping[str, Any] | None) -> str:
    """The connection JSON the backend serves: the definition with the current tokens in its extras.

    Any alias spelling of a token field is replaced by the canonical name, so the parsed connection never
    holds two different values for one field.
    """
    columns = {name: definition[name] for name in COLUMNS if definition.get(name) not in (None, "")}
    extra = dict(definition.get("extra") or {})
    current = {name: payload[name] for name in TOKEN_FIELDS if payload is not None and payload.get(name)}
    if current:
        extra = {key: value for key, value in extra.items() if _token_field_of(str(key)) not in current}
        extra.update(current)
    return json.dumps({**columns, "extra": extra})
