"""Property (hypothesis): a plan applied and planned again yields no action.

The pure planner and plan.resolve against a dictionary ELIZA, over random sequences of one
Entra user's states (attribute changes, disable, enable, soft and hard delete, restore):
after each state is planned and applied, planning again finds nothing to do, and what ELIZA
holds is what one plan of the final state into an empty ELIZA gives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from deltasync import fields as f
from deltasync.mapping import compile_expr
from deltasync.models import Kind, Link, MirrorObject, Removed
from deltasync.plan import PlanContext
from deltasync.plan.actions import Op
from deltasync.plan.objects import plan_object
from deltasync.plan.resolve import changed, created, needs_current

NOW = datetime(2026, 11, 22, 8, tzinfo=UTC)
Eliza = dict[tuple[Kind, int], dict[str, Any]]
Links = dict[Kind, Link]


def context(assign: int | None, on_delete: str) -> PlanContext:
    return PlanContext(
        user_mapping={k: compile_expr(v) for k, v in f.default_mapping(Kind.USER).items()},
        person_mapping={k: compile_expr(v) for k, v in f.default_mapping(Kind.PERSON).items()},
        tz=ZoneInfo("Europe/Zurich"),
        today=date(2026, 11, 22),
        assign_to_group=assign,
        on_delete=on_delete,
    )


names = st.sampled_from(["Anna", "Beat", "Chloé", "", "Ölmez", "D'Arc"]) | st.none()
states = st.fixed_dictionaries(
    {
        "givenName": names,
        "surname": names,
        "mail": st.sampled_from(["a@firma.ch", "A@Firma.ch", "b@firma.ch"]) | st.none(),
        "jobTitle": st.sampled_from(["Pflege", "Leitung"]) | st.none(),
        "mobilePhone": st.sampled_from(["+41 79 000 00 00"]) | st.none(),
        "employeeHireDate": st.sampled_from(["2024-03-31T22:00:00Z", "2020-01-01T00:00:00Z"])
        | st.none(),
        "accountEnabled": st.booleans(),
        "userPrincipalName": st.sampled_from(["a@firma.ch", "anna.neu@firma.ch"]),
        "removed": st.sampled_from([None, None, None, Removed.CHANGED, Removed.DELETED]),
    }
)


def apply(
    obj: MirrorObject, links: Links, eliza: Eliza, ctx: PlanContext, next_id: list[int]
) -> int:
    """Plan the object and apply every action as ELIZA would; the number of actions."""
    planned = plan_object(obj, links, ctx)
    ids = {("u1", kind): lk.eliza_id for kind, lk in links.items()}
    for a in planned.actions:
        if a.op == Op.CREATE:
            write = created(a, ids)
            next_id[0] += 1
            oid = next_id[0]
            base = {"groups": []} if a.kind == Kind.USER else {"anstellungsart": "intern"}
            eliza[(a.kind, oid)] = {**base, f.AUSTRITTSDATUM: None, **write.body, "id": oid}
            link = write.linked(oid, obj.version, NOW)
        else:
            old = links[a.kind]
            current = eliza.get((a.kind, old.eliza_id))
            write = changed(a, old, dict(current) if current and needs_current(a) else None, ids)
            if a.op == Op.DELETE:
                eliza.pop((a.kind, old.eliza_id), None)
            elif current is not None:
                current.update(write.body)
            link = write.relinked(old, obj.version)
        links[a.kind] = link
        ids[("u1", a.kind)] = link.eliza_id
    return len(planned.actions)


def mirror(state: dict[str, Any], version: int) -> MirrorObject:
    data = {k: v for k, v in state.items() if k != "removed"}
    return MirrorObject("u1", {"id": "u1", **data}, state["removed"], version, version - 1)


def mapped(eliza: Eliza) -> dict[Kind, dict[str, Any]]:
    """What ELIZA holds in the fields the sync maps (ids left out)."""
    out: dict[Kind, dict[str, Any]] = {}
    for (kind, _), row in eliza.items():
        out[kind] = {k: v for k, v in row.items() if k not in ("id", f.PERSON_USER)}
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(states, min_size=1, max_size=8),
    st.sampled_from([None, 7]),
    st.sampled_from(["deactivate", "delete"]),
)
def test_a_plan_applied_and_planned_again_yields_no_action(
    sequence: list[dict[str, Any]], assign: int | None, on_delete: str
) -> None:
    ctx = context(assign, on_delete)
    links: Links = {}
    eliza: Eliza = {}
    next_id = [0]
    for version, state in enumerate(sequence, start=2):
        obj = mirror(state, version)
        apply(obj, links, eliza, ctx, next_id)
        again = plan_object(obj, links, ctx)
        assert again.actions == (), (state, again.actions)
    final = mirror(sequence[-1], len(sequence) + 1)
    if final.removed is None and final.data["accountEnabled"]:
        fresh: Eliza = {}
        apply(final, {}, fresh, ctx, [100])
        got = mapped(eliza)
        for kind, row in mapped(fresh).items():
            assert {k: got[kind].get(k) for k in row} == row
