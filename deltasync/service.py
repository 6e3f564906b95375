"""One function per command: builds the clients from the config and runs the engine.

This is the composition root; the CLI only translates arguments and output, and tests call
these same functions with the sandbox's transports injected.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from deltasync.config import Config
from deltasync.eliza.client import DryRunEliza, ElizaClient, Resource
from deltasync.engine import Engine, EngineSettings, RunOptions, RunReport
from deltasync.errors import DeltaSyncError, LeaseHeldError
from deltasync.graph.client import GraphSource
from deltasync.matching import MatchSettings
from deltasync.models import Kind, MirrorObject, Removed
from deltasync.plan import PlanContext, Scope, scope_status, selected_properties
from deltasync.state import StateStore, open_store

Log = Callable[[str], None]
RESOURCE = "users"


@dataclass(frozen=True)
class Seams:
    """Injected transports for tests and the in-process sandbox; None = the real network."""

    graph_transport: httpx.AsyncBaseTransport | None = None
    eliza_transport: httpx.AsyncBaseTransport | None = None
    credential: Any = None


@dataclass(frozen=True)
class SyncFlags:
    """The sync/resync flags that change what is planned (beyond RunOptions)."""

    skip_users: bool = False
    skip_persons: bool = False
    skip_groups: bool = False
    orgunit_sync: bool = False
    assign_to_group: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def plan_context(config: Config, flags: SyncFlags) -> PlanContext:
    """The planner's settings from the config and the command line."""
    today = datetime.now(config.timezone).date()
    adv = config.advanced
    so = config.sync_options
    return PlanContext(
        user_mapping=dict(config.field_mapping.user),
        person_mapping=dict(config.field_mapping.person),
        tz=config.timezone,
        today=today,
        scope=Scope(adv.user_filter, tuple(adv.excluded_domains), tuple(adv.excluded_users)),
        create_users=so.create_users,
        update_users=so.update_users,
        create_persons=so.create_persons,
        update_persons=so.update_persons,
        skip_users=flags.skip_users,
        skip_persons=flags.skip_persons,
        on_disable=config.deprovisioning.on_disable,
        on_delete=config.deprovisioning.on_delete,
        orgunit_sync=flags.orgunit_sync,
        orgunit_mapping=dict(config.orgunit_mapping),
        assign_to_group=flags.assign_to_group
        if flags.assign_to_group is not None
        else config.groups.assign_to_group,
    )


def plan_fingerprint(ctx: PlanContext) -> str:
    """A hash of every setting that changes the desired ELIZA values: a change re-plans all."""
    parts = {
        "user": sorted((k, v.source) for k, v in ctx.user_mapping.items()),
        "person": sorted((k, v.source) for k, v in ctx.person_mapping.items()),
        "filter": ctx.scope.user_filter.source if ctx.scope.user_filter else None,
        "excluded": [sorted(ctx.scope.excluded_domains), sorted(ctx.scope.excluded_users)],
        "options": [
            ctx.create_users,
            ctx.update_users,
            ctx.create_persons,
            ctx.update_persons,
            ctx.on_disable,
            ctx.on_delete,
            ctx.assign_to_group,
            ctx.orgunit_sync,
            ctx.skip_users,  # a skipping run settles objects it only half planned
            ctx.skip_persons,
        ],
        "orgunits": sorted(ctx.orgunit_mapping.items()),
    }
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def engine_settings(config: Config, flags: SyncFlags) -> EngineSettings:
    """Everything the engine applies, derived from config and flags."""
    ctx = plan_context(config, flags)
    return EngineSettings(
        ctx=ctx,
        select=tuple(selected_properties(ctx)),
        plan_fingerprint=plan_fingerprint(ctx),
        matching=MatchSettings(
            hard_match=config.matching.hard_match,
            soft_match=config.matching.soft_match,
            protected_groups=frozenset(config.matching.protected_groups),
        ),
        max_deactivations=config.deprovisioning.max_deactivations,
        max_deactivation_percent=float(config.deprovisioning.max_deactivation_percent),
        concurrency=config.eliza.max_concurrency,
    )


def lease_holder() -> str:
    """Who holds the lease: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def store_for(config: Config) -> Iterator[StateStore]:
    """The state store, migrated, closed afterwards."""
    store = open_store(config.state.url)
    try:
        yield store
    finally:
        store.close()


def run_sync(
    config: Config,
    opts: RunOptions,
    flags: SyncFlags = SyncFlags(),
    *,
    seams: Seams = Seams(),
    log: Log = lambda _m: None,
) -> RunReport:
    """The hourly job (and resync): pull, plan, push, under the lease, recorded as a run."""
    settings = engine_settings(config, flags)
    with store_for(config) as store:
        holder = lease_holder()
        if not store.acquire_lease(holder):
            info = store.lease_info()
            raise LeaseHeldError(f"another run holds the lease ({info}); nothing was done")
        try:
            run_id = store.start_run(opts.command, opts.dry_run)
            report = asyncio.run(_run(config, store, settings, opts, seams, holder, run_id, log))
            keep_dirty = flags.skip_users or flags.skip_persons
            if keep_dirty:
                report.warnings.append(
                    "--skip-users/--skip-mitarbeitende: the next run without them "
                    "plans every object again"
                )
            return report
        finally:
            store.release_lease(holder)


async def _run(
    config: Config,
    store: StateStore,
    settings: EngineSettings,
    opts: RunOptions,
    seams: Seams,
    holder: str,
    run_id: int,
    log: Log,
) -> RunReport:
    source = GraphSource.from_config(
        config.entra, transport=seams.graph_transport, credential=seams.credential
    )
    client = ElizaClient.from_config(config.eliza, transport=seams.eliza_transport)
    target: Any = DryRunEliza(client) if opts.dry_run else client
    engine = Engine(store, source, target, settings, resources=Resource, holder=holder, log=log)
    engine.run_id = run_id
    report: RunReport | None = None
    try:
        report = await engine.run(opts)
        return report
    except Exception as exc:
        report = engine.report or RunReport(opts.command, opts.dry_run)
        report.error = (
            str(exc) if isinstance(exc, DeltaSyncError) else f"{type(exc).__name__}: {exc}"
        )
        raise
    finally:
        if report is None:
            report = engine.report
        if report is not None:
            report.run_id = run_id
            status = report.status if report.error is None else "failed"
            store.finish_run(run_id, status, report.exit_code, _stored_report(report))
        else:
            store.finish_run(run_id, "failed", 1, {"error": "run did not start"})
        await source.aclose()
        await client.aclose()


def _stored_report(report: RunReport) -> dict[str, Any]:
    """The run report as stored: everything but the per-action list of a large run."""
    data = report.as_dict()
    if len(data["actions"]) > 500:
        data["actions_truncated"] = len(data["actions"])
        data["actions"] = data["actions"][:500]
    return data


# ------------------------------------------------------------------ state inspection
def _age(when: datetime | None, now: datetime) -> str | None:
    if when is None:
        return None
    seconds = int((now - when).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}min"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def state_summary(config: Config) -> dict[str, Any]:
    """Tokens and their age, counts, last runs, pending failures, held deactivations."""
    now = datetime.now(UTC)
    with store_for(config) as store:
        cursor = store.get_cursor(RESOURCE)
        runs = store.runs(5)
        failures = store.failures()
        last = runs[0] if runs else None
        held = list(last.report.get("held", [])) if last is not None else []
        return {
            "state_url": config.state.redacted_url,
            "cursors": [
                {
                    "resource": RESOURCE,
                    "has_delta_token": bool(cursor and cursor.delta_link),
                    "round_in_progress": cursor.round_kind.value
                    if cursor and cursor.next_link and cursor.round_kind
                    else None,
                    "last_round_completed_at": _iso(cursor.delta_committed_at if cursor else None),
                    "token_age": _age(cursor.delta_committed_at if cursor else None, now),
                    "last_full_round_at": _iso(cursor.full_completed_at if cursor else None),
                }
            ],
            "mirror": {"users": store.count_objects(RESOURCE)},
            "links": {
                kind.value: {
                    "active": store.count_links(kind, status="active"),
                    "deactivated": store.count_links(kind, status="deactivated"),
                }
                for kind in Kind
            },
            "failures": {
                "errors": sum(1 for f in failures if f.category == "error"),
                "conflicts": sum(1 for f in failures if f.category == "conflict"),
            },
            "held_deactivations": held,
            "last_runs": [_run_json(r) for r in runs],
            "lease": store.lease_info(),
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _run_json(r: Any) -> dict[str, Any]:
    counts = r.report.get("counts", {}) if r.report else {}
    return {
        "id": r.id,
        "command": r.command,
        "dry_run": r.dry_run,
        "started_at": _iso(r.started_at),
        "finished_at": _iso(r.finished_at),
        "status": r.status,
        "exit_code": r.exit_code,
        "round": (r.report or {}).get("round", {}).get("kind"),
        "counts": counts,
        "requests": (r.report or {}).get("requests", {}),
        "failures": len((r.report or {}).get("failures", [])),
        "conflicts": len((r.report or {}).get("conflicts", [])),
        "held": len((r.report or {}).get("held", [])),
        "error": (r.report or {}).get("error"),
    }


def state_runs(config: Config, limit: int = 20) -> list[dict[str, Any]]:
    """The last runs, newest first."""
    with store_for(config) as store:
        return [_run_json(r) for r in store.runs(limit)]


def state_failures(config: Config) -> list[dict[str, Any]]:
    """Objects whose push failed or conflicted, and when each is tried next."""
    with store_for(config) as store:
        out = []
        for f in store.failures():
            obj = store.get_object(f.entra_id)
            out.append(
                {
                    "entra_id": f.entra_id,
                    "label": (obj.data.get("userPrincipalName") if obj else None) or f.entra_id,
                    "kind": f.kind.value,
                    "action": f.action,
                    "category": f.category,
                    "message": f.message,
                    "detail": dict(f.detail),
                    "attempts": f.attempts,
                    "first_failed_at": _iso(f.first_failed_at),
                    "last_failed_at": _iso(f.last_failed_at),
                    "next_retry_at": _iso(f.next_retry_at),
                }
            )
        return out


def state_user(config: Config, query: str) -> list[dict[str, Any]]:
    """One person: mirror, scope, links with how they were matched, failures, history."""
    ctx = plan_context(config, SyncFlags())
    with store_for(config) as store:
        objects: list[MirrorObject] = list(store.find_objects(query))
        found_by = {o.id: "Entra id, UPN or mail" for o in objects}
        if not objects and query.isdigit():
            for kind in (Kind.USER, Kind.PERSON):
                link = store.link_by_eliza_id(kind, int(query))
                if link is not None:
                    obj = store.get_object(link.entra_id)
                    if obj is not None and obj.id not in found_by:
                        objects.append(obj)
                        found_by[obj.id] = f"ELIZA {kind.value} #{query}"
        result = []
        for obj in objects:
            status, _ = scope_status(obj, ctx.scope)
            links = store.links_for([obj.id]).get(obj.id, {})
            result.append(
                {
                    "entra_id": obj.id,
                    "found_by": found_by.get(obj.id),
                    "userPrincipalName": obj.data.get("userPrincipalName"),
                    "mail": obj.data.get("mail"),
                    "scope": status,
                    "removed": obj.removed.value if isinstance(obj.removed, Removed) else None,
                    "version": obj.version,
                    "settled_version": obj.settled_version,
                    "pending": obj.version > obj.settled_version,
                    "mirror": dict(obj.data),
                    "links": {
                        kind.value: {
                            "eliza_id": lk.eliza_id,
                            "matched_by": lk.matched_by,
                            "matched_at": _iso(lk.matched_at),
                            "status": lk.status,
                            "pushed": dict(lk.pushed),
                            "pushed_version": lk.pushed_version,
                            "saved": dict(lk.saved),
                            "kept": dict(lk.kept),
                        }
                        for kind, lk in sorted(
                            links.items(), key=lambda kv: list(Kind).index(kv[0])
                        )
                    },
                    "failures": [
                        {
                            "kind": f.kind.value,
                            "category": f.category,
                            "message": f.message,
                            "attempts": f.attempts,
                            "next_retry_at": _iso(f.next_retry_at),
                        }
                        for f in store.failures_for(obj.id)
                    ],
                    "history": _history(store.journal_for(obj.id, 50)),
                }
            )
        return result


def _history(entries: Sequence[Any]) -> list[dict[str, Any]]:
    """The journal for people: a "creating" marker only shows when its create never finished."""
    finished = {e.kind for e in entries if e.action in ("create", "match")}
    return [
        {
            "at": _iso(e.at),
            "run_id": e.run_id,
            "kind": e.kind.value,
            "action": "create (unconfirmed)" if e.action == "creating" else e.action,
            "eliza_id": e.eliza_id,
            "changes": dict(e.changes),
        }
        for e in entries
        if not (e.action == "creating" and e.kind in finished)
    ]


def state_reset(config: Config, resource: str) -> list[str]:
    """Forget delta tokens so the next run reads everything; the mirror and links stay."""
    with store_for(config) as store:
        names = [RESOURCE] if resource in ("users", "all") else []
        if resource in ("groups", "all"):
            names.append("groups")
        for name in names:
            store.reset_cursor(name)
        return names


def db_upgrade(config: Config) -> tuple[str | None, str | None]:
    """Apply the state database migrations."""
    from deltasync.state import upgrade

    result: tuple[str | None, str | None] = upgrade(config.state.url)
    return result


def mirrored_users(config: Config) -> list[dict[str, Any]]:
    """The mirrored Entra users with their scope and links, for the Excel export."""
    ctx = plan_context(config, SyncFlags())
    with store_for(config) as store:
        objects = store.all_objects(RESOURCE)
        links = store.links_for([o.id for o in objects])
        rows = []
        for obj in objects:
            status, _ = scope_status(obj, ctx.scope)
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
                    "scope": status,
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
            changes = a["changes"] or {"": [None, None]}
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
