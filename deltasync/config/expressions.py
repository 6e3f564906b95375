"""The sections that hold expressions: ``field_mapping`` and ``advanced.user_filter``.

Each expression and the filter are compiled here, once, when the file is loaded; a mistake is
a problem of the file, reported with its key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from deltasync.config.checker import Checker
from deltasync.config.model import AdvancedConfig, FieldMapping
from deltasync.config.schema import join
from deltasync.config.values import UNRESOLVED
from deltasync.errors import ExpressionError, FilterError
from deltasync.fields import MAPPING_SECTIONS, default_mapping, required_fields, reserved_fields
from deltasync.filter import Filter, parse_filter
from deltasync.mapping import Expr, compile_expr, merge_mapping
from deltasync.models import Kind

_FIELD_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def field_mapping(c: Checker, root: Mapping[str, Any]) -> FieldMapping:
    sec = c.section(root, "field_mapping")
    merged = {kind: _mapping(c, sec, kind) for kind in MAPPING_SECTIONS}
    return FieldMapping(user=merged[Kind.USER], person=merged[Kind.PERSON])


def _mapping(c: Checker, sec: Mapping[str, Any], kind: Kind) -> dict[str, Expr]:
    """One kind's mapping: the defaults with the file's entries over them ({} on a problem)."""
    section = MAPPING_SECTIONS[kind]
    defaults = default_mapping(kind)
    reserved = reserved_fields(kind)
    required = required_fields(kind)
    prefix = f"field_mapping.{section}"
    value = sec.get(section)
    if value is UNRESOLVED:
        value = None
    if value is not None and not isinstance(value, dict):
        c.report(
            prefix,
            "expected a mapping of ELIZA field to Graph property or expression, got "
            f"{c.describe(value, prefix)}",
        )
        value = None
    overrides: dict[str, Expr | None] = {}
    ok = True
    for name, text in (value or {}).items():
        key = join(prefix, name)
        if not isinstance(name, str) or not _FIELD_NAME_RE.match(name):
            c.report(key, "expected an ELIZA field name (letters, digits and _) as key")
            ok = False
        elif name in reserved:
            c.report(key, reserved[name])
            ok = False
        elif text is UNRESOLVED:
            ok = False
        elif text is None:
            if name in required:
                c.report(
                    key,
                    "expected a Graph property or expression, got null: ELIZA requires "
                    f"{name}, so it cannot be removed (map it to another property instead)",
                )
                ok = False
            else:
                overrides[name] = None
        elif not isinstance(text, str) or not text.strip():
            c.report(
                key,
                "expected a Graph property or expression (or null to remove the field), "
                f"got {c.describe(text, key)}",
            )
            ok = False
        else:
            try:
                overrides[name] = compile_expr(str(text))
            except ExpressionError as exc:
                c.report(key, str(exc))
                ok = False
    if not ok:
        return {}
    try:
        return merge_mapping(defaults, overrides)
    except ExpressionError as exc:
        for problem in exc.problems:
            name, sep, message = problem.partition(": ")
            if sep and (name in defaults or name in overrides):
                c.report(join(prefix, name), message)
            else:
                c.report(prefix, problem)
        return {}


def advanced(c: Checker, root: Mapping[str, Any]) -> AdvancedConfig:
    sec = c.section(root, "advanced")
    p = "advanced"
    user_filter: Filter | None = None
    raw = sec.get("user_filter")
    if isinstance(raw, str) and not raw.strip():
        raw = None
    if raw is not None and raw is not UNRESOLVED:
        if not isinstance(raw, str):
            c.report(
                "advanced.user_filter",
                'expected an OData filter such as "accountEnabled eq true", got '
                f"{c.describe(raw, 'advanced.user_filter')}",
            )
        else:
            try:
                user_filter = parse_filter(str(raw))
            except FilterError as exc:
                c.report("advanced.user_filter", str(exc))
    domains = c.string_list(sec, p, "excluded_domains")
    for index, domain in enumerate(domains):
        if any(ch.isspace() for ch in domain) or "@" in domain.lstrip("@"):
            c.report(
                f"advanced.excluded_domains[{index}]",
                f"expected a domain such as 'external.firma.ch', got {domain!r}",
            )
    return AdvancedConfig(
        user_filter=user_filter,
        excluded_domains=domains,
        excluded_users=c.string_list(sec, p, "excluded_users"),
    )
