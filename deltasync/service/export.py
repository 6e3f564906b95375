"""``export-excel``: the mirrored users (and a run's plan, field by field) as an .xlsx file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltasync.config import Config
from deltasync.models import Kind
from deltasync.service.settings import USERS, SyncFlags, plan_context, scope_label
from deltasync.service.store import store_for

if TYPE_CHECKING:
    from deltasync.engine import RunReport


def mirrored_users(config: Config) -> list[dict[str, Any]]:
    """The mirrored Entra users with their scope and links, for the Excel export."""
    ctx = plan_context(config, SyncFlags())
    with store_for(config) as store:
        objects = store.all_objects(USERS)
        links = store.links_for([o.id for o in objects])
        rows = []
        for obj in objects:
            lk = links.get(obj.id, {})
            rows.append(
                {
                    "entra_id": obj.id,
                    **{
                        k: obj.data.get(k)
                        for k in (
                            "userPrincipalName",
                            "mail",
                            "givenName",
                            "surname",
                            "displayName",
                            "jobTitle",
                            "department",
                            "companyName",
                            "mobilePhone",
                            "accountEnabled",
                            "employeeHireDate",
                        )
                    },
                    "scope": scope_label(obj, ctx),
                    "eliza_user": lk[Kind.USER].eliza_id if Kind.USER in lk else None,
                    "eliza_person": lk[Kind.PERSON].eliza_id if Kind.PERSON in lk else None,
                    "matched_by": lk[Kind.USER].matched_by if Kind.USER in lk else None,
                }
            )
        return rows


def export_excel(path: Path, users: Sequence[Mapping[str, Any]], report: RunReport | None) -> Path:
    """Write the mirrored users (and a run's plan, field by field) to an .xlsx file."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Entra users"
    headers = list(users[0].keys()) if users else ["entra_id"]
    ws.append(headers)
    for row in users:
        ws.append([_cell(row.get(h)) for h in headers])
    if report is not None:
        plan = wb.create_sheet("Plan")
        plan.append(
            ["user", "entra_id", "kind", "action", "field", "old", "new", "reason", "result"]
        )
        for a in report.actions:
            changes = a["changes"] or ({} if a.get("groups") else {"": [None, None]})
            for name, (old, new) in changes.items():
                plan.append(
                    [
                        a["label"],
                        a["entra_id"],
                        a["kind"],
                        a["op"],
                        name,
                        _cell(old),
                        _cell(new),
                        a["reason"],
                        a["result"],
                    ]
                )
            for entry in a.get("groups") or ():  # "+name" / "−name": one row per group
                sign, group = entry[:1], entry[1:]
                old, new = (None, group) if sign == "+" else (group, None)
                row = [a["label"], a["entra_id"], a["kind"], a["op"], f"{sign}group", old, new]
                plan.append([*row, a["reason"], a["result"]])
    for sheet in wb.worksheets:
        sheet.freeze_panes = "A2"
        for i, _ in enumerate(next(sheet.iter_rows(max_row=1)), start=1):
            sheet.column_dimensions[get_column_letter(i)].width = 22
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value
