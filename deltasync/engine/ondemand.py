"""``sync --user``: read just these users from Graph by id, plan and push them, with a trace.

The users are read with the delta function filtered by id (``$filter=id eq '…' or …``, up
to 50 ids a request): the same ``$select`` and the same full (not minimal) representation
as a full round, so the objects replace their mirror data exactly as a full round would.
The stored delta cursors are not touched and the round's ``deltaLink`` is thrown away: the
next delta run brings the same change again, finds the mirror already holding it (no new
version) and so pushes nothing twice; a change made after this read comes with it as usual.

The trace says, in the order it happened, each request and its answer, the scope decision
and why, the match (or the link and how it was made) and every field old -> new, like
Entra's "provision on demand".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from deltasync.engine.context import Run
from deltasync.engine.ports import Source, Target
from deltasync.engine.report import RunReport
from deltasync.engine.settings import USERS
from deltasync.models import DeltaPage, Kind, ObjectChange
from deltasync.plan.actions import Plan

MAX_IDS = 50  # Graph's limit of ids in one delta $filter


def by_id_urls(source: Source, select: Sequence[str], ids: Sequence[str]) -> list[str]:
    """The filtered delta URLs reading ``ids`` (at most 50 each)."""
    base = source.initial_url(USERS, select)
    urls = []
    for i in range(0, len(ids), MAX_IDS):
        terms = " or ".join(f"id eq '{x}'" for x in ids[i : i + MAX_IDS])
        urls.append(f"{base}&$filter={quote(terms, safe=chr(39))}")
    return urls


async def pull_users(run: Run) -> None:
    """Read the asked users by id into the mirror; the cursors stay as they are."""
    spec = next((s for s in run.settings.resources if s.name == USERS), None)
    assert spec is not None
    ids = list(dict.fromkeys(run.opts.users))
    changes: list[ObjectChange] = []
    for url in by_id_urls(run.source, spec.select, ids):
        while True:
            page = await run.source.fetch_page(url, minimal=False)
            changes.extend(page.changes)
            run.report.pages += 1
            if page.next_link is None:
                break
            url = page.next_link
    found = {c.id for c in changes}
    for missing in (x for x in ids if x not in found):
        run.report.warnings.append(
            f"Graph returned no user {missing}: not in the tenant (or deleted); nothing done"
        )
        run.report.trace.append(f"{missing}: Graph returned no such user; nothing done")
    stats = run.store.apply_objects(USERS, changes)
    run.report.objects_seen += stats.seen
    run.report.objects_changed += stats.changed
    run.report.trace.append(
        f"mirror: {stats.seen} user(s) read, {stats.changed} changed since the last read "
        "(delta tokens untouched)"
    )


def trace_plan(run: Run, plan: Plan) -> None:
    """The scope decision and the link (or the match to come) of each planned user."""
    for p in plan.objects:
        scope = "in scope" if p.status == "active" else f"not in scope ({p.status})"
        run.report.trace.append(f"{p.label}: scope: {scope}")
        for kind in (Kind.USER, Kind.PERSON, Kind.MEMBERSHIP):
            link = run.link(p.entra_id, kind)
            if link is not None:
                run.report.trace.append(
                    f"{p.label}: {kind.value}: linked to ELIZA #{link.eliza_id} "
                    f"(matched by {link.matched_by.value}, {link.status.value})"
                )
        if not p.actions:
            run.report.trace.append(f"{p.label}: nothing to change in ELIZA")
        for a in p.actions:
            run.report.trace.append(f"{p.label}: plan: {a.kind.value} {a.op.value} ({a.reason})")
    for h in plan.held:
        run.report.trace.append(f"{h.label}: deprovisioning held by the deletion threshold")


def trace_results(report: RunReport) -> None:
    """Every field old -> new of what was done, with how a create was matched."""
    for a in report.actions:
        what = f"{a['label']}: {a['kind']} {a['op']}"
        if a["op"] == "match":
            what += f" ({a['reason']})"
        elif a["op"] == "create":
            what += " (no existing ELIZA object matched: created)"
        where = f" ELIZA #{a['eliza_id']}" if a.get("eliza_id") else ""
        report.trace.append(f"{what}{where}: {a['result']}")
        for name, (old, new) in a["changes"].items():
            report.trace.append(f"    {name}: {old!r} -> {new!r}")


class TracingSource:
    """A Source that writes each Graph request and its answer into the trace."""

    def __init__(self, inner: Source, report: RunReport) -> None:
        self.inner = inner
        self.report = report

    @property
    def requests(self) -> int:
        return self.inner.requests

    def initial_url(self, resource: str, select: Sequence[str]) -> str:
        return self.inner.initial_url(resource, select)

    async def fetch_page(self, url: str, *, minimal: bool) -> DeltaPage:
        shown = url.split("?", 1)[0] + ("?$filter=…" if "filter" in url else "")
        try:
            page = await self.inner.fetch_page(url, minimal=minimal)
        except Exception as exc:
            self.report.trace.append(f"Graph GET {shown} -> failed: {exc}")
            raise
        self.report.trace.append(f"Graph GET {shown} -> 200, {len(page.changes)} user(s)")
        return page


class TracingTarget:
    """A Target that writes each ELIZA request and its answer into the trace."""

    def __init__(self, inner: Target, report: RunReport) -> None:
        self.inner = inner
        self.report = report

    @property
    def requests(self) -> int:
        return self.inner.requests

    @property
    def writes(self) -> int:
        return self.inner.writes

    def _note(self, line: str) -> None:
        self.report.trace.append(line)

    async def _call(self, what: str, call: Any) -> Any:
        try:
            answer = await call
        except Exception as exc:
            self._note(f"ELIZA {what} -> failed: {exc}")
            raise
        return answer

    async def find(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call(
            f"GET {resource}?{_query(filters)}", self.inner.find(resource, **filters)
        )
        self._note(f"ELIZA GET {resource}?{_query(filters)} -> {len(found)} found")
        return found

    async def list_all(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call(
            f"GET {resource} (all)", self.inner.list_all(resource, **filters)
        )
        self._note(f"ELIZA GET {resource} (all) -> {len(found)}")
        return found

    async def list_pages(self, resource: str) -> AsyncIterator[list[dict[str, Any]]]:
        count = 0
        async for page in self.inner.list_pages(resource):
            count += len(page)
            yield page
        self._note(f"ELIZA GET {resource} (all, by pages) -> {count}")

    async def get(self, resource: str, id: int) -> dict[str, Any] | None:
        got: dict[str, Any] | None = await self._call(
            f"GET {resource}/{id}", self.inner.get(resource, id)
        )
        self._note(f"ELIZA GET {resource}/{id} -> {'found' if got is not None else 'not found'}")
        return got

    async def create(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = await self._call(
            f"POST {resource}", self.inner.create(resource, fields)
        )
        self._note(f"ELIZA POST {resource} {_body(fields)} -> created #{made.get('id')}")
        return made

    async def update(self, resource: str, id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        done: dict[str, Any] = await self._call(
            f"PATCH {resource}/{id}", self.inner.update(resource, id, fields)
        )
        self._note(f"ELIZA PATCH {resource}/{id} {_body(fields)} -> ok")
        return done

    async def delete(self, resource: str, id: int) -> None:
        await self._call(f"DELETE {resource}/{id}", self.inner.delete(resource, id))
        self._note(f"ELIZA DELETE {resource}/{id} -> ok")

    async def known_fields(self, resource: str) -> frozenset[str] | None:
        return await self.inner.known_fields(resource)


def _query(filters: Mapping[str, Any]) -> str:
    return "&".join(f"{k}={v}" for k, v in filters.items())


def _body(fields: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in fields.items()) + "}"
