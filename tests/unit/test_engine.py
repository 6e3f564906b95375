"""The engine against in-memory fakes of its ports: commit order, dry run, resources, lease."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_fakes import Crash, FakeSource, FakeTarget, Names, engine, entra_user
from fake_store import FakeStore

from deltasync.engine import ResourceSpec, RunOptions, RunReport
from deltasync.errors import LeaseHeldError, ObjectRejectedError
from deltasync.models import Kind, LinkStatus, MatchedBy

ANNA = entra_user("anna")


def run(store: FakeStore, target: FakeTarget, *specs: ResourceSpec, **opts: Any) -> RunReport:
    others = {s.name: [entra_user(s.name)] for s in specs if s.name != "users"}
    source = FakeSource({"users": [ANNA], **others})
    return asyncio.run(engine(store, source, target, *specs).run(RunOptions(**opts)))


def converged(store: FakeStore, target: FakeTarget) -> None:
    """One ELIZA user and person for Anna, both linked, her version settled, plan current."""
    assert len(target.rows[Names.USER]) == len(target.rows[Names.PERSON]) == 1
    assert {k for (_, k) in store.links} == {Kind.USER, Kind.PERSON}
    assert target.created(Names.USER) == target.created(Names.PERSON) == 1
    _, obj = store.mirror["anna"]
    assert obj.settled_version == obj.version
    assert store.meta["plan_fingerprint"] == "fp"
    assert not store.failed


def test_a_first_run_records_in_the_commit_order() -> None:
    events: list[str] = []
    store, target = FakeStore(events=events), FakeTarget(events=events)
    report = run(store, target)
    assert report.exit_code == 0
    assert [e for e in events if e != "eliza.find"] == [
        "state.set_meta",  # ELIZA's fields checked for this mapping, before any write
        "state.journal",  # user: "creating", committed with ...
        "state.journal",  # ... the person's, taken ahead (the batch's next create)
        "eliza.create",  # POST
        "eliza.create",  # the person's: its marker is committed already
        "state.journal",  # user and person: "create", with their links, in one transaction
        "state.journal",
        "state.save_link",
        "state.save_link",
        "state.settle",
        "state.set_meta",  # the plan fingerprint, last
    ]
    assert [e.action for e in store.entries] == ["creating", "creating", "create", "create"]
    assert [m for m, _ in target.calls if m == "create"] == ["create", "create"]
    converged(store, target)


@pytest.mark.parametrize(
    ("where", "step"),
    [
        ("store", "journal"),  # the "creating" marker
        ("target", "create"),  # the POST never reached ELIZA
        ("target", "create:after"),  # ELIZA created it, the response was lost
        ("store", "save_link"),  # link + journal
        ("store", "settle"),
        ("store", "set_meta"),  # the plan fingerprint
    ],
)
def test_a_crash_at_any_step_converges_on_the_next_run(where: str, step: str) -> None:
    store, target = FakeStore(), FakeTarget()
    (store.fail if where == "store" else target.fail)[step] = Crash(step)
    with pytest.raises(Crash):
        run(store, target)
    run(store, target)
    converged(store, target)


def test_a_lost_link_commit_leaves_the_marker_and_the_rerun_links_without_a_second_post() -> None:
    store, target = FakeStore(), FakeTarget()
    store.fail["save_link"] = Crash("save_link")
    with pytest.raises(Crash):
        run(store, target)
    # the person's marker was taken ahead with the user's; after the crash it stays
    assert [(e.kind, e.action) for e in store.entries] == [
        (Kind.USER, "creating"),
        (Kind.PERSON, "creating"),
    ]
    assert not store.links
    assert len(target.rows[Names.USER]) == 1  # ELIZA has it, the state does not know
    report = run(store, target)
    assert target.created(Names.USER) == 1
    user = store.links[("anna", Kind.USER)]
    assert (user.matched_by, user.eliza_id) == (MatchedBy.CREATED, 1)
    assert [a["op"] for a in report.actions if a["kind"] == "user"] == ["match"]


def test_a_rejected_post_is_recorded_and_cleared_once_it_goes_through() -> None:
    store, target = FakeStore(), FakeTarget()
    target.fail["create"] = ObjectRejectedError("bad username", status=400)
    report = run(store, target)
    assert report.exit_code == 3
    assert [e.action for e in store.entries] == ["creating"]  # no link, no person attempt
    assert set(store.failed) == {("anna", Kind.USER)}
    _, obj = store.mirror["anna"]
    assert obj.settled_version == 0
    store.fail["clear_failure"] = Crash("clear_failure")
    with pytest.raises(Crash):
        run(store, target)
    run(store, target)
    converged(store, target)


def test_a_dry_run_records_nothing() -> None:
    store, target = FakeStore(), FakeTarget(dry=True)
    report = run(store, target, dry_run=True)
    assert store.recorded() == []
    assert set(store.calls) == {"begin_round", "apply_page"}  # the mirror keeps what it read
    assert {a["result"] for a in report.actions} == {"planned"}
    assert {(a["kind"], a["op"]) for a in report.actions} == {
        ("user", "create"),
        ("person", "create"),
    }


def test_each_resource_has_its_own_cursor_and_round() -> None:
    store, target = FakeStore(), FakeTarget()
    specs = (ResourceSpec("users", ("id", "mail")), ResourceSpec("guests", ("id",)))
    report = run(store, target, *specs)
    assert set(store.cursors) == {"users", "guests"}
    users, guests = store.cursors["users"], store.cursors["guests"]
    assert users.select_fingerprint != guests.select_fingerprint
    assert (users.delta_link, guests.delta_link) == (
        "https://graph/users/delta?token=1",
        "https://graph/guests/delta?token=1",
    )
    assert store.calls.count("begin_round") == 2
    assert report.pages == 2
    assert {e.entra_id for e in store.entries} == {"anna", "guests"}
    again = run(store, target, *specs)  # both resume from their own delta link
    assert (again.round_kind, again.pages, again.actions) == ("incremental", 2, [])


def test_a_lost_lease_stops_the_run_before_anything_is_pushed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("deltasync.engine.context.LEASE_RENEW_S", 0.0)
    store, target = FakeStore(lease_ok=False), FakeTarget()
    with pytest.raises(LeaseHeldError):
        run(store, target)
    assert target.calls == []
    assert store.recorded() == []


def test_a_protected_link_is_left_alone() -> None:
    store, target = FakeStore(), FakeTarget()
    run(store, target)
    user = store.links[("anna", Kind.USER)]
    target.rows[Names.USER][user.eliza_id]["is_superuser"] = True
    report = run(store, target, verify_target=True)
    assert store.links[("anna", Kind.USER)].status == LinkStatus.PROTECTED
    assert [c["entra_id"] for c in report.conflicts] == ["anna"]
    assert not [m for m, _ in target.calls if m in ("update", "delete")]


def test_the_ledger_writes_behind_in_the_commit_order_with_one_transaction_per_batch() -> None:
    class Batching(FakeStore):
        def batch(self):  # type: ignore[no-untyped-def]
            self.events.append("batch")
            return super().batch()

    events: list[str] = []
    store, target = Batching(events=events), FakeTarget(events=events)
    assert run(store, target).exit_code == 0
    assert [e for e in events if e != "eliza.find"] == [
        "state.set_meta",  # ELIZA's fields checked for this mapping, before any write
        "batch",
        "state.journal",  # user: "creating", committed before its POST, and with it ...
        "state.journal",  # ... the person's, taken ahead: the person's POST waits for nothing
        "eliza.create",
        "eliza.create",
        "batch",  # the end of the push: what is left
        "state.journal",
        "state.journal",
        "state.save_link",
        "state.save_link",
        "state.settle",
        "state.set_meta",
    ]
    converged(store, target)


def _adopting_store(n: int, linked: int, matched_by: MatchedBy) -> FakeStore:
    from datetime import UTC, datetime

    from deltasync.models import Link, MirrorObject

    store = FakeStore()
    for i in range(n):
        oid = f"u{i:03d}"
        data = {"id": oid, "userPrincipalName": f"{oid}@firma.ch", "accountEnabled": True}
        store.mirror[oid] = ("users", MirrorObject(oid, data, None, 1, 1))
        if i < linked:
            how = matched_by if i == 0 else MatchedBy.CREATED
            at = datetime(2026, 12, 1, tzinfo=UTC)
            store.links[(oid, Kind.USER)] = Link(oid, Kind.USER, 100 + i, how, at, {}, 1)
    return store


def test_the_adoption_check_reads_the_mirror_in_batches_and_not_at_all_without_a_soft_match() -> (
    None
):
    """It runs after every run that changed something until it holds: at 100,000 users,
    every link and object held at once cost ~200 MB of each such run."""
    from engine_fakes import settings

    from deltasync.engine.adoption import all_adopted

    spec = ResourceSpec("users", ("id", "userPrincipalName"))
    cfg = settings(spec)
    created_only = _adopting_store(7, 7, MatchedBy.CREATED)
    assert all_adopted(created_only, cfg, batch=3) is False
    assert created_only.dirty_reads == []  # no soft match: the mirror is not read at all

    adopted = _adopting_store(7, 7, MatchedBy.SOFT_USERNAME)
    assert all_adopted(adopted, cfg, batch=3) is True
    assert [(after, limit) for _, after, limit in adopted.dirty_reads] == [
        (None, 3),
        ("u002", 3),
        ("u005", 3),
        ("u006", 3),
    ]

    one_left = _adopting_store(7, 6, MatchedBy.SOFT_USERNAME)  # u006, in the last batch
    assert all_adopted(one_left, cfg, batch=3) is False


def test_creating_markers_are_committed_in_groups_each_before_its_post(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a store that allows it, the markers commit in a worker thread while the other
    creates go on; those arriving meanwhile share the next commit. Each is committed before
    its POST is sent, and the records still reach the store in the order they were made.
    Markers are not taken ahead here, so the grouping alone is what cuts the commits."""
    import threading
    import time
    from contextlib import contextmanager

    from deltasync.engine import ledger

    monkeypatch.setattr(ledger, "AHEAD_MAX", 0)

    class SlowCommits(FakeStore):
        threadsafe = True

        def __init__(self) -> None:
            super().__init__()
            self.committed: set[str] = set()
            self.commits = 0
            self.threads: set[int] = set()

        @contextmanager
        def batch(self):  # type: ignore[no-untyped-def,override]
            yield
            time.sleep(0.004)  # the commit's round trip and WAL write
            self.threads.add(threading.get_ident())
            self.commits += 1
            self.committed |= {e.entra_id for e in self.entries if e.action == "creating"}

    class Checking(FakeTarget):
        async def create(self, resource: str, fields: Any) -> dict[str, Any]:
            assert fields["remote_key"] in store.committed, "POST before its marker committed"
            await asyncio.sleep(0.003)
            return await super().create(resource, fields)

    store, target = SlowCommits(), Checking()
    users = [entra_user(f"u{i:02d}") for i in range(30)]
    report = asyncio.run(engine(store, FakeSource({"users": users}), target).run(RunOptions()))
    assert report.exit_code == 0
    assert target.created(Names.USER) == target.created(Names.PERSON) == 30
    markers = [e for e in store.entries if e.action == "creating"]
    assert len(markers) == 60
    assert store.commits < 40  # one commit per create would be 60 and more
    assert store.threads - {threading.get_ident()}  # markers committed off the event loop
    # per object, the order of the records is kept: marker, create (user, then person)
    for oid in {e.entra_id for e in store.entries}:
        mine = [(e.kind, e.action) for e in store.entries if e.entra_id == oid]
        assert mine == [
            (Kind.USER, "creating"),
            (Kind.USER, "create"),
            (Kind.PERSON, "creating"),
            (Kind.PERSON, "create"),
        ]


def test_markers_taken_ahead_cut_the_commits_and_leave_no_trace_of_a_create_not_sent() -> None:
    """A commit takes the markers of the batch's next creates along (a first sync committed
    once per create: ~3 ms of a worker's turn each on PostgreSQL). Each marker is still
    committed before its POST; one taken ahead of an object that is then matched, or whose
    earlier action failed, neither counts as this run's pending create (the match stays a
    hard one) nor stays in the journal."""
    from contextlib import contextmanager

    class CountingCommits(FakeStore):
        threadsafe = True

        def __init__(self) -> None:
            super().__init__()
            self.committed: set[tuple[str, Kind]] = set()
            self.commits = 0

        @contextmanager
        def batch(self):  # type: ignore[no-untyped-def,override]
            yield
            self.commits += 1
            self.committed |= {(e.entra_id, e.kind) for e in self.entries if e.action == "creating"}

    class Checking(FakeTarget):
        async def create(self, resource: str, fields: Any) -> dict[str, Any]:
            kind = Kind.USER if resource == Names.USER else Kind.PERSON
            key = (fields["remote_key"], kind)
            assert key in store.committed, f"POST of {key} before its marker committed"
            if fields["remote_key"] == "u007" and kind == Kind.USER:
                raise ObjectRejectedError("bad username", status=400)
            await asyncio.sleep(0.001)
            return await super().create(resource, fields)

    store, target = CountingCommits(), Checking()
    held = {"u003", "u150"}  # ELIZA holds their persons already (remote_key)
    for i, oid in enumerate(sorted(held)):
        target.rows[Names.PERSON][900 + i] = {
            "id": 900 + i,
            "remote_key": oid,
            "vorname": oid.capitalize(),
            "nachname": "Muster",
        }
    users = [entra_user(f"u{i:03d}") for i in range(300)]
    report = asyncio.run(engine(store, FakeSource({"users": users}), target).run(RunOptions()))
    assert report.exit_code == 3  # u007's user was refused
    assert target.created(Names.USER) == 299
    assert target.created(Names.PERSON) == 299 - len(held)
    assert store.commits < 30  # one per create would be ~600
    for oid in held:
        assert store.links[(oid, Kind.PERSON)].matched_by == MatchedBy.HARD
    markers = {(e.entra_id, e.kind) for e in store.entries if e.action == "creating"}
    sent = {(f"u{i:03d}", Kind.USER) for i in range(300)}
    sent |= {(f"u{i:03d}", Kind.PERSON) for i in range(300) if f"u{i:03d}" not in held}
    assert markers == sent - {("u007", Kind.PERSON)}  # its user failed: no person attempt
