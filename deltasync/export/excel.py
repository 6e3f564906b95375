"""The mirrored Entra users (and a run's plan, field by field) as .xlsx or .csv for people.

HR opens the file in Excel, so the header is styled, frozen and filterable, dates are real
dates, and text Excel would evaluate (``=``, ``+``, ``-``, ``@``, tab, CR first) is stored as
literal text: a displayName from the tenant must never run as a formula on someone's desktop.
Plain data in, file out; the caller gathers the rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from deltasync.errors import UsageError
from deltasync.export.paths import check_export_path

USERS_SHEET = "Entra users"
PLAN_SHEET = "Plan"
PLAN_COLUMNS = (
    "user",
    "entra_id",
    "kind",
    "action",
    "field",
    "old",
    "new",
    "reason",
    "result",
    "adoption",
)
#: How an action may mark a field it adopted from an existing ELIZA object.
ADOPTION_MARKS = frozenset({"overwritten", "kept"})
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MIN_WIDTH, MAX_WIDTH = 8, 60

#: First characters that make Excel (or LibreOffice) read a cell as a formula (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?"
)
#: Plan rows of one user in the order the engine applies them; other kinds follow by name.
_KIND_ORDER = {"user": 0, "person": 1, "membership": 2}
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill(fill_type="solid", start_color="FFDDEBF7", end_color="FFDDEBF7")

Value = str | int | float | bool | date | datetime | None


def plan_csv_path(path: Path) -> Path:
    """Where the plan goes beside a .csv export (CSV has no second sheet)."""
    return path.with_name(f"{path.stem}.plan.csv")


def write_users(
    path: Path,
    users: Sequence[Mapping[str, Any]],
    plan_actions: Sequence[Mapping[str, Any]] | None = None,
    *,
    timezone: ZoneInfo | None = None,
) -> Path:
    """Write the users (sorted by UPN) and, if given, the plan (one row per field change).

    ``.xlsx`` gets sheets "Entra users" and "Plan"; ``.csv`` gets the users, and the plan in
    :func:`plan_csv_path`. ISO date strings become dates, shown in ``timezone`` (else UTC).
    Each file is written atomically, so a reader never sees half of it. Returns ``path``.
    """
    check_export_path(path)
    headers, rows = _users_table(users, timezone)
    plan = None if plan_actions is None else _plan_rows(plan_actions, timezone)
    if path.suffix.lower() == ".csv":
        if plan is not None:
            _atomic_write(plan_csv_path(path), _csv_writer(PLAN_COLUMNS, plan))
        _atomic_write(path, _csv_writer(headers, rows))
    else:
        _atomic_write(path, _xlsx_writer(headers, rows, plan))
    return path


# ------------------------------------------------------------------ tables
def _users_table(
    users: Sequence[Mapping[str, Any]], tz: ZoneInfo | None
) -> tuple[list[str], list[list[Value]]]:
    headers: dict[str, None] = {}
    for user in users:
        headers.update(dict.fromkeys(user))
    columns = list(headers) or ["entra_id"]
    ordered = sorted(users, key=lambda u: _text_key(u.get("userPrincipalName")))
    return columns, [[_convert(u.get(h), tz) for h in columns] for u in ordered]


def _plan_rows(actions: Sequence[Mapping[str, Any]], tz: ZoneInfo | None) -> list[list[Value]]:
    def order(a: Mapping[str, Any]) -> tuple[Any, ...]:
        kind = str(a.get("kind") or "")
        return (*_text_key(a.get("label")), _KIND_ORDER.get(kind, len(_KIND_ORDER)), kind)

    rows: list[list[Value]] = []
    for a in sorted(actions, key=order):
        marks = a.get("adoption") or {}
        blank = {} if a.get("groups") else {"": (None, None)}  # one row even without changes
        changes: Mapping[str, Any] = a.get("changes") or blank
        for name, pair in changes.items():
            old, new = _old_new(pair)
            mark = marks.get(name) if name else None
            row = [a.get("label"), a.get("entra_id"), a.get("kind"), a.get("op"), name, old, new]
            row += [a.get("reason"), a.get("result"), mark if mark in ADOPTION_MARKS else None]
            rows.append([_convert(v, tz) for v in row])
        for entry in a.get("groups") or ():
            sign, group = str(entry)[:1], str(entry)[1:]
            added = sign == "+"
            row = [a.get("label"), a.get("entra_id"), a.get("kind"), a.get("op")]
            row += [f"{sign}group", None if added else group, group if added else None]
            row += [a.get("reason"), a.get("result"), None]
            rows.append([_convert(v, tz) for v in row])
    return rows


def _old_new(pair: Any) -> tuple[Any, Any]:
    if isinstance(pair, list | tuple) and len(pair) == 2:
        return pair[0], pair[1]
    return None, pair


def _text_key(value: Any) -> tuple[bool, str]:
    """Case-insensitive order with missing (or empty) values last."""
    missing = value is None or value == ""
    return missing, "" if missing else str(value).casefold()


# ------------------------------------------------------------------ values
def _convert(value: Any, tz: ZoneInfo | None) -> Value:
    """A report/mirror value as a cell value: dates as dates, lists/dicts as JSON text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return _naive(value, tz)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _parse_date(value, tz)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _parse_date(text: str, tz: ZoneInfo | None) -> str | date | datetime:
    """Only strings that are entirely an ISO date or date-time; anything else stays text."""
    try:
        if _DATE_RE.fullmatch(text):
            return date.fromisoformat(text)
        if _DATETIME_RE.fullmatch(text):
            head, dot, rest = text.partition(".")
            if dot:  # Graph may send 7 fraction digits; Python takes at most 6
                digits = re.match(r"\d+", rest)
                assert digits is not None
                rest = digits.group()[:6] + rest[digits.end() :]
            return _naive(datetime.fromisoformat(head + dot + rest), tz)
    except ValueError:  # 2024-02-30 and the like: not a date, keep the text
        pass
    return text


def _naive(value: datetime, tz: ZoneInfo | None) -> datetime:
    """Excel has no time zones: convert to the reader's zone (else UTC) and drop it."""
    if value.tzinfo is None:
        return value
    return value.astimezone(tz or UTC).replace(tzinfo=None)


def _is_formula_like(text: str) -> bool:
    return text.startswith(_FORMULA_START)


def _width(value: Value) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return len(DATE_FORMAT if value.time() == time() else DATETIME_FORMAT)
    if isinstance(value, date):
        return len(DATE_FORMAT)
    if isinstance(value, str):
        return max((len(line) for line in value.splitlines()), default=0)
    return len(str(value))


# ------------------------------------------------------------------ xlsx
def _xlsx_writer(
    headers: Sequence[str], rows: list[list[Value]], plan: list[list[Value]] | None
) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        wb = Workbook()
        ws = wb.active
        assert isinstance(ws, Worksheet)
        ws.title = USERS_SHEET
        _fill_sheet(ws, headers, rows)
        if plan is not None:
            _fill_sheet(wb.create_sheet(PLAN_SHEET), PLAN_COLUMNS, plan)
        wb.save(fh)

    return write


def _fill_sheet(ws: Worksheet, headers: Sequence[str], rows: list[list[Value]]) -> None:
    widths = [len(h) + 3 for h in headers]  # + room for the filter button
    for col, header in enumerate(headers, start=1):
        cell = ws.cell(row=1, column=col)
        _set(cell, header)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
    for r, row in enumerate(rows, start=2):
        for col, value in enumerate(row, start=1):
            _set(ws.cell(row=r, column=col), value)
            widths[col - 1] = max(widths[col - 1], _width(value) + 2)
    last = get_column_letter(len(headers))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width, MIN_WIDTH), MAX_WIDTH)


def _set(cell: Cell | MergedCell, value: Value) -> None:
    assert isinstance(cell, Cell)  # the sheets have no merged cells
    if isinstance(value, str):
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.data_type = "s"  # never a formula (=...) nor an error value (#N/A)
        if _is_formula_like(value):
            cell.quotePrefix = True  # Excel shows it literally, even after editing the cell
        return
    cell.value = value
    if isinstance(value, datetime):
        cell.number_format = DATE_FORMAT if value.time() == time() else DATETIME_FORMAT
    elif isinstance(value, date):
        cell.number_format = DATE_FORMAT


# ------------------------------------------------------------------ csv
def _csv_writer(headers: Sequence[str], rows: list[list[Value]]) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\r\n")
        out.writerow([_csv_text(h) for h in headers])
        out.writerows([_csv_text(v) for v in row] for row in rows)
        fh.write(buffer.getvalue().encode("utf-8-sig"))  # the BOM makes Excel read UTF-8

    return write


def _csv_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value if _is_formula_like(value) else value
    return str(value)


# ------------------------------------------------------------------ files
def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write beside ``path`` and rename over it: the old file or the new, never half of one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
