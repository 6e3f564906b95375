"""The I/O half of matching: fetch the candidates; :mod:`deltasync.matching` decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deltasync import fields as f
from deltasync.engine.context import Run
from deltasync.errors import ConflictError
from deltasync.matching import Match, Outcome, decide_person, decide_user, soft_keys
from deltasync.models import Kind, Link, MatchedBy
from deltasync.plan.actions import Action
from deltasync.plan.groups import match_group
from deltasync.plan.resolve import resolve_fields


def _decided(decision: Match) -> tuple[Mapping[str, Any] | None, MatchedBy]:
    """The matched ELIZA object and how it was matched; a conflict raises."""
    if decision.outcome == Outcome.CONFLICT:
        candidates = [dict(c) for c in decision.candidates]
        raise ConflictError(decision.reason or "conflict", status=None, body=candidates)
    if decision.outcome == Outcome.MATCH:
        return decision.target, decision.matched_by or MatchedBy.HARD
    return None, MatchedBy.CREATED


async def existing(run: Run, a: Action) -> tuple[Mapping[str, Any] | None, MatchedBy]:
    """The ELIZA object a CREATE must link instead (and how it was found), or None."""
    if a.kind == Kind.USER:
        return await _match_user(run, a)
    if a.kind == Kind.PERSON:
        return await _match_person(run, a)
    if a.kind == Kind.GROUP:
        return _match_group(run, a)
    person = run.link(a.entra_id, Kind.PERSON)
    adopted = person is not None and person.matched_by != MatchedBy.CREATED
    if adopted or run.ledger.create_pending(a.entra_id, a.kind):
        # A person the sync did not create (or a lost state database, whose persons are all
        # found again by remote_key) may already have its membership: link it, never add one.
        return await _find_membership(run, a), MatchedBy.CREATED
    return None, MatchedBy.CREATED


async def _match_user(run: Run, a: Action) -> tuple[Mapping[str, Any] | None, MatchedBy]:
    d = run.directory
    by_key = await d.users_by(f.REMOTE_KEY, a.entra_id)
    soft: dict[str, list[dict[str, Any]]] = {}
    if not by_key and run.settings.matching.soft_match:
        obj = run.objects.get(a.entra_id)
        keys = soft_keys(obj.data if obj else {})
        for attribute, value in keys.items():
            field_name = f.USERNAME if attribute == "username" else f.EMAIL
            soft[attribute] = await d.users_by(field_name, value)
    linked = {lk.eliza_id: lk.entra_id for lk in _linked_users(run, by_key, soft)}
    own = bool(by_key) and run.ledger.create_pending(a.entra_id, a.kind)
    decision = decide_user(
        a.entra_id, by_key, soft, run.settings.matching, linked, own_create_pending=own
    )
    return _decided(decision)


def _linked_users(
    run: Run,
    by_key: Sequence[Mapping[str, Any]],
    soft: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[Link]:
    ids = {int(u["id"]) for u in by_key} | {int(u["id"]) for c in soft.values() for u in c}
    found = [run.store.link_by_eliza_id(Kind.USER, i) for i in ids]
    return [lk for lk in found if lk is not None]


async def _match_person(run: Run, a: Action) -> tuple[Mapping[str, Any] | None, MatchedBy]:
    d = run.directory
    by_key = await d.persons_by(f.REMOTE_KEY, a.entra_id)
    by_user: list[dict[str, Any]] = []
    by_email: list[dict[str, Any]] = []
    user_id = run.ids.get((a.entra_id, Kind.USER))
    if not by_key:
        if user_id is not None and user_id > 0:
            by_user = await d.persons_by(f.PERSON_USER, user_id)
        email = a.desired.get(f.EMAIL)
        if not by_user and isinstance(email, str) and email and run.settings.matching.soft_match:
            by_email = await d.persons_by(f.EMAIL, email)
    linked = {}
    for i in {int(p["id"]) for p in (*by_key, *by_user, *by_email)}:
        lk = run.store.link_by_eliza_id(Kind.PERSON, i)
        if lk is not None:
            linked[i] = lk.entra_id
    decision = decide_person(
        a.entra_id,
        by_key,
        by_user,
        by_email,
        run.settings.matching,
        linked,
        own_create_pending=bool(by_key) and run.ledger.create_pending(a.entra_id, a.kind),
        user_id=user_id,
    )
    return _decided(decision)


def _match_group(run: Run, a: Action) -> tuple[Mapping[str, Any] | None, MatchedBy]:
    """The custom group by remote_key, else by a name no other remote_key holds."""
    rows = run.group_rows or []
    target, how, conflict = match_group(a.entra_id, a.label, rows)
    if conflict is not None:
        raise ConflictError(conflict, status=None, body=[dict(r) for r in rows if r is target])
    if target is None or how is None:
        return None, MatchedBy.CREATED
    return target, how


async def _find_membership(run: Run, a: Action) -> Mapping[str, Any] | None:
    """The one open membership of the person in the org unit (a lost create), or None."""
    fields = resolve_fields(a.fields, None, run.ids)
    found = await run.target.find(
        run.names.MEMBERSHIP, **{f.MEMBER: fields[f.MEMBER], f.ORGUNIT: fields[f.ORGUNIT]}
    )
    open_ = [m for m in found if m.get(f.BIS) is None]
    return open_[0] if len(open_) == 1 else None
