"""Mapping expressions: how an ELIZA field's value is computed from a user's Graph properties.

The values under ``field_mapping.user`` / ``field_mapping.mitarbeitende`` are expressions,
compiled once at config load (so a typo is a configuration error) and evaluated per user::

    mail                                  a Graph property (the value as Graph sends it)
    onPremisesExtensionAttributes/extensionAttribute1     a property of a complex property
    'intern'   "intern"                   a constant (a doubled quote stands for the quote)
    {givenName}.{surname}@firma.ch        a template ({{ and }} stand for braces)
    mail | lower                          filters after a pipe, applied left to right
    givenName | first:1 | upper

A ``|`` outside a quoted constant always starts a filter. Filters: ``trim``, ``upper``,
``lower``, ``first:N`` (first N characters), ``initials``, ``date`` (ISO 8601 date-time →
calendar date ``YYYY-MM-DD`` in the configured time zone; a plain date stays), ``primary_smtp``
(the ``SMTP:`` address of a proxyAddresses list).

Values: a null property is ``None`` and every filter passes ``None`` through. Strings stay
strings, lists and booleans pass through a plain property unchanged. The text filters (trim,
upper, lower, first, initials, date) apply to each item of a list and leave non-text values
(booleans, numbers) alone. In a template a null placeholder renders as nothing (and the space
it leaves between two words is not doubled), the result is stripped, and a template whose
placeholders are all null gives ``None``; a list renders as its items joined by ``", "``, a
boolean as ``true``/``false``.

The ELIZA fields deltasync manages itself (``remote_key``, ``is_active``, the person's
``user``, ``groups``, ``id``) cannot be mapped.
"""

from __future__ import annotations

from deltasync.errors import ExpressionError
from deltasync.mapping.expr import (
    DEFAULT_PERSON_MAPPING,
    DEFAULT_USER_MAPPING,
    RESERVED_FIELDS,
    Expr,
    compile_expr,
    merge_mapping,
)
from deltasync.mapping.functions import initials, primary_smtp

__all__ = [
    "DEFAULT_PERSON_MAPPING",
    "DEFAULT_USER_MAPPING",
    "RESERVED_FIELDS",
    "Expr",
    "ExpressionError",
    "compile_expr",
    "initials",
    "merge_mapping",
    "primary_smtp",
]
