"""Push: execute each object's actions against ELIZA and record what ELIZA accepted.

The commit order, written down here once and done by the code below:

0. before the first write of a run under new settings, every field the sync writes is
   checked against ELIZA's schema (:mod:`deltasync.engine.target_fields`), once per plan
   fingerprint;
1. a create first journals the marker "creating" (:meth:`Ledger.creating`, committed
   before the create goes on; markers of concurrent creates share a commit, and a commit
   takes the markers of the batch's next creates ahead, see :mod:`deltasync.engine.ledger`);
2. then the request goes to ELIZA (POST; PATCH or DELETE for linked objects); a
   deprovisioning that fills empty fields first records in its link what it will have to
   undo (:meth:`Ledger.relink`, :func:`~deltasync.plan.resolve.remember_first`), since a
   rerun after a kill would read the values of its own write back;
3. then the link and its journal entry are recorded in one transaction
   (:meth:`Ledger.pushed`). A lost POST response leaves only the marker: the next run
   finds the object by remote_key and links it, never creating it twice;
4. when every action of the object went through, its failures are cleared
   (:meth:`Ledger.succeeded`);
5. then its mirror version is settled (:meth:`Ledger.settle`), unless it waits for a
   manager's link or its deprovisioning is held;
6. at the end of the run, when no object was left for later, the plan fingerprint is
   stored (:meth:`Ledger.plan_current`).

Steps 3-5 are written behind (:mod:`deltasync.engine.ledger`): in this same order, but
many objects per transaction; step 1 commits them together with its marker (as does a
relink: the memory a deprovisioning keeps is stored before its write), and the end of the
push commits what is left. The plan arrives in batches (:func:`deltasync.engine.plan.
plan_and_push`; :class:`Pusher` keeps what spans them) and objects go out in chunks of
``CHUNK``, so the push never holds a task for every object at once.

What to send and what to record is decided by the pure :mod:`deltasync.plan.resolve`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from deltasync import fields as f
from deltasync.engine.context import Run
from deltasync.engine.directory import Directory
from deltasync.engine.match import existing
from deltasync.engine.ports import collection
from deltasync.engine.report import action_json
from deltasync.engine.target_fields import check_target_fields, dropped_fields, written_fields
from deltasync.errors import (
    ConfigError,
    ConflictError,
    ObjectRejectedError,
    ServiceUnavailableError,
)
from deltasync.models import Kind, Link, LinkStatus
from deltasync.plan.actions import Action, ObjectPlan, Op, Plan, empty
from deltasync.plan.objects import plan_object
from deltasync.plan.resolve import (
    Write,
    changed,
    created,
    held_back,
    matched,
    needs_current,
    remember_first,
)

MAX_CONSECUTIVE_OUTAGES = 5
PREFETCH_THRESHOLD = 20  # unlinked objects from which one list read beats per-object lookups
CHUNK = 1000  # objects in flight (as tasks) at most; concurrency stays max_concurrency


async def push(run: Run, plan: Plan) -> None:
    """Every object's actions, a few objects at a time; objects waiting for a link twice."""
    pusher = Pusher(run)
    try:
        await pusher.batch(plan, last=True)
        await pusher.finish()
    finally:
        pusher.close()


class _Push:
    def __init__(self, run: Run, plan: Plan) -> None:
        self.run = run
        self.plan = plan
        self.held = {p.entra_id for p in plan.held}
        self.outages = 0
        self.collided: set[str] = set()  # objects with a field another account holds

    async def object(self, p: ObjectPlan) -> bool:
        """Run one object's actions in order; False when one failed (the rest then wait)."""
        for action in p.actions:
            try:
                await self.execute(action, p.version)
            except (ObjectRejectedError, ServiceUnavailableError) as exc:
                self.fail(action, p.version, exc)
                return False
            self.outages = 0
        if p.entra_id in self.collided:
            return False  # the conflict stays recorded; the colliding field is retried
        user_link = self.run.link(p.entra_id, Kind.USER)
        if user_link is None or user_link.status != LinkStatus.PROTECTED:
            self.run.ledger.succeeded(p.entra_id)
        return True

    def fail(self, action: Action, version: int, exc: Exception) -> None:
        """Report a failed action and record it for a retry; too many outages stop the run."""
        run = self.run
        if isinstance(exc, ServiceUnavailableError):
            self.outages += 1
            if self.outages >= MAX_CONSECUTIVE_OUTAGES:
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
        (run.report.conflicts if category == "conflict" else run.report.failures).append(entry)
        run.report.actions.append(action_json(action, category))
        run.log(f"{category}: {action.label} {action.kind.value} {action.op.value}: {exc}")
        run.ledger.failed(
            action.entra_id, action.kind, action.op.value, category, str(exc), detail, version
        )

    async def execute(self, a: Action, version: int) -> None:
        """One action: read what the write depends on, send it, record it."""
        if a.op == Op.CREATE:
            await self.create(a, version)
            return
        run = self.run
        link = run.link(a.entra_id, a.kind)
        assert link is not None and a.eliza_id is not None
        resource = collection(run.names, a.kind)
        current = None
        if needs_current(a):
            current = await run.target.get(resource, a.eliza_id)
            if current is None:
                self.gone(a, link)
        write = changed(a, link, current, run.ids)
        taken = await self.taken(a, link, write.body)
        if taken:
            write = held_back(write, taken, link)
            self.collision(a, version, link, write, taken)
        first = remember_first(write, link)
        if first is not None:
            run.ledger.relink(first)
        answer: dict[str, Any] | None = None
        try:
            if a.op == Op.DELETE:
                await run.target.delete(resource, a.eliza_id)
            elif taken and not write.body:
                return  # nothing else to write; the conflict is recorded
            elif write.body:  # empty: ELIZA already holds it (a user's groups, say)
                answer = await run.target.update(resource, a.eliza_id, write.body)
        except ObjectRejectedError as exc:
            if exc.status == 404:
                self.gone(a, link)
            raise
        self.commit(write, write.relinked(link, version), answer)

    async def taken(self, a: Action, link: Link, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The unique fields (username, e-mail) of a linked user's write that another ELIZA
        account holds already: field -> that account. A linked object never re-matches."""
        if a.kind != Kind.USER:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for name in (f.USERNAME, f.EMAIL):
            value = body.get(name)
            if empty(value):
                continue
            holders = await self.run.target.find(self.run.names.USER, **{name: value})
            others = [u for u in holders if int(u["id"]) != link.eliza_id]
            if others:
                found[name] = others[0]
        return found

    def collision(
        self,
        a: Action,
        version: int,
        link: Link,
        write: Write,
        taken: dict[str, dict[str, Any]],
    ) -> None:
        """Report a username or e-mail another account holds: a conflict naming both sides;
        the object's other changes are still written."""
        run = self.run
        self.collided.add(a.entra_id)
        parts = [
            f"the new {name} {a.fields.get(name)!r} is held by ELIZA user #{other['id']} "
            f"({other.get(f.USERNAME)!r})"
            for name, other in taken.items()
        ]
        message = (
            f"Entra user {a.label} ({a.entra_id}, linked to ELIZA user #{link.eliza_id}): "
            + "; ".join(parts)
            + "; not taken over"
            + (", the other changes are written" if write.body else "")
            + "; retried on the next runs"
        )
        others = [
            {"field": name, "eliza_id": other.get("id"), "username": other.get(f.USERNAME)}
            for name, other in taken.items()
        ]
        run.report.conflicts.append(
            {
                "entra_id": a.entra_id,
                "label": a.label,
                "kind": a.kind.value,
                "op": a.op.value,
                "eliza_id": link.eliza_id,
                "message": message,
                "held_by": others,
            }
        )
        run.log(f"conflict: {message}")
        run.ledger.failed(
            a.entra_id, a.kind, a.op.value, "conflict", message, {"held_by": others}, version
        )

    async def create(self, a: Action, version: int) -> None:
        """Match first; create only without a match, after journalling that it is under way."""
        run = self.run
        resource = collection(run.names, a.kind)
        target, matched_by = await existing(run, a)
        write: Write
        answer: dict[str, Any] | None = None
        if target is not None:
            write = matched(a, target, matched_by, run.ids)
            eliza_id = int(target["id"])
            if write.body:
                answer = await run.target.update(resource, eliza_id, write.body)
        else:
            write = created(a, run.ids)
            await run.ledger.creating(a.entra_id, a.kind)
            answer = await run.target.create(resource, write.body)
            run.directory.remember(a.kind, answer)
            eliza_id = int(answer["id"])
        self.commit(write, write.linked(eliza_id, version, run.now()), answer)

    def gone(self, a: Action, link: Link) -> None:
        """The linked object was deleted in ELIZA by hand: forget the link, report it."""
        self.run.ledger.forget(a.entra_id, a.kind, link.eliza_id)
        self.run.linked(a.entra_id, a.kind, None)
        raise ObjectRejectedError(
            f"the linked ELIZA {a.kind.value} #{link.eliza_id} no longer exists (deleted in "
            "ELIZA); it will be created again on the next run",
            status=404,
        )

    def commit(self, write: Write, link: Link, answer: dict[str, Any] | None = None) -> None:
        """Record a success: the link (what ELIZA accepted) and its journal entry, together.

        A field the write sent but ELIZA's answer lacks was dropped (ELIZA ignores fields it
        does not know): the link keeps what ELIZA did accept, so nothing is duplicated and
        the field is sent again next time, and the object fails naming the field.
        """
        run = self.run
        dropped = dropped_fields(write.body, answer)
        if dropped:
            kept = {k: v for k, v in link.pushed.items() if k not in dropped}
            link = replace(link, pushed=kept)
        run.linked(link.entra_id, link.kind, link)
        if not dropped:
            run.report.actions.append(action_json(write.action, run.ledger.applied, link.eliza_id))
        run.ledger.pushed(write.action, link, link.eliza_id)
        if dropped:
            names = ", ".join(repr(name) for name in dropped)
            raise ObjectRejectedError(
                f"ELIZA did not keep {names} of {link.kind.value} #{link.eliza_id}: the "
                "instance has no such field (check field_mapping; ELIZA ignores unknown fields)"
            )


class Pusher(_Push):
    """The push of a run's plan, batch by batch: the checks and the list read happen once,
    objects waiting for a manager's link are planned again after the last batch."""

    def __init__(self, run: Run) -> None:
        super().__init__(run, Plan(()))
        keep = {kind: written_fields(run, kind) for kind in (Kind.USER, Kind.PERSON)}
        run.directory = Directory(run.target, run.names, keep, rows=run.store.lookup_rows)
        self.waiting: list[ObjectPlan] = []
        self.stopped = 0
        self.checked = False  # ELIZA's schema checked (once a batch has actions)
        self.orgunits: set[int] | None = None  # ELIZA's org units, read once if needed
        self.creates = 0
        self.prefetched = False
        self.phase = False

    async def batch(self, plan: Plan, *, last: bool) -> None:
        """Push one batch; ``last``: no batch follows (its total is the phase's total)."""
        run = self.run
        run.ledger.flush()  # what the plan recorded (relinks, conflicts) comes first
        if not self.checked and plan.actions:
            await check_target_fields(run, plan)
            self.checked = True
        self.orgunits = await _check_orgunits(run, plan, self.orgunits)
        self.creates += sum(1 for a in plan.actions if a.op == Op.CREATE)
        if self.creates >= PREFETCH_THRESHOLD and not self.prefetched:
            run.log(
                f"{self.creates} objects to create or match: reading ELIZA's users and persons once"
            )
            await run.directory.prefetch()
            self.prefetched = True
        self.held |= {p.entra_id for p in plan.held}
        with_actions = sum(1 for p in plan.objects if p.actions)
        if not self.phase:
            run.progress.phase(run.ledger.progress, with_actions if last else None)
            self.phase = True
        sem = asyncio.Semaphore(run.settings.concurrency)

        async def one(p: ObjectPlan) -> None:
            async with sem:
                if p.actions and run.stop():
                    self.stopped += 1  # asked to stop: the object stays dirty, untouched
                    return
                ok = await self.object(p)
            if p.actions:
                run.progress.advance(1)
            if p.unresolved:
                self.waiting.append(p)
            elif ok and p.entra_id not in self.held:
                run.ledger.settle(p.entra_id, p.version)

        run.ledger.expect_creates((a.entra_id, a.kind) for a in plan.actions if a.op == Op.CREATE)
        try:
            for start in range(0, len(plan.objects), CHUNK):
                await asyncio.gather(*(one(p) for p in plan.objects[start : start + CHUNK]))
        finally:
            run.ledger.batch_done()

    def close(self) -> None:
        """The push has ended (also on error): the progress phase closes, the lookup rows go."""
        self._phase_done()
        self.run.directory.close()

    def _phase_done(self) -> None:
        if self.phase:
            self.run.progress.done()
            self.phase = False

    async def finish(self) -> None:
        """After the last batch: the objects waiting for a manager's link, the fingerprint."""
        run = self.run
        self._phase_done()
        if self.stopped:
            run.report.deferred_objects += self.stopped
            run.report.warnings.append(f"stopped (signal): {self.stopped} objects wait")
        if self.waiting:
            # managers linked during this run: plan those objects once more
            ctx = run.plan_context()
            again = [
                plan_object(run.objects[p.entra_id], run.links.get(p.entra_id, {}), ctx)
                for p in self.waiting
            ]
            self.waiting = []
            for p in again:
                ok = await self.object(p)
                if ok and not p.unresolved and p.entra_id not in self.held:
                    run.ledger.settle(p.entra_id, p.version)
            run.ledger.flush()
        if not (run.report.deferred_objects or run.report.held or run.fingerprint_current):
            # objects left for later runs (deferred, or held by the threshold) must still be
            # re-planned under the new settings
            run.ledger.plan_current(run.settings.plan_fingerprint)


async def _check_orgunits(run: Run, plan: Plan, known: set[int] | None) -> set[int] | None:
    """A mapped org unit ELIZA does not know is a configuration error, found before writing
    the batch; ELIZA's org units (``known``) are read once a run."""
    targets = {
        a.fields[f.ORGUNIT] for a in plan.actions if a.kind == Kind.MEMBERSHIP and a.op == Op.CREATE
    }
    if not targets:
        return known
    if known is None:
        known = {int(o["id"]) for o in await run.target.list_all(run.names.ORGUNIT)}
    missing = sorted(targets - known)
    if missing:
        mapping = run.settings.ctx.orgunit_mapping
        raise ConfigError(
            [
                f"orgunit_mapping.{name!r}: org unit {oid} does not exist in ELIZA"
                for name, oid in mapping.items()
                if oid in missing
            ]
        )
    return known
