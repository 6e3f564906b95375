"""One run: pull Graph deltas into the mirror, plan, push to ELIZA. Owns the commit order.

The delta cursor only ever describes what is in the mirror, and a link only what ELIZA
accepted; both are committed right after the fact they describe, so a crash at any instant
leaves a state that the next run converges from.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from deltasync.errors import (
    ConfigError,
    ConflictError,
    DeltaTokenExpiredError,
    LeaseHeldError,
    ObjectRejectedError,
    ServiceUnavailableError,
)
from deltasync.graph.delta import fingerprint
from deltasync.mapping import ExpressionError
from deltasync.matching import (
    Match,
    MatchSettings,
    decide_person,
    decide_user,
    protection,
    soft_keys,
)
from deltasync.models import DeltaPage, Kind, Link, MirrorObject, RoundKind
from deltasync.planner import (
    PROTECTED,
    Action,
    AddToGroups,
    ObjectPlan,
    Op,
    Plan,
    PlanContext,
    Ref,
    apply_threshold,
    diff,
    plan_object,
)

RESOURCE = "users"
LEASE_RENEW_S = 30.0
MAX_CONSECUTIVE_OUTAGES = 5
PREFETCH_THRESHOLD = 20  # unlinked objects from which one list read beats per-object lookups


class Source(Protocol):
    """What the engine needs from the Graph client."""

    @property
    def requests(self) -> int: ...

    def initial_url(self, resource: str, select: Sequence[str]) -> str: ...

    async def fetch_page(self, url: str, *, minimal: bool) -> DeltaPage: ...


class Target(Protocol):
    """What the engine needs from the ELIZA client (or its dry-run stand-in)."""

    @property
    def requests(self) -> int: ...

    @property
    def writes(self) -> int: ...

    async def find(self, resource: Any, **filters: Any) -> list[dict[str, Any]]: ...

    async def list_all(self, resource: Any, **filters: Any) -> list[dict[str, Any]]: ...

    async def get(self, resource: Any, id: int) -> dict[str, Any] | None: ...

    async def create(self, resource: Any, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    async def update(self, resource: Any, id: int, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    async def delete(self, resource: Any, id: int) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked of this run."""

    command: str = "sync"
    dry_run: bool = False
    full: bool = False  # resync: ignore the stored delta link
    verify_target: bool = False
    limit_users: int | None = None
    allow_deletes: bool = False
    retry_failed: bool = False  # retry failed objects now instead of at their backoff time


@dataclass(frozen=True)
class EngineSettings:
    """Settings the engine applies, built from the config by the service layer."""

    ctx: PlanContext
    select: tuple[str, ...]
    plan_fingerprint: str
    matching: MatchSettings = field(default_factory=MatchSettings)
    max_deactivations: int = 25
    max_deactivation_percent: float = 10.0
    concurrency: int = 8


@dataclass
class RunReport:
    """What one run did; rendered for people by the CLI and as JSON with --json."""

    command: str
    dry_run: bool
    run_id: int | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    round_kind: str | None = None
    full_round_reason: str | None = None
    round_complete: bool = False
    pages: int = 0
    objects_seen: int = 0
    objects_changed: int = 0
    planned_objects: int = 0
    deferred_objects: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    threshold: str | None = None
    warnings: list[str] = field(default_factory=list)
    graph_requests: int = 0
    eliza_requests: int = 0
    eliza_writes: int = 0
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def exit_code(self) -> int:
        """0, 3 (objects failed or conflicted) or 4 (deactivations held); a dry run is 0."""
        if self.error is not None:
            return 1
        if self.dry_run:
            return 0
        if self.held:
            return 4
        if self.failures or self.conflicts:
            return 3
        return 0

    @property
    def status(self) -> str:
        """A one-word summary for the runs table."""
        return {0: "ok", 1: "failed", 3: "partial", 4: "held"}[self.exit_code]

    def counts(self) -> dict[str, dict[str, int]]:
        """Applied (or, in a dry run, planned) actions by kind and operation."""
        result: dict[str, dict[str, int]] = {}
        for a in self.actions:
            if a["result"] in ("ok", "planned"):
                kind = result.setdefault(a["kind"], {})
                kind[a["op"]] = kind.get(a["op"], 0) + 1
        return result

    def as_dict(self) -> dict[str, Any]:
        """The JSON run report."""
        return {
            "run_id": self.run_id,
            "command": self.command,
            "dry_run": self.dry_run,
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "round": {
                "kind": self.round_kind,
                "full_round_reason": self.full_round_reason,
                "complete": self.round_complete,
                "pages": self.pages,
                "objects_seen": self.objects_seen,
                "objects_changed": self.objects_changed,
            },
            "requests": {
                "graph": self.graph_requests,
                "eliza": self.eliza_requests,
                "eliza_writes": self.eliza_writes,
            },
            "planned_objects": self.planned_objects,
            "deferred_objects": self.deferred_objects,
            "counts": self.counts(),
            "actions": self.actions,
            "failures": self.failures,
            "conflicts": self.conflicts,
            "held": self.held,
            "threshold": self.threshold,
            "warnings": self.warnings,
            "error": self.error,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def _json_value(value: Any) -> Any:
    if isinstance(value, Ref):
        return f"<{value.kind.value} of {value.entra_id}>"
    if isinstance(value, AddToGroups):
        return [f"+{i}" for i in value.ids]
    return value


def _real_id(eliza_id: int | None) -> int | None:
    """A dry run's stand-in objects have negative ids; reports show no id for them."""
    return eliza_id if eliza_id is not None and eliza_id > 0 else None


def _changes_json(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    return {k: [_json_value(old), _json_value(new)] for k, (old, new) in changes.items()}


#: The fields matching looks ELIZA users and persons up by (the prefetched rows are indexed).
_DIRECTORY_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.USER: ("remote_key", "username", "email"),
    Kind.PERSON: ("remote_key", "user", "email"),
}


def _decided(decision: Match) -> tuple[Mapping[str, Any] | None, str]:
    """The matched ELIZA object and how it was matched; a conflict raises."""
    if decision.outcome == "conflict":
        candidates = [dict(c) for c in decision.candidates]
        raise ConflictError(decision.reason or "conflict", status=None, body=candidates)
    if decision.outcome == "match":
        return decision.target, decision.matched_by or "hard"
    return None, "created"


class Directory:
    """Lookups of existing ELIZA users and persons for matching: live, or from one list read.

    Before a big first sync, reading the lists once costs a handful of requests where
    per-object lookups would cost several per Entra user. The prefetched rows are indexed
    by the fields matching looks up, so each lookup is O(1), not a scan of the whole list.
    """

    def __init__(self, target: Target, resources: Any) -> None:
        self.target = target
        self.res = resources
        self.prefetched = False
        self.rows: dict[Kind, dict[Any, dict[str, Any]]] = {Kind.USER: {}, Kind.PERSON: {}}
        self._index: dict[tuple[Kind, str, Any], dict[Any, dict[str, Any]]] = {}

    @staticmethod
    def _norm(kind: Kind, name: str, value: Any) -> Any:
        if kind == Kind.USER and name in ("username", "email"):
            return str(value or "").lower()
        return value

    def _add(self, kind: Kind, row: dict[str, Any]) -> None:
        self.rows[kind][row.get("id")] = row
        for name in _DIRECTORY_FIELDS[kind]:
            key = (kind, name, self._norm(kind, name, row.get(name)))
            self._index.setdefault(key, {})[row.get("id")] = row

    def _drop(self, kind: Kind, oid: Any) -> None:
        row = self.rows[kind].pop(oid, None)
        if row is None:
            return
        for name in _DIRECTORY_FIELDS[kind]:
            key = (kind, name, self._norm(kind, name, row.get(name)))
            self._index.get(key, {}).pop(oid, None)

    async def prefetch(self) -> None:
        """Read every user and person once."""
        for kind, res in ((Kind.USER, self.res.USER), (Kind.PERSON, self.res.PERSON)):
            for row in await self.target.list_all(res):
                self._add(kind, dict(row))
        self.prefetched = True

    def remember(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        """Keep the prefetched lists current after a write."""
        if not self.prefetched or kind not in _DIRECTORY_FIELDS:
            return
        self._drop(kind, obj.get("id"))
        self._add(kind, dict(obj))

    def _lookup(self, kind: Kind, field_name: str, value: Any) -> list[dict[str, Any]]:
        if field_name in _DIRECTORY_FIELDS[kind]:
            key = (kind, field_name, self._norm(kind, field_name, value))
            return list(self._index.get(key, {}).values())
        norm = self._norm(kind, field_name, value)
        return [
            r
            for r in self.rows[kind].values()
            if self._norm(kind, field_name, r.get(field_name)) == norm
        ]

    async def users_by(self, field_name: str, value: str) -> list[dict[str, Any]]:
        """Users whose field equals value (username and email case-insensitively)."""
        if not self.prefetched:
            return await self.target.find(self.res.USER, **{field_name: value})
        return self._lookup(Kind.USER, field_name, value)

    async def persons_by(self, field_name: str, value: Any) -> list[dict[str, Any]]:
        """Persons whose field equals value exactly."""
        if not self.prefetched:
            return await self.target.find(self.res.PERSON, **{field_name: value})
        return self._lookup(Kind.PERSON, field_name, value)


class Engine:
    """Runs pull → plan → push for one resource against one store, source and target."""

    def __init__(
        self,
        store: Any,
        source: Source,
        target: Target,
        settings: EngineSettings,
        *,
        resources: Any,
        holder: str,
        log: Callable[[str], None] = lambda _msg: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.source = source
        self.target = target
        self.settings = settings
        self.res = resources
        self.holder = holder
        self.log = log
        self.now = now
        self._last_renew = time.monotonic()
        self.ids: dict[tuple[str, Kind], int] = {}
        self.links: dict[str, dict[Kind, Link]] = {}
        self.dry_run = False
        self.run_id: int | None = None
        self.report: RunReport | None = None
        self._outages = 0
        self._objects: dict[str, MirrorObject] = {}
        self._failed: set[str] = set()  # Entra ids with a recorded failure
        self._fingerprint_current = False
        self._protected: dict[str, str] = {}  # Entra id -> why its linked account is off limits
        self._directory = Directory(target, resources)

    # ----------------------------------------------------------------- run
    async def run(self, opts: RunOptions) -> RunReport:
        """One whole run; the caller holds the lease and records the run."""
        started = time.monotonic()
        self.dry_run = opts.dry_run
        report = self.report = RunReport(opts.command, opts.dry_run, run_id=self.run_id)
        graph0, eliza0, writes0 = self.source.requests, self.target.requests, self.target.writes
        try:
            mark = time.monotonic()
            await self._pull(opts, report)
            report.timings["pull"] = time.monotonic() - mark
            mark = time.monotonic()
            plan = await self._plan(opts, report)
            report.timings["plan"] = time.monotonic() - mark
            mark = time.monotonic()
            await self._push(plan, report)
            report.timings["push"] = time.monotonic() - mark
        finally:
            order = {Kind.USER.value: 0, Kind.PERSON.value: 1, Kind.MEMBERSHIP.value: 2}
            report.actions.sort(key=lambda a: (str(a["label"]).lower(), order.get(a["kind"], 3)))
            report.graph_requests = self.source.requests - graph0
            report.eliza_requests = self.target.requests - eliza0
            report.eliza_writes = self.target.writes - writes0
            report.duration_s = time.monotonic() - started
        return report

    def _renew_lease(self) -> None:
        if time.monotonic() - self._last_renew >= LEASE_RENEW_S:
            if not self.store.renew_lease(self.holder):
                raise LeaseHeldError(
                    "this run lost its lease (it stalled for over two minutes and another run "
                    "took over); it stops here, the other run carries on"
                )
            self._last_renew = time.monotonic()

    # ---------------------------------------------------------------- pull
    async def _pull(self, opts: RunOptions, report: RunReport) -> None:
        select = list(self.settings.select)
        fp = fingerprint(select)
        cursor = self.store.get_cursor(RESOURCE)
        reason: str | None = None
        if opts.full:
            reason = "resync asked for a full read"
        elif cursor is None or (cursor.delta_link is None and cursor.next_link is None):
            reason = "no delta token yet"
        elif cursor.select_fingerprint != fp:
            reason = "the selected Graph properties changed"
        if reason is None and cursor is not None and cursor.next_link:
            kind = cursor.round_kind or RoundKind.INCREMENTAL
            url = cursor.next_link
            self.log(f"resuming the unfinished {kind.value} round")
        elif reason is None and cursor is not None and cursor.delta_link:
            kind = RoundKind.INCREMENTAL
            url = cursor.delta_link
            self.store.begin_round(RESOURCE, kind, fp, url)
        else:
            kind, url = self._begin_full(select, fp, reason or "", report)
        try:
            await self._read_round(url, kind, report)
        except DeltaTokenExpiredError as exc:
            if (
                kind == RoundKind.FULL
                and report.pages == 0
                and url == self.source.initial_url(RESOURCE, select)
            ):
                raise
            why = f"Graph no longer accepts the delta token ({exc}); reading everything again"
            self.log(why)
            report.warnings.append(why)
            kind, url = self._begin_full(select, fp, "the delta token expired", report)
            await self._read_round(url, kind, report)

    def _begin_full(
        self, select: list[str], fp: str, reason: str, report: RunReport
    ) -> tuple[RoundKind, str]:
        url = self.source.initial_url(RESOURCE, select)
        self.store.begin_round(RESOURCE, RoundKind.FULL, fp, url)
        report.full_round_reason = reason
        self.log(f"full round: {reason}")
        return RoundKind.FULL, url

    async def _read_round(self, url: str, kind: RoundKind, report: RunReport) -> None:
        report.round_kind = kind.value
        while True:
            page = await self.source.fetch_page(url, minimal=kind == RoundKind.INCREMENTAL)
            stats = self.store.apply_page(RESOURCE, page, replace=kind == RoundKind.FULL)
            report.pages += 1
            report.objects_seen += stats.seen
            report.objects_changed += stats.changed
            self._renew_lease()
            if report.pages % 10 == 0:
                self.log(f"read {report.pages} pages, {report.objects_seen} objects")
            if page.delta_link is not None:
                report.round_complete = True
                return
            assert page.next_link is not None
            url = page.next_link

    # ---------------------------------------------------------------- plan
    async def _plan(self, opts: RunOptions, report: RunReport) -> Plan:
        self._fingerprint_current = (
            self.store.get_meta("plan_fingerprint") == self.settings.plan_fingerprint
        )
        everything = opts.verify_target or not self._fingerprint_current
        due = datetime.max.replace(tzinfo=UTC) if opts.retry_failed else self.now()
        objects = self.store.dirty_objects(RESOURCE, due, everything=everything)
        if not objects:
            return Plan(())  # nothing dirty: no further reads (the idle hourly run)
        self._failed = {f.entra_id for f in self.store.failures()}
        self.links = {k: dict(v) for k, v in self.store.links_for([o.id for o in objects]).items()}
        person_links = self.store.all_links(Kind.PERSON)
        self.ids = {(lk.entra_id, lk.kind): lk.eliza_id for lk in person_links}
        for entra_id, kinds in self.links.items():
            for kind, lk in kinds.items():
                self.ids[(entra_id, kind)] = lk.eliza_id
        if opts.verify_target:
            await self._verify_target(report)
        ctx = self._ctx()
        plans = []
        for o in objects:
            if o.id in self._protected:
                self._refuse_protected(o, report)
                continue
            try:
                plans.append(plan_object(o, self.links.get(o.id, {}), ctx))
            except ExpressionError as exc:
                self._fail_planning(o, exc, report)
        self._objects = {o.id: o for o in objects}
        linked_users = self.store.count_links(Kind.USER, status="active")
        plan = apply_threshold(
            plans,
            linked_users=linked_users,
            max_count=self.settings.max_deactivations,
            max_percent=self.settings.max_deactivation_percent,
            allow=opts.allow_deletes,
        )
        if plan.held:
            report.threshold = plan.threshold_reason
            for held in plan.held:
                report.held.append(
                    {"entra_id": held.entra_id, "label": held.label, "status": held.status}
                )
                for a in held.actions:
                    if a.deprovisions:
                        report.actions.append(self._action_json(a, "held"))
            self.log(f"deactivations held: {plan.threshold_reason}")
        notes = Counter(n for p in plan.objects for n in p.notes)
        for note, count in sorted(notes.items()):
            report.warnings.append(f"{note} ({count} user{'s' if count != 1 else ''})")
        with_actions = [p for p in plan.objects if p.actions]
        report.planned_objects = len(with_actions)
        if opts.limit_users is not None and len(with_actions) > opts.limit_users:
            keep = {p.entra_id for p in with_actions[: opts.limit_users]}
            report.deferred_objects = len(with_actions) - opts.limit_users
            plan = replace(
                plan, objects=tuple(p for p in plan.objects if p.entra_id in keep or not p.actions)
            )
            self.log(f"--limit-users: {report.deferred_objects} objects wait for later runs")
        return plan

    async def _verify_target(self, report: RunReport) -> None:
        """Compare every link with what ELIZA holds now, so drift made by hand gets repaired.

        The planner diffs against ``pushed``; replacing it with ELIZA's current values turns
        every hand-made change of a mapped field into an update. A linked object that is gone
        from ELIZA loses its link and is created again.
        """
        self.log("--verify-target: reading ELIZA's users and persons")
        current = {
            Kind.USER: {int(u["id"]): u for u in await self.target.list_all(self.res.USER)},
            Kind.PERSON: {int(p["id"]): p for p in await self.target.list_all(self.res.PERSON)},
        }
        for entra_id, kinds in self.links.items():
            for kind, link in list(kinds.items()):
                if kind not in current or link.status == "deleted":
                    continue
                actual = current[kind].get(link.eliza_id)
                if actual is None:
                    report.warnings.append(
                        f"linked ELIZA {kind.value} #{link.eliza_id} of {entra_id} was deleted "
                        "in ELIZA; it is created again"
                    )
                    if not self.dry_run:
                        self.store.delete_link(entra_id, kind)
                    del kinds[kind]
                    continue
                seen = {k: actual[k] for k in link.pushed if k in actual}
                link = kinds[kind] = replace(link, pushed={**link.pushed, **seen})
                if kind != Kind.USER:
                    continue
                why = protection(actual, self.settings.matching.protected_groups)
                if why and link.status != PROTECTED:
                    self._protected[entra_id] = f"the linked ELIZA user #{link.eliza_id} {why}"
                elif not why and link.status == PROTECTED:
                    kinds[kind] = replace(link, status="active")
                    report.warnings.append(
                        f"ELIZA user #{link.eliza_id} is no longer protected; the sync manages "
                        "it again"
                    )
                    if not self.dry_run:
                        self.store.save_link(kinds[kind])

    def _refuse_protected(self, obj: MirrorObject, report: RunReport) -> None:
        """A linked account became a superuser or joined a protected group: hands off."""
        reason = self._protected[obj.id] + "; the sync leaves this account alone"
        label = str(obj.data.get("userPrincipalName") or obj.id)
        report.conflicts.append(
            {"entra_id": obj.id, "label": label, "kind": "user", "op": "update", "message": reason}
        )
        self.log(f"conflict: {label}: {reason}")
        if not self.dry_run:
            link = self.links[obj.id][Kind.USER]
            self.store.save_link(replace(link, status=PROTECTED))
            self._failed.add(obj.id)
            self.store.record_failure(
                obj.id, Kind.USER, "update", "conflict", reason, {}, obj.version, self.now()
            )

    def _fail_planning(self, obj: MirrorObject, exc: Exception, report: RunReport) -> None:
        """A mapping expression failed on this user's data: report it, plan the others."""
        label = str(obj.data.get("userPrincipalName") or obj.id)
        message = f"field mapping failed: {exc}"
        report.failures.append(
            {"entra_id": obj.id, "label": label, "kind": "user", "op": "plan", "message": message}
        )
        self.log(f"error: {label}: {message}")
        if not self.dry_run:
            self._failed.add(obj.id)
            self.store.record_failure(
                obj.id, Kind.USER, "plan", "error", message, {}, obj.version, self.now()
            )

    def _ctx(self) -> PlanContext:
        person_ids = {eid: i for (eid, kind), i in self.ids.items() if kind == Kind.PERSON}
        return replace(self.settings.ctx, person_ids=person_ids)

    # ---------------------------------------------------------------- push
    async def _push(self, plan: Plan, report: RunReport) -> None:
        held_ids = {p.entra_id for p in plan.held}
        await self._check_orgunits(plan)
        directory = Directory(self.target, self.res)
        creates = sum(1 for p in plan.objects for a in p.actions if a.op == Op.CREATE)
        if creates >= PREFETCH_THRESHOLD:
            self.log(
                f"{creates} objects to create or match: reading ELIZA's users and persons once"
            )
            await directory.prefetch()
        self._directory = directory
        waiting: list[ObjectPlan] = []
        sem = asyncio.Semaphore(self.settings.concurrency)
        total = len([p for p in plan.objects if p.actions])
        done = 0

        async def one(p: ObjectPlan) -> None:
            nonlocal done
            async with sem:
                ok = await self._push_object(p, report)
            if p.actions:
                done += 1
            if p.actions and total >= 50 and done % 50 == 0:
                self.log(f"pushed {done}/{total} objects")
            if p.unresolved:
                waiting.append(p)
            elif ok and p.entra_id not in held_ids:
                self._settle(p)

        await asyncio.gather(*(one(p) for p in plan.objects))
        if waiting:
            # managers linked during this run: plan those objects once more
            ctx = self._ctx()
            second = []
            for p in waiting:
                obj = self._objects[p.entra_id]
                again = plan_object(obj, self.links.get(obj.id, {}), ctx)
                second.append(again)
            for p in second:
                ok = await self._push_object(p, report)
                if ok and not p.unresolved and p.entra_id not in held_ids:
                    self._settle(p)
        if not (self.dry_run or report.deferred_objects or self._fingerprint_current):
            # objects left for later runs must still be re-planned under the new settings
            self.store.set_meta("plan_fingerprint", self.settings.plan_fingerprint)

    def _settle(self, p: ObjectPlan) -> None:
        if not self.dry_run:
            self.store.settle(p.entra_id, p.version)

    async def _check_orgunits(self, plan: Plan) -> None:
        """A mapped org unit ELIZA does not know is a configuration error, found before writing."""
        targets = {
            a.fields["orgunit"]
            for p in plan.objects
            for a in p.actions
            if a.kind == Kind.MEMBERSHIP and a.op == Op.CREATE
        }
        if not targets:
            return
        known = {int(o["id"]) for o in await self.target.list_all(self.res.ORGUNIT)}
        missing = sorted(targets - known)
        if missing:
            mapping = self.settings.ctx.orgunit_mapping
            raise ConfigError(
                [
                    f"orgunit_mapping.{name!r}: org unit {oid} does not exist in ELIZA"
                    for name, oid in mapping.items()
                    if oid in missing
                ]
            )

    async def _push_object(self, p: ObjectPlan, report: RunReport) -> bool:
        """Run one object's actions in order; False when one failed (the rest then wait)."""
        for action in p.actions:
            try:
                await self._execute(action, p.version, report)
            except (ObjectRejectedError, ServiceUnavailableError) as exc:
                self._fail(action, p.version, exc, report)
                return False
            self._outages = 0
        user_link = self.links.get(p.entra_id, {}).get(Kind.USER)
        protected = user_link is not None and user_link.status == PROTECTED
        if p.entra_id in self._failed and not self.dry_run and not protected:
            for kind in Kind:
                self.store.clear_failure(p.entra_id, kind)
            self._failed.discard(p.entra_id)
        return True

    def _fail(self, action: Action, version: int, exc: Exception, report: RunReport) -> None:
        if isinstance(exc, ServiceUnavailableError):
            self._outages += 1
            if self._outages >= MAX_CONSECUTIVE_OUTAGES:
                raise exc
        category = "conflict" if isinstance(exc, ConflictError) else "error"
        detail: dict[str, Any] = {}
        if isinstance(exc, ObjectRejectedError):
            detail = {"status": exc.status, "body": exc.body}
            if isinstance(exc, ConflictError):
                detail = {"candidates": exc.body}
        entry = {
            "entra_id": action.entra_id,
            "label": action.label,
            "kind": action.kind.value,
            "op": action.op.value,
            "message": str(exc),
            **detail,
        }
        (report.conflicts if category == "conflict" else report.failures).append(entry)
        report.actions.append(self._action_json(action, category))
        self.log(f"{category}: {action.label} {action.kind.value} {action.op.value}: {exc}")
        if not self.dry_run:
            self._failed.add(action.entra_id)
            self.store.record_failure(
                action.entra_id,
                action.kind,
                action.op.value,
                category,
                str(exc),
                detail,
                version,
                self.now(),
            )

    def _action_json(self, a: Action, result: str, eliza_id: int | None = None) -> dict[str, Any]:
        return {
            "entra_id": a.entra_id,
            "label": a.label,
            "kind": a.kind.value,
            "op": a.op.value,
            "eliza_id": _real_id(eliza_id if eliza_id is not None else a.eliza_id),
            "changes": _changes_json(a.changes),
            "reason": a.reason,
            "result": result,
        }

    # ------------------------------------------------------------- actions
    def _resource(self, kind: Kind) -> Any:
        return {
            Kind.USER: self.res.USER,
            Kind.PERSON: self.res.PERSON,
            Kind.MEMBERSHIP: self.res.MEMBERSHIP,
        }[kind]

    def _resolve(
        self, fields: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, Ref):
                value = self.ids.get((value.entra_id, value.kind))
            elif isinstance(value, AddToGroups):
                have = list((current or {}).get("groups") or [])
                value = have + [g for g in value.ids if g not in have]
            out[name] = value
        return out

    async def _execute(self, a: Action, version: int, report: RunReport) -> None:
        if a.op == Op.CREATE:
            await self._create(a, version, report)
            return
        link = self.links.get(a.entra_id, {}).get(a.kind)
        assert link is not None and a.eliza_id is not None
        resource = self._resource(a.kind)
        fields = dict(a.fields)
        saved: Mapping[str, Any] = link.saved if a.saved is None else a.saved
        current: dict[str, Any] | None = None
        if a.if_empty or any(isinstance(v, AddToGroups) for v in fields.values()):
            current = await self.target.get(resource, a.eliza_id)
            if current is None:
                self._gone(a, link, version)
        if a.if_empty and current is not None:
            filled = {k: v for k, v in a.if_empty.items() if not current.get(k)}
            fields.update(filled)
            saved = {
                "anstellungsart": current.get("anstellungsart"),
                "austrittsdatum_set": "austrittsdatum" in filled,
                "austrittsdatum": filled.get("austrittsdatum"),
            }
        body = self._resolve(fields, current)
        status = {Op.DEACTIVATE: "deactivated", Op.DELETE: "deleted"}.get(a.op, "active")
        if a.kind == Kind.MEMBERSHIP and a.op == Op.END:
            status = "deactivated" if a.saved else "ended"
        try:
            if a.op == Op.DELETE:
                await self.target.delete(resource, a.eliza_id)
            else:
                await self.target.update(resource, a.eliza_id, body)
        except ObjectRejectedError as exc:
            if exc.status == 404:
                self._gone(a, link, version)
            raise
        changes = dict(a.changes)
        for k, v in body.items():
            if current is not None or k not in changes:
                changes[k] = (
                    current.get(k) if current is not None else changes.get(k, (None,))[0],
                    v,
                )
        done = replace(a, changes=changes)
        pushed = {**a.desired, **{k: v for k, v in body.items() if k != "groups"}}
        new_link = replace(link, pushed=pushed, pushed_version=version, status=status, saved=saved)
        self._commit(done, new_link, report)

    def _gone(self, a: Action, link: Link, version: int) -> None:
        """The linked object was deleted in ELIZA by hand: forget the link, report it."""
        if not self.dry_run:
            self.store.delete_link(a.entra_id, a.kind)
        self.links.get(a.entra_id, {}).pop(a.kind, None)
        raise ObjectRejectedError(
            f"the linked ELIZA {a.kind.value} #{link.eliza_id} no longer exists (deleted in "
            "ELIZA); it will be created again on the next run",
            status=404,
        )

    def _commit(self, a: Action, link: Link | None, report: RunReport) -> None:
        """Record a success: the link (what ELIZA accepted) and its journal entry, together."""
        entra = self.links.setdefault(a.entra_id, {})
        if link is None:
            entra.pop(a.kind, None)
        else:
            entra[a.kind] = link
            self.ids[(a.entra_id, a.kind)] = link.eliza_id
        eliza_id = link.eliza_id if link is not None else a.eliza_id
        report.actions.append(self._action_json(a, "planned" if self.dry_run else "ok", eliza_id))
        if self.dry_run:
            return
        self.store.record_push(
            None if link is None or link.status == "ended" else link,
            self.run_id or 0,
            a.entra_id,
            a.kind,
            a.op.value,
            eliza_id,
            _changes_json(a.changes),
        )

    async def _create(self, a: Action, version: int, report: RunReport) -> None:
        """Create, after matching: a lost create is found by remote_key, never duplicated."""
        resource = self._resource(a.kind)
        target: Mapping[str, Any] | None = None
        matched_by = "created"
        if a.kind == Kind.USER:
            target, matched_by = await self._match_user(a)
        elif a.kind == Kind.PERSON:
            target, matched_by = await self._match_person(a)
        elif self._create_pending(a):
            target = await self._find_membership(a)
        if target is not None:
            current = dict(target)
            desired = self._resolve(a.desired, current)
            changes = diff({k: v for k, v in desired.items() if k != "groups_added"}, current)
            body = {k: new for k, (_, new) in changes.items()}
            if "groups" in a.fields:
                groups = self._resolve({"groups": a.fields["groups"]}, current)["groups"]
                if groups != current.get("groups"):
                    body["groups"] = groups
                    changes["groups"] = (current.get("groups"), groups)
            if body:
                await self.target.update(resource, int(target["id"]), body)
            done = replace(
                a,
                op=Op.MATCH,
                changes=changes,
                reason=(f"matched ({matched_by})" + ("" if body else ", nothing to change")),
            )
            eliza_id = int(target["id"])
        else:
            body = self._resolve(a.fields, None)
            if not self.dry_run:
                self.store.journal(self.run_id or 0, a.entra_id, a.kind, "creating", None, {})
            created = await self.target.create(resource, body)
            self._directory.remember(a.kind, created)
            eliza_id = int(created["id"])
            shown = {k: (None, v) for k, v in body.items() if k != "groups"}
            if "groups" in body:
                shown["groups"] = (None, body["groups"])
            done = replace(a, changes=shown)
            matched_by = "created"
        pushed = {k: v for k, v in self._resolve(a.desired, None).items() if k != "groups"}
        link = Link(
            entra_id=a.entra_id,
            kind=a.kind,
            eliza_id=eliza_id,
            matched_by=matched_by,
            matched_at=self.now(),
            pushed=pushed,
            pushed_version=version,
        )
        self._commit(done, link, report)

    def _create_pending(self, a: Action) -> bool:
        """The journal shows an earlier create of this object whose outcome was never recorded."""
        if self.dry_run:
            return False
        return any(
            e.kind == a.kind and e.action == "creating"
            for e in self.store.journal_for(a.entra_id, 50)
        )

    async def _match_user(self, a: Action) -> tuple[Mapping[str, Any] | None, str]:
        d = self._directory
        by_key = await d.users_by("remote_key", a.entra_id)
        soft: dict[str, list[dict[str, Any]]] = {}
        if not by_key and self.settings.matching.soft_match:
            obj = self._objects.get(a.entra_id)
            keys = soft_keys(obj.data if obj else {})
            for attribute, value in keys.items():
                field_name = "username" if attribute == "username" else "email"
                soft[attribute] = await d.users_by(field_name, value)
        linked = {lk.eliza_id: lk.entra_id for lk in self._linked_users(by_key, soft)}
        own = bool(by_key) and self._create_pending(a)
        decision = decide_user(
            a.entra_id, by_key, soft, self.settings.matching, linked, own_create_pending=own
        )
        return _decided(decision)

    def _linked_users(
        self, by_key: Sequence[Mapping[str, Any]], soft: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> list[Link]:
        ids = {int(u["id"]) for u in by_key} | {int(u["id"]) for c in soft.values() for u in c}
        found = [self.store.link_by_eliza_id(Kind.USER, i) for i in ids]
        return [lk for lk in found if lk is not None]

    async def _match_person(self, a: Action) -> tuple[Mapping[str, Any] | None, str]:
        d = self._directory
        by_key = await d.persons_by("remote_key", a.entra_id)
        by_user: list[dict[str, Any]] = []
        by_email: list[dict[str, Any]] = []
        user_id = self.ids.get((a.entra_id, Kind.USER))
        if not by_key:
            if user_id is not None and user_id > 0:
                by_user = await d.persons_by("user", user_id)
            email = a.desired.get("email")
            if (
                not by_user
                and isinstance(email, str)
                and email
                and self.settings.matching.soft_match
            ):
                by_email = await d.persons_by("email", email)
        ids = {int(p["id"]) for p in (*by_key, *by_user, *by_email)}
        linked = {}
        for i in ids:
            lk = self.store.link_by_eliza_id(Kind.PERSON, i)
            if lk is not None:
                linked[i] = lk.entra_id
        decision = decide_person(
            a.entra_id,
            by_key,
            by_user,
            by_email,
            self.settings.matching,
            linked,
            own_create_pending=bool(by_key) and self._create_pending(a),
            user_id=user_id,
        )
        return _decided(decision)

    async def _find_membership(self, a: Action) -> Mapping[str, Any] | None:
        fields = self._resolve(a.fields, None)
        found = await self.target.find(
            self.res.MEMBERSHIP, mitarbeiter=fields["mitarbeiter"], orgunit=fields["orgunit"]
        )
        open_ = [m for m in found if m.get("bis") is None]
        return open_[0] if len(open_) == 1 else None
