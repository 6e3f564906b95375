"""deltasync.export.excel: the users/plan export people open in Excel, read back from disk."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.cell.cell import Cell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from deltasync.errors import UsageError
from deltasync.export.excel import (
    PLAN_COLUMNS,
    check_export_path,
    plan_csv_path,
    write_users,
)

INJECTIONS = ['=HYPERLINK("http://x","y")', "+41 31 555", "-1", "@SUM(A1)", "\tcmd", "\rcmd"]

USERS: list[dict[str, Any]] = [
    {
        "entra_id": "id-max",
        "userPrincipalName": "max.muster@firma.ch",
        "displayName": "Max Müller-Lüdenscheidt von Hohenzollern-Sigmaringen",
        "employeeHireDate": "2024-03-31T22:00:00Z",
        "accountEnabled": True,
        "proxyAddresses": ["SMTP:max@firma.ch"],
        "birthday": "1990-07-14",
        "note": "2024-02-30",  # not a real date: stays text
    },
    {
        "entra_id": "id-anna",
        "userPrincipalName": "Anna.Beispiel@firma.ch",
        "displayName": "Anna",
        "employeeHireDate": None,
        "accountEnabled": False,
    },
    {"entra_id": "id-ghost", "userPrincipalName": None, "displayName": "no upn"},
    {"entra_id": "id-zora", "userPrincipalName": "zora@firma.ch", "displayName": "Zora"},
]

ACTIONS: list[dict[str, Any]] = [
    {
        "entra_id": "id-max",
        "label": "max.muster@firma.ch",
        "kind": "person",
        "op": "update",
        "eliza_id": 7,
        "changes": {"vorname": ["Maxi", "Max"], "eintritt": [None, "2024-04-01"]},
        "reason": None,
        "result": "ok",
        "adoption": {"vorname": "overwritten", "eintritt": "kept"},
    },
    {
        "entra_id": "id-max",
        "label": "max.muster@firma.ch",
        "kind": "user",
        "op": "create",
        "eliza_id": 6,
        "changes": {"email": [None, "max@firma.ch"], "groups": [[], ["+1", "+2"]]},
        "reason": "new in scope",
        "result": "planned",
        "adoption": {"email": "something else"},
    },
    {
        "entra_id": "id-anna",
        "label": "Anna.Beispiel@firma.ch",
        "kind": "user",
        "op": "deactivate",
        "eliza_id": 9,
        "changes": {},
        "reason": "disabled in Entra",
        "result": "held",
    },
]


def rows(ws: Worksheet) -> list[list[Any]]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def column(ws: Worksheet, header: str) -> list[Cell]:
    headers = [c.value for c in ws[1]]
    col = headers.index(header) + 1
    cells = next(ws.iter_cols(min_col=col, max_col=col, min_row=2, max_row=ws.max_row))
    return [c for c in cells if isinstance(c, Cell)]


def test_users_sheet_header_is_styled_frozen_and_filterable(tmp_path: Path) -> None:
    path = write_users(tmp_path / "users.xlsx", USERS)
    ws = load_workbook(path)["Entra users"]
    headers = [c.value for c in ws[1]]
    assert headers[:5] == [
        "entra_id",
        "userPrincipalName",
        "displayName",
        "employeeHireDate",
        "accountEnabled",
    ]
    assert "birthday" in headers  # keys of any row, not just the first
    for cell in ws[1]:
        assert cell.font.bold
        assert cell.fill.fill_type == "solid"
        assert cell.fill.fgColor.rgb == "FFDDEBF7"
    for cell in ws[2]:
        assert not cell.font.bold
        assert cell.fill.fill_type is None
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{get_column_letter(len(headers))}{len(USERS) + 1}"
    assert ws.auto_filter.ref == ws.dimensions


def test_column_widths_follow_content_within_bounds(tmp_path: Path) -> None:
    long = {"entra_id": "x", "userPrincipalName": "u@x", "displayName": "y" * 500, "a": "1"}
    ws = load_workbook(write_users(tmp_path / "w.xlsx", [*USERS, long]))["Entra users"]
    width = {
        c.value: ws.column_dimensions[get_column_letter(i)].width for i, c in enumerate(ws[1], 1)
    }
    assert width["displayName"] == 60  # capped
    assert width["a"] == 8  # at least the minimum
    assert 8 < width["entra_id"] < width["userPrincipalName"] < 60


def test_users_sorted_by_upn_case_insensitive_missing_last(tmp_path: Path) -> None:
    ws = load_workbook(write_users(tmp_path / "s.xlsx", USERS))["Entra users"]
    assert [c.value for c in column(ws, "entra_id")] == ["id-anna", "id-max", "id-zora", "id-ghost"]


def test_dates_become_date_cells_in_the_given_timezone(tmp_path: Path) -> None:
    zurich = ZoneInfo("Europe/Zurich")
    ws = load_workbook(write_users(tmp_path / "d.xlsx", USERS, timezone=zurich))["Entra users"]
    hire = column(ws, "employeeHireDate")[1]  # max, second after sorting
    assert hire.value == datetime(2024, 4, 1)  # 22:00Z is midnight in Zurich
    assert hire.is_date
    assert hire.number_format == "yyyy-mm-dd"
    birthday = column(ws, "birthday")[1]
    assert birthday.value == datetime(1990, 7, 14)
    assert birthday.is_date
    assert column(ws, "note")[1].value == "2024-02-30"
    assert column(ws, "note")[1].data_type == "s"


def test_dates_default_to_utc_and_keep_the_time(tmp_path: Path) -> None:
    ws = load_workbook(write_users(tmp_path / "u.xlsx", USERS))["Entra users"]
    hire = column(ws, "employeeHireDate")[1]
    assert hire.value == datetime(2024, 3, 31, 22, 0)
    assert hire.is_date
    assert hire.number_format == "yyyy-mm-dd hh:mm:ss"


def test_graph_seven_digit_fractions_parse(tmp_path: Path) -> None:
    user = {"userPrincipalName": "a@x", "t": "2024-03-31T22:00:00.1234567Z", "s": "2024-03-31T"}
    ws = load_workbook(write_users(tmp_path / "f.xlsx", [user]))["Entra users"]
    assert column(ws, "t")[0].value == datetime(2024, 3, 31, 22, 0, 0, 123000)
    assert column(ws, "s")[0].value == "2024-03-31T"


def test_booleans_json_and_empty_cells(tmp_path: Path) -> None:
    ws = load_workbook(write_users(tmp_path / "b.xlsx", USERS))["Entra users"]
    enabled = column(ws, "accountEnabled")
    assert [c.value for c in enabled[:2]] == [False, True]
    assert enabled[0].data_type == "b"
    assert enabled[3].value is None  # the row without the key
    assert column(ws, "proxyAddresses")[1].value == '["SMTP:max@firma.ch"]'
    assert str(column(ws, "displayName")[1].value).startswith("Max Müller")


@pytest.mark.parametrize("text", INJECTIONS)
def test_formula_like_text_is_literal_in_xlsx(tmp_path: Path, text: str) -> None:
    user = {"userPrincipalName": "a@x", "displayName": text, "mobilePhone": "+41 31 555"}
    action = {"label": "a@x", "kind": "user", "op": "update", "changes": {"x": ["=1+1", text]}}
    wb = load_workbook(write_users(tmp_path / "i.xlsx", [user], [action]))
    for cell in (column(wb["Entra users"], "displayName")[0], column(wb["Plan"], "new")[0]):
        assert cell.value == text.replace("\r", "\n")  # XML reads a bare CR back as LF
        assert cell.data_type == "s"
        assert cell.quotePrefix
    old = column(wb["Plan"], "old")[0]
    assert (old.value, old.data_type, old.quotePrefix) == ("=1+1", "s", True)
    plain = column(wb["Entra users"], "userPrincipalName")[0]
    assert not plain.quotePrefix


def test_error_like_text_stays_text(tmp_path: Path) -> None:
    ws = load_workbook(write_users(tmp_path / "e.xlsx", [{"displayName": "#N/A"}]))["Entra users"]
    cell = column(ws, "displayName")[0]
    assert (cell.value, cell.data_type) == ("#N/A", "s")


def test_plan_sheet_one_row_per_field_with_adoption(tmp_path: Path) -> None:
    wb = load_workbook(write_users(tmp_path / "p.xlsx", USERS, ACTIONS))
    assert wb.sheetnames == ["Entra users", "Plan"]
    ws = wb["Plan"]
    assert tuple(rows(ws)[0]) == PLAN_COLUMNS
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J6"
    body = [dict(zip(PLAN_COLUMNS, r, strict=True)) for r in rows(ws)[1:]]
    # by label (case-insensitive), then kind in apply order: user before person
    assert [(r["user"], r["kind"], r["field"]) for r in body] == [
        ("Anna.Beispiel@firma.ch", "user", None),
        ("max.muster@firma.ch", "user", "email"),
        ("max.muster@firma.ch", "user", "groups"),
        ("max.muster@firma.ch", "person", "vorname"),
        ("max.muster@firma.ch", "person", "eintritt"),
    ]
    anna, email, groups, vorname, eintritt = body
    assert anna["action"] == "deactivate"
    assert anna["reason"] == "disabled in Entra"
    assert anna["result"] == "held"
    assert anna["old"] is None
    assert anna["new"] is None
    assert email["adoption"] is None  # only "overwritten"/"kept" are shown
    assert groups["old"] == "[]"
    assert groups["new"] == '["+1", "+2"]'
    assert (vorname["old"], vorname["new"], vorname["adoption"]) == ("Maxi", "Max", "overwritten")
    assert eintritt["new"] == datetime(2024, 4, 1)
    assert eintritt["adoption"] == "kept"


def test_no_plan_sheet_without_actions_but_empty_plan_has_header(tmp_path: Path) -> None:
    assert load_workbook(write_users(tmp_path / "a.xlsx", USERS)).sheetnames == ["Entra users"]
    ws = load_workbook(write_users(tmp_path / "b.xlsx", USERS, []))["Plan"]
    assert tuple(rows(ws)[0]) == PLAN_COLUMNS
    assert ws.max_row == 1


def test_no_users_still_writes_a_header(tmp_path: Path) -> None:
    ws = load_workbook(write_users(tmp_path / "n.xlsx", []))["Entra users"]
    assert rows(ws) == [["entra_id"]]


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


def test_csv_users_with_bom_sorted_and_typed(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    assert write_users(path, USERS, timezone=ZoneInfo("Europe/Zurich")) == path
    table = read_csv(path)
    header, *body = table
    assert header[:3] == ["entra_id", "userPrincipalName", "displayName"]
    assert [r[0] for r in body] == ["id-anna", "id-max", "id-zora", "id-ghost"]
    anna, max_ = (dict(zip(header, r, strict=True)) for r in body[:2])
    assert max_["displayName"] == "Max Müller-Lüdenscheidt von Hohenzollern-Sigmaringen"
    assert max_["employeeHireDate"] == "2024-04-01"
    assert max_["accountEnabled"] == "TRUE"
    assert anna["accountEnabled"] == "FALSE"
    assert anna["employeeHireDate"] == ""
    assert max_["proxyAddresses"] == '["SMTP:max@firma.ch"]'
    assert not plan_csv_path(path).exists()


def test_csv_formula_like_text_gets_a_quote(tmp_path: Path) -> None:
    users = [{"userPrincipalName": f"u{i}@x", "displayName": t} for i, t in enumerate(INJECTIONS)]
    users.append({"userPrincipalName": "z@x", "displayName": "plain, with comma"})
    path = write_users(tmp_path / "i.csv", users)
    names = [r[1] for r in read_csv(path)[1:]]
    assert names == ["'" + t for t in INJECTIONS] + ["plain, with comma"]
    assert b'"\'=HYPERLINK(""http://x"",""y"")"' in path.read_bytes()


def test_csv_plan_goes_beside_the_users(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    assert write_users(path, USERS, ACTIONS) == path
    plan = tmp_path / "export.plan.csv"
    assert plan_csv_path(path) == plan
    header, *body = read_csv(plan)
    assert tuple(header) == PLAN_COLUMNS
    assert [(r[0], r[2], r[4], r[9]) for r in body] == [
        ("Anna.Beispiel@firma.ch", "user", "", ""),
        ("max.muster@firma.ch", "user", "email", ""),
        ("max.muster@firma.ch", "user", "groups", ""),
        ("max.muster@firma.ch", "person", "vorname", "overwritten"),
        ("max.muster@firma.ch", "person", "eintritt", "kept"),
    ]
    assert read_csv(path)[0][0] == "entra_id"  # the users file holds users only


@pytest.mark.parametrize("name", ["u.xlsx", "u.csv"])
def test_write_is_atomic_and_replaces(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"old")
    write_users(path, USERS, ACTIONS)
    assert path.read_bytes() != b"old"
    expected = {name} | ({"u.plan.csv"} if name.endswith(".csv") else set())
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temp file left behind


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "u.xlsx"
    path.write_bytes(b"old")

    def refuse(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(UsageError, match=r"cannot write .*u\.xlsx: No space left"):
        write_users(path, USERS)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["u.xlsx"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("users.xls", "'.xls' file"),
        ("users.json", "'.json' file"),
        ("users", "without a suffix"),
        ("missing/users.xlsx", "folder .*missing does not exist"),
        ("afile/users.xlsx", "afile is not a folder"),
        ("folder.xlsx", "is a folder"),
    ],
)
def test_bad_paths_fail_before_any_work(tmp_path: Path, name: str, problem: str) -> None:
    (tmp_path / "folder.xlsx").mkdir()
    (tmp_path / "afile").write_text("x")
    path = tmp_path / name
    with pytest.raises(UsageError, match=problem) as err:
        check_export_path(path)
    assert str(path) in str(err.value)
    with pytest.raises(UsageError, match=problem):
        write_users(path, USERS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="not writable"):
        check_export_path(locked / "u.xlsx")


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    check_export_path(tmp_path / "USERS.XLSX")
    ws = load_workbook(write_users(tmp_path / "USERS.XLSX", USERS)).active
    assert isinstance(ws, Worksheet)
    assert ws.title == "Entra users"
    assert read_csv(write_users(tmp_path / "U.CSV", USERS))[0][0] == "entra_id"
