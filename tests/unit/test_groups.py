"""plan.groups and the members@delta parser: scope, matching, flattening, the threshold."""

from __future__ import annotations

from datetime import UTC, datetime

from deltasync.graph.delta import parse_page
from deltasync.models import Kind, Link, LinkStatus, MatchedBy, MemberChange, MirrorObject, Removed
from deltasync.plan.actions import Action, GroupSet, ObjectPlan, Op
from deltasync.plan.groups import (
    GroupSettings,
    build_view,
    match_group,
    plan_group,
    plan_user_groups,
)
from deltasync.plan.threshold import apply_threshold

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def group(gid: str, name: str, removed: Removed | None = None) -> MirrorObject:
    return MirrorObject(gid, {"id": gid, "displayName": name}, removed, 2, 1)


def glink(gid: str, eliza_id: int, name: str, status: LinkStatus = LinkStatus.ACTIVE) -> Link:
    pushed = {"name": name, "description": "", "remote_key": gid}
    return Link(gid, Kind.GROUP, eliza_id, MatchedBy.CREATED, NOW, pushed, 1, status)


def ulink(eid: str, managed: list[int]) -> Link:
    pushed = {"username": f"{eid}@firma.ch", "managed_groups": managed}
    return Link(eid, Kind.USER, 70, MatchedBy.CREATED, NOW, pushed, 1)


def test_members_delta_is_parsed_with_types_and_removals() -> None:
    page = parse_page(
        {
            "value": [
                {
                    "id": "g1",
                    "displayName": "Pflege",
                    "members@delta": [
                        {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                        {"@odata.type": "#microsoft.graph.group", "id": "g2"},
                        {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {}},
                    ],
                },
                {"id": "g3", "displayName": "Leer"},
            ],
            "@odata.deltaLink": "https://graph/groups/delta?$deltatoken=x",
        },
        "https://graph/groups/delta",
    )
    first, second = page.changes
    assert first.props == {"id": "g1", "displayName": "Pflege"}
    assert first.members == (
        MemberChange("u1", "user"),
        MemberChange("g2", "group"),
        MemberChange("u2", "user", removed=True),
    )
    assert second.members is None


def test_include_takes_globs_in_any_case_or_ids() -> None:
    scope = GroupSettings(include=("abteilung *", "0000-ID"))
    assert scope.in_scope("x", "Abteilung Pflege")
    assert scope.in_scope("0000-id", "Anything")
    assert not scope.in_scope("x", "Kader")
    assert GroupSettings().in_scope("x", "Kader")


def test_a_group_is_created_renamed_emptied_or_deleted() -> None:
    settings = GroupSettings(include=("Abteilung *",))
    (create,) = plan_group(group("g1", "Abteilung Pflege"), None, settings).actions
    assert create.op == Op.CREATE
    assert create.fields == {"name": "Abteilung Pflege", "description": "", "remote_key": "g1"}
    (rename,) = plan_group(
        group("g1", "Abteilung Betreuung"), glink("g1", 9, "Abteilung Pflege"), settings
    ).actions
    assert (rename.op, rename.fields) == (Op.UPDATE, {"name": "Abteilung Betreuung"})
    assert (
        plan_group(
            group("g1", "Abteilung Pflege"), glink("g1", 9, "Abteilung Pflege"), settings
        ).actions
        == ()
    )
    (empty,) = plan_group(group("g1", "Kader"), glink("g1", 9, "Kader"), settings).actions
    assert empty.op == Op.EMPTY
    gone = group("g1", "Abteilung Pflege", Removed.DELETED)
    deleting = GroupSettings(delete_removed=True)
    (delete,) = plan_group(
        gone, glink("g1", 9, "Abteilung Pflege", LinkStatus.DEACTIVATED), deleting
    ).actions
    assert delete.op == Op.DELETE


def test_matching_takes_remote_key_then_a_free_name_and_never_a_name_held_by_another_key() -> None:
    rows = [
        {"id": 5, "name": "Kader", "remote_key": None},
        {"id": 6, "name": "Pflege", "remote_key": "other"},
        {"id": 7, "name": "Alt", "remote_key": "g9"},
    ]
    assert match_group("g9", "Neu", rows)[:2] == (rows[2], MatchedBy.HARD)
    assert match_group("g1", "Kader", rows)[:2] == (rows[0], MatchedBy.NAME)
    target, how, conflict = match_group("g2", "Pflege", rows)
    assert target is None and how is None and conflict is not None and "other" in conflict
    assert match_group("g3", "Neu", rows) == (None, None, None)


def test_flattening_is_cycle_safe_and_says_through_which_group() -> None:
    groups = [group(g, g.upper()) for g in ("a", "b", "c", "n", "s")]
    links = {g.id: glink(g.id, i + 10, g.id.upper()) for i, g in enumerate(groups)}
    edges = [("a", "b"), ("b", "c"), ("n", "s"), ("s", "n")]  # a ⊃ b ⊃ c; n ⊃ s ⊃ n
    flat = build_view("flatten", groups, links, edges, GroupSettings())
    assert flat.memberships({"c"}) == {"c": None, "b": "c", "a": "c"}
    assert flat.memberships({"n"}) == {"n": None, "s": "n"}
    direct = build_view("direct", groups, links, edges, GroupSettings())
    assert direct.memberships({"c"}) == {"c": None}


def test_a_users_groups_keep_every_unmanaged_group_and_change_only_when_the_set_does() -> None:
    groups = [group("a", "A"), group("b", "B")]
    view = build_view(
        "direct", groups, {"a": glink("a", 10, "A"), "b": glink("b", 11, "B")}, [], GroupSettings()
    )
    assert plan_user_groups(None, ulink("u", [10]), {"a"}, view, None, "u@firma.ch") is None
    moved = plan_user_groups(None, ulink("u", [10]), {"b"}, view, 1, "u@firma.ch")
    assert moved is not None
    value = moved.fields["groups"]
    assert isinstance(value, GroupSet) and value.dropped == (10,)
    assert moved.shown_groups == ("+B", "−A")
    assert value.resolve([1, 2, 10, 99]) == [1, 2, 11, 99]  # eliza_users, orgunit, hand-made


def test_membership_removals_count_toward_the_threshold_and_are_held_alone() -> None:
    managed = frozenset({10, 11})

    def plan(eid: str) -> ObjectPlan:
        value = GroupSet((11,), managed, dropped=(10,))
        a = Action(
            eid,
            Kind.USER,
            Op.UPDATE,
            7,
            {"groups": value},
            {},
            "r",
            eid,
            {"managed_groups": [11]},
            shown_groups=("+B", "−A"),
        )
        return ObjectPlan(eid, 2, eid, "active", (a,))

    plans = [plan(f"u{i}") for i in range(3)]
    result = apply_threshold(plans, linked_users=100, max_count=2, max_percent=0, allow=False)
    assert result.threshold_reason == (
        "0 deactivations and 3 group membership removals exceed max_deactivations=2"
    )
    assert len(result.held) == 3
    kept = result.objects[0].actions[0]
    value = kept.fields["groups"]
    assert isinstance(value, GroupSet) and value.members == (10, 11) and not value.dropped
    assert kept.shown_groups == ("+B",)
    released = apply_threshold(plans, linked_users=100, max_count=2, max_percent=0, allow=True)
    assert released.held == ()
