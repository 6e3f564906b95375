"""Delta rounds over the tenant: pages, skip tokens, delta tokens (graph-delta.md §1, §2).

A round is computed when it starts and served page by page: pages in no particular order,
duplicates across pages, an empty page that still carries a ``nextLink``, exactly one of
``nextLink``/``deltaLink`` per page. A delta token is a position in the change log plus the
selected property set; ``Prefer: return=minimal`` turns incremental entries into "changed
properties only" (an explicit ``null`` = cleared, absent = unchanged).
"""

from __future__ import annotations

import copy
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from deltasync.sandbox.graph.query import UNSUPPORTED_DELTA_OPTIONS, parse_filter, parse_select
from deltasync.sandbox.graph.schema import GROUPS, SCHEMAS, USERS, Schema
from deltasync.sandbox.graph.tenant import Change, Obj, Tenant
from deltasync.sandbox.graph.wire import GraphError, json_response, prefers_minimal


@dataclass(frozen=True)
class _Entry:
    """One object on a delta page, rendered both ways (the Prefer header is per request)."""

    full: dict[str, Any]
    minimal: dict[str, Any]


@dataclass
class _Round:
    schema: Schema
    pages: list[list[_Entry]]
    context: str
    end_pos: int
    select: tuple[str, ...]
    ids: frozenset[str] | None
    next_tokens: dict[int, str] = field(default_factory=dict)
    delta_token: str | None = None


@dataclass(frozen=True)
class _SkipState:
    round: _Round
    index: int
    issued_at: float


@dataclass(frozen=True)
class _DeltaState:
    schema: Schema
    pos: int
    select: tuple[str, ...]
    ids: frozenset[str] | None
    issued_at: float


class DeltaFeed(Tenant):
    """The tenant as Graph's delta feed; :class:`GraphSim` puts it behind HTTP."""

    def __init__(
        self,
        *,
        seed: int,
        now: Callable[[], float],
        base_url: str,
        page_size: int,
        token_ttl_s: float,
        duplicates: bool,
        empty_pages: bool,
        members_per_entry: int = 500,
    ) -> None:
        super().__init__(seed=seed, now=now)
        self.members_per_entry = members_per_entry
        self._base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.token_ttl_s = token_ttl_s
        self.duplicates = duplicates
        self.empty_pages = empty_pages
        self._page_rng = random.Random(f"pages:{seed}")
        self._skips: dict[str, _SkipState] = {}
        self._deltas: dict[str, _DeltaState] = {}

    def _context(self, schema: Schema, select: tuple[str, ...]) -> str:
        shown = [p for p in select if p != "id"]
        suffix = f"({','.join(shown)})" if shown else ""
        return f"{self._base_url}/$metadata#{schema.resource}{suffix}"

    def _expired(self, issued_at: float) -> bool:
        return self._now() - issued_at > self.token_ttl_s

    def _delta(
        self,
        request: httpx.Request,
        schema: Schema,
        options: dict[str, str],
        headers: dict[str, str],
    ) -> httpx.Response:
        """One delta page: a new round, the next page of one, or the round after a token."""
        for name in UNSUPPORTED_DELTA_OPTIONS:
            if name in options:
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        minimal = prefers_minimal(request)
        if minimal:
            headers["Preference-Applied"] = "return=minimal"
        if "skiptoken" in options:
            if set(options) - {"skiptoken", "top"}:
                # Graph encodes query options into the token; they are not accepted again.
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
            skip = self._skips.get(options["skiptoken"])
            if skip is None or skip.round.schema is not schema or self._expired(skip.issued_at):
                self._skips.pop(options["skiptoken"], None)
                raise GraphError(400, "syncStateNotFound")
            return self._serve(skip.round, skip.index, minimal, headers)
        token = options.get("deltatoken", "")
        if token.lower() == "latest":
            select = parse_select(schema, options.get("select"))
            ids = parse_filter(options.get("filter"))
            rnd = _Round(schema, [[]], self._context(schema, select), len(self._log), select, ids)
            return self._serve(rnd, 0, minimal, headers)
        if token:
            state = self._deltas.get(token)
            if state is None or state.schema is not schema or self._expired(state.issued_at):
                self._deltas.pop(token, None)
                raise GraphError(400, "syncStateNotFound")
            # A $select sent along with a deltaLink is ignored: the token fixes what is tracked.
            entries = self._collapse(state)
            rnd = _Round(
                schema,
                self._paginate(entries) if entries else [[]],
                self._context(schema, state.select),
                len(self._log),
                state.select,
                state.ids,
            )
            return self._serve(rnd, 0, minimal, headers)
        select = parse_select(schema, options.get("select"))
        ids = parse_filter(options.get("filter"))
        entries = []
        for obj in self._objs.values():
            if self._live(obj, schema) and (ids is None or obj.id in ids):
                full = self._render_full(obj, select)
                entries.append(_Entry(full, full))
        rnd = _Round(
            schema,
            self._paginate(entries),
            self._context(schema, select),
            len(self._log),
            select,
            ids,
        )
        return self._serve(rnd, 0, minimal, headers)

    def _slices(self, entry: _Entry) -> list[_Entry]:
        """A big group's entry as several, each repeating the group with a slice of members."""
        key = f"{GROUPS.relation}@delta"
        members = entry.full.get(key)
        size = self.members_per_entry
        if not isinstance(members, list) or len(members) <= size:
            return [entry]
        out = []
        for start in range(0, len(members), size):
            part = members[start : start + size]
            full = {**entry.full, key: part}
            minimal = {**entry.minimal, key: part} if key in entry.minimal else dict(entry.minimal)
            out.append(_Entry(full, minimal))
        return out

    def _paginate(self, entries: list[_Entry]) -> list[list[_Entry]]:
        if not entries:
            return [[]]
        shuffled = [part for e in entries for part in self._slices(e)]
        rng = self._page_rng
        rng.shuffle(shuffled)
        size = self.page_size
        pages = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
        if self.duplicates and len(pages) > 1:
            for _ in range(min(5, max(1, len(shuffled) // 50))):
                source = rng.randrange(len(pages) - 1)
                entry = rng.choice(pages[source])
                target = rng.randrange(source + 1, len(pages))
                pages[target].insert(rng.randrange(len(pages[target]) + 1), entry)
        if self.empty_pages:
            pages.insert(rng.randrange(len(pages)), [])
        return pages

    def _serve(
        self, rnd: _Round, index: int, minimal: bool, headers: dict[str, str]
    ) -> httpx.Response:
        body: dict[str, Any] = {"@odata.context": rnd.context}
        link_base = f"{self._base_url}/{rnd.schema.resource}/delta"
        if index + 1 < len(rnd.pages):
            token = rnd.next_tokens.get(index + 1)
            if token is None or token not in self._skips:
                token = secrets.token_urlsafe(48)
                rnd.next_tokens[index + 1] = token
                self._skips[token] = _SkipState(rnd, index + 1, self._now())
            body["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
        else:
            token = rnd.delta_token or ""
            if token not in self._deltas:
                token = secrets.token_urlsafe(48)
                rnd.delta_token = token
                self._deltas[token] = _DeltaState(
                    rnd.schema, rnd.end_pos, rnd.select, rnd.ids, self._now()
                )
            body["@odata.deltaLink"] = f"{link_base}?$deltatoken={token}"
        # The entries are rendered copies and json_response serializes them at once: copying
        # them again per page was most of a page's cost.
        body["value"] = [e.minimal if minimal else e.full for e in rnd.pages[index]]
        return json_response(200, body, headers)

    def _relation_entry(self, member_id: str, removed: bool = False) -> dict[str, Any]:
        kind = self._kinds.get(member_id, USERS.resource)
        entry: dict[str, Any] = {"@odata.type": SCHEMAS[kind].odata_type, "id": member_id}
        if removed:
            entry["@removed"] = {"reason": "deleted"}
        return entry

    def _render_full(self, obj: Obj, select: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": obj.id}
        for name in select:
            if name in ("id", obj.schema.relation):
                continue
            value = obj.props.get(name)
            if value is not None:
                out[name] = copy.deepcopy(value)
        if obj.schema.relation in select:
            if obj.schema is USERS and obj.manager is not None:
                out["manager@delta"] = [self._relation_entry(obj.manager)]
            elif obj.schema is GROUPS:
                members = [
                    self._relation_entry(m)
                    for m in obj.members
                    if m in self._objs and self._objs[m].deleted_at is None
                ]
                if members:
                    out["members@delta"] = members
        return out

    def _collapse(self, state: _DeltaState) -> list[_Entry]:
        """Every object changed since the token, one entry each (graph-delta.md §1.6-§1.8)."""
        schema = state.schema
        per_object: dict[str, list[Change]] = {}
        for change in self._log[state.pos :]:
            if change.resource != schema.resource:
                continue
            if state.ids is not None and change.id not in state.ids:
                continue
            per_object.setdefault(change.id, []).append(change)
        entries: list[_Entry] = []
        tracked = set(state.select)
        for object_id, changes in per_object.items():
            obj = self._objs.get(object_id)
            if obj is None or obj.deleted_at is not None:
                reason = "deleted" if obj is None else "changed"
                removed = {"id": object_id, "@removed": {"reason": reason}}
                entries.append(_Entry(removed, removed))
                continue
            if any(c.op in ("create", "restore") for c in changes):
                full = self._render_full(obj, state.select)
                entries.append(_Entry(full, full))
                continue
            changed = set().union(*(c.props for c in changes)) & tracked
            changed.discard(schema.relation)
            relation = self._relation_changes(obj, changes, tracked)
            if not changed and not relation:
                continue  # only untracked properties changed: invisible to this token
            minimal: dict[str, Any] = {"id": object_id}
            for name in state.select:
                if name in changed:
                    minimal[name] = copy.deepcopy(obj.props.get(name))
            full = self._render_full(obj, state.select)
            full.pop(f"{schema.relation}@delta", None)
            for name in changed:
                full.setdefault(name, None)  # cleared since the token: an explicit null
            if relation:
                minimal[f"{schema.relation}@delta"] = relation
                full[f"{schema.relation}@delta"] = relation
            entries.append(_Entry(full, minimal))
        return entries

    def _relation_changes(
        self, obj: Obj, changes: list[Change], tracked: set[str]
    ) -> list[dict[str, Any]]:
        relation = obj.schema.relation
        if relation not in tracked or not any(relation in c.props for c in changes):
            return []
        if obj.schema is USERS:
            if obj.manager is not None:
                return [self._relation_entry(obj.manager)]
            last = [c for c in changes if "manager" in c.props][-1]
            if last.old_manager is None:
                return []
            return [self._relation_entry(last.old_manager, removed=True)]
        net: dict[str, bool] = {}
        for change in changes:
            for member in change.members_added:
                if net.get(member) is False:
                    del net[member]
                else:
                    net[member] = True
            for member in change.members_removed:
                if net.get(member) is True:
                    del net[member]
                else:
                    net[member] = False
        return [self._relation_entry(m, removed=not added) for m, added in net.items()]
