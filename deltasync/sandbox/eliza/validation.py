"""DRF-style validation of one field value, with the German messages a DRF instance answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from deltasync.sandbox.eliza.resources import Field

# German texts as a DRF instance with LANGUAGE_CODE="de" answers; the client must never parse them.
REQUIRED = "Dieses Feld ist zwingend erforderlich."
NOT_NULL = "Dieses Feld darf nicht null sein."
NOT_BLANK = "Dieses Feld darf nicht leer sein."
NOT_STRING = "Kein gültiger String."
NOT_BOOL = "Muss ein gültiger Wahrheitswert sein."
NOT_INT = "Eine gültige Ganzzahl ist erforderlich."
NOT_EMAIL = "Gib eine gültige E-Mail Adresse an."
NOT_DATE = "Datum hat das falsche Format. Benutze stattdessen eines dieser Formate: YYYY-MM-DD."
NOT_DICT = "Ungültige Daten. Dictionary erwartet, aber {type} erhalten."
TOO_LONG = "Stelle sicher, dass dieses Feld nicht mehr als {n} Zeichen lang ist."
BAD_CHOICE = '"{value}" ist keine gültige Option.'
BAD_PK = 'Ungültiger pk "{pk}" - das Objekt existiert nicht.'
BAD_PK_TYPE = "Falscher Typ. Erwarte pk-Wert, erhielt {type}."
NOT_LIST = 'Erwarte eine Liste von Elementen, erhielt aber den Typ "{type}".'
USER_TAKEN = "Dieser Benutzer ist bereits einer anderen Person zugeordnet."
FILTER_NOT_INT = "Gib eine ganze Zahl ein."

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE = frozenset({True, "true", "True", "TRUE", "1", "yes", "on"})
FALSE = frozenset({False, "false", "False", "FALSE", "0", "no", "off"})


class Invalid(Exception):
    """One field's validation failure (DRF raises per field, the serializer collects them)."""


def type_name(value: Any) -> str:
    return {dict: "dict", list: "list", bool: "bool", int: "int", float: "float", str: "str"}.get(
        type(value), type(value).__name__
    )


def clean(
    spec: Field,
    value: Any,
    data: Mapping[str, Mapping[int, Any]],
    groups: Mapping[int, Any],
) -> Any:
    """The value as the serializer stores it; :class:`Invalid` with DRF's message if not.

    ``data`` (objects by resource) and ``groups`` resolve references.
    """
    if value is None:
        if not spec.nullable:
            raise Invalid(NOT_NULL)
        return None
    kind = spec.kind
    if kind in ("str", "email"):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(NOT_STRING)
        text = str(value)
        if text.strip() == "" and not spec.blank:
            raise Invalid(NOT_BLANK)
        if spec.max_length is not None and len(text) > spec.max_length:
            raise Invalid(TOO_LONG.format(n=spec.max_length))
        if kind == "email" and text and not _EMAIL_RE.match(text):
            raise Invalid(NOT_EMAIL)
        return text
    if kind == "bool":
        if isinstance(value, (bool, str, int)) and value in TRUE:
            return True
        if isinstance(value, (bool, str, int)) and value in FALSE:
            return False
        raise Invalid(NOT_BOOL)
    if kind == "int":
        return as_int(value, NOT_INT)
    if kind == "date":
        if not isinstance(value, str) or not _DATE_RE.match(value):
            raise Invalid(NOT_DATE)
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise Invalid(NOT_DATE) from None
    if kind == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            raise Invalid(BAD_CHOICE.format(value=value))
        return value
    if kind == "ref":
        assert spec.ref is not None
        pk = as_int(value, BAD_PK_TYPE.format(type=type_name(value)))
        if pk not in data[spec.ref]:
            raise Invalid(BAD_PK.format(pk=pk))
        return pk
    if kind == "groups":
        if not isinstance(value, list):
            raise Invalid(NOT_LIST.format(type=type_name(value)))
        ids: set[int] = set()
        for item in value:
            pk = as_int(item, BAD_PK_TYPE.format(type=type_name(item)))
            if pk not in groups:
                raise Invalid(BAD_PK.format(pk=pk))
            ids.add(pk)
        return sorted(ids)
    raise AssertionError(kind)


def as_int(value: Any, message: str) -> int:
    if isinstance(value, bool):
        raise Invalid(message)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise Invalid(message)
