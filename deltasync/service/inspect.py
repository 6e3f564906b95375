"""The ``state`` commands and ``db upgrade``: what the state database holds, for people.

Reads only the state database: no Graph, no ELIZA.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from deltasync.config import Config
from deltasync.errors import DeltaSyncError
from deltasync.models import Kind, MirrorObject, Removed
from deltasync.service.settings import (
    GROUPS,
    USERS,
    GroupView,
    SyncFlags,
    build_view,
    configured_groups,
    group_label,
    group_status,
    plan_context,
    scope_label,
)
from deltasync.service.store import store_for


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
        cursor = store.get_cursor(USERS)
        groups_cursor = store.get_cursor(GROUPS)
        runs = store.runs(5)
        failures = store.failures()
        last = runs[0] if runs else None
        held = list(last.report.get("held", [])) if last is not None else []
        return {
            "state_url": config.state.redacted_url,
            "cursors": [
                {
                    "resource": USERS,
                    "has_delta_token": bool(cursor and cursor.delta_link),
                    "round_in_progress": cursor.round_kind.value
                    if cursor and cursor.next_link and cursor.round_kind
                    else None,
                    "last_round_completed_at": _iso(cursor.delta_committed_at if cursor else None),
                    "token_age": _age(cursor.delta_committed_at if cursor else None, now),
                    "last_full_round_at": _iso(cursor.full_completed_at if cursor else None),
                },
                *([_cursor_json(GROUPS, groups_cursor, now)] if groups_cursor else []),
            ],
            "mirror": {"users": store.count_objects(USERS), "groups": store.count_objects(GROUPS)},
            "groups": _groups_summary(store, config),
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
            "hints": _hints(config, store),
            "history": _history_since(store),
        }


def _hints(config: Config, store: Any) -> list[str]:
    """Advice a run gave once and that still applies (soft matching after the adoption)."""
    from deltasync.matching import RECOMMENDATION, SOFT_MATCH_HINT

    given = config.matching.soft_match and store.get_meta(SOFT_MATCH_HINT)
    return [RECOMMENDATION] if given else []


def soft_match_advice(config: Config) -> str | None:
    """The advice to set ``matching.soft_match: false`` when soft matching is on and every
    in-scope user is linked (after an adoption), else None; for ``check``."""
    from deltasync.engine.adoption import all_adopted
    from deltasync.matching import RECOMMENDATION
    from deltasync.service.settings import engine_settings
    from deltasync.state import open_current_store

    try:
        store = open_current_store(config.state.url)
        if store is None:
            return None  # no state yet, or one the next sync migrates: check changes nothing
        try:
            done = all_adopted(store, engine_settings(config, SyncFlags()))
        finally:
            store.close()
    except DeltaSyncError:
        return None  # the state database has its own line in check
    return RECOMMENDATION if done else None


def _history_since(store: Any) -> dict[str, Any] | None:
    """Since when this database remembers runs; None for one older than that record."""
    created = store.created()
    if created is None:
        return None
    created_at, reason = created
    return {
        "since": created_at,
        "created_after": reason,
        "first_run_id": store.first_run_id(),
        "note": f"this state database was created at {created_at[:19]} after {reason}; "
        "the runs and journal before it were lost with the old file",
    }


def _cursor_json(resource: str, cursor: Any, now: datetime) -> dict[str, Any]:
    return {
        "resource": resource,
        "has_delta_token": bool(cursor.delta_link),
        "round_in_progress": cursor.round_kind.value
        if cursor.next_link and cursor.round_kind
        else None,
        "last_round_completed_at": _iso(cursor.delta_committed_at),
        "token_age": _age(cursor.delta_committed_at, now),
        "last_full_round_at": _iso(cursor.full_completed_at),
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def next_try(when: datetime, now: datetime) -> str:
    """When a failed object is tried again, for people: a first failure on the next run."""
    if when <= now:
        return "the next run"
    return f"the first run after {when.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC"


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
        "undo_of": (r.report or {}).get("undo_of"),
    }


def state_runs(config: Config, limit: int = 20) -> list[dict[str, Any]]:
    """The last runs, newest first."""
    from deltasync.plan.undo import undone_by

    with store_for(config) as store:
        runs = store.runs(limit)
        undone = undone_by(runs)
        return [{**_run_json(r), "undone_by": undone.get(r.id)} for r in runs]


def state_failures(config: Config) -> list[dict[str, Any]]:
    """Objects whose push failed or conflicted, and when each is tried next."""
    now = datetime.now(UTC)
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
                    "next_try": next_try(f.next_retry_at, now),
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
            links = store.links_for([obj.id]).get(obj.id, {})
            result.append(
                {
                    "entra_id": obj.id,
                    "found_by": found_by.get(obj.id),
                    "userPrincipalName": obj.data.get("userPrincipalName"),
                    "mail": obj.data.get("mail"),
                    "scope": scope_label(obj, ctx),
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
                            "next_try": next_try(f.next_retry_at, datetime.now(UTC)),
                        }
                        for f in store.failures_for(obj.id)
                    ],
                    "history": _history(store.journal_for(obj.id, 50)),
                    "groups": _user_groups(store, config, obj.id),
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
        names = [USERS] if resource in ("users", "all") else []
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


def _group_view(store: Any, config: Config) -> tuple[GroupView, list[MirrorObject]]:
    settings = configured_groups(config)
    groups = store.all_objects(GROUPS)
    links = {lk.entra_id: lk for lk in store.all_links(Kind.GROUP)}
    view = build_view(settings.nested, groups, links, store.group_edges(), settings)
    return view, groups


def state_groups(config: Config) -> list[dict[str, Any]]:
    """Every mirrored Entra group: in scope or why not, its link, its member counts."""
    settings = configured_groups(config)
    with store_for(config) as store:
        groups = store.all_objects(GROUPS)
        links = {lk.entra_id: lk for lk in store.all_links(Kind.GROUP)}
        counts = store.member_counts()
        rows = []
        for g in groups:
            lk = links.get(g.id)
            rows.append(
                {
                    "entra_id": g.id,
                    "name": group_label(g),
                    "scope": group_status(g, settings),
                    "link": None
                    if lk is None
                    else {
                        "eliza_id": lk.eliza_id,
                        "status": lk.status,
                        "matched_by": lk.matched_by,
                        "matched_at": _iso(lk.matched_at),
                    },
                    "members": dict(counts.get(g.id, {})),
                    "pending": g.version > g.settled_version,
                }
            )
        return sorted(rows, key=lambda r: (str(r["name"]).casefold(), r["entra_id"]))


def _groups_summary(store: Any, config: Config) -> dict[str, Any]:
    settings = configured_groups(config)
    groups = store.all_objects(GROUPS)
    return {
        "sync_groups": config.sync_options.sync_groups,
        "mirrored": len(groups),
        "in_scope": sum(1 for g in groups if group_status(g, settings) == "active"),
        "linked": store.count_links(Kind.GROUP, status="active"),
        "memberships": store.membership_count(),
    }


def _user_groups(store: Any, config: Config, entra_id: str) -> list[dict[str, Any]]:
    """The user's managed groups and why: directly, or through which nested group."""
    view, _ = _group_view(store, config)
    direct = store.direct_groups([entra_id]).get(entra_id, set())
    return [
        {
            "entra_id": gid,
            "name": view.names.get(gid, gid),
            "eliza_id": view.eliza[gid],
            "via": None if via is None else view.names.get(via, via),
        }
        for gid, via in sorted(
            view.memberships(direct).items(), key=lambda kv: view.names.get(kv[0], kv[0])
        )
    ]
