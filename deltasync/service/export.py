"""``export-excel``, ``--export-excel`` and ``--metrics-file``: the files a run leaves for people
and for monitoring, written by :mod:`deltasync.export`."""

from __future__ import annotations

from collections.abc import Mapping
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


def check_output_paths(excel: Path | None = None, metrics: Path | None = None) -> None:
    """Raise UsageError for an ``--export-excel`` or ``--metrics-file`` path that cannot be
    written; called before a run starts, so a typo costs a second, not an hour."""
    from deltasync.export.paths import check_export_path, check_metrics_path

    if excel is not None:
        check_export_path(excel)
    if metrics is not None:
        check_metrics_path(metrics)


def export_excel(config: Config, path: Path, report: RunReport | None = None) -> list[Path]:
    """Write the mirrored users (and a run's plan, one row per field change) to ``path``:
    .xlsx with two sheets, or .csv (the plan then beside it). Returns the files written."""
    from deltasync.export.excel import plan_csv_path, write_users

    actions = None if report is None else list(report.actions.every())
    write_users(path, mirrored_users(config), actions, timezone=config.timezone)
    if actions is not None and path.suffix.lower() == ".csv":
        return [path, plan_csv_path(path)]
    return [path]


def write_metrics(path: Path, report: Mapping[str, Any]) -> None:
    """The run's figures (``RunReport.as_dict()``) as a Prometheus text file, atomically."""
    from deltasync.export.metrics import write_metrics as write

    write(path, report)
