"""The state store against real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from deltasync.errors import ConflictError, StateStoreError
from deltasync.models import (
    DeltaPage,
    Kind,
    Link,
    MirrorObject,
    ObjectChange,
    Removed,
    RoundKind,
)
from deltasync.state import StateStore, open_store
from deltasync.state.store import PageStats, retry_delay

USERS = "users"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LONG_LINK = "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=" + "Zx9-" * 3000


def user(id_: str, removed: Removed | None = None, **props: Any) -> ObjectChange:
    return ObjectChange(id=id_, props=props, removed=removed)


def page(
    *changes: ObjectChange, next_link: str | None = None, delta: str | None = None
) -> DeltaPage:
    if next_link is None and delta is None:
        next_link = "https://graph.example/users/delta?$skiptoken=next"
    return DeltaPage(changes=changes, next_link=next_link, delta_link=delta)


def full_round(store: StateStore, *changes: ObjectChange, delta: str = "d-full") -> PageStats:
    store.begin_round(USERS, RoundKind.FULL, "fp", "https://graph.example/users/delta")
    return store.apply_page(USERS, page(*changes, delta=delta), replace=True)


def incremental(store: StateStore, *changes: ObjectChange, delta: str = "d-inc") -> PageStats:
    store.begin_round(USERS, RoundKind.INCREMENTAL, "fp", "d-previous")
    return store.apply_page(USERS, page(*changes, delta=delta), replace=False)


def obj(store: StateStore, id_: str) -> MirrorObject:
    found = store.get_object(id_)
    assert found is not None, id_
    return found


def make_link(entra_id: str, eliza_id: int, kind: Kind = Kind.USER, **kw: Any) -> Link:
    values: dict[str, Any] = {
        "matched_by": "created",
        "matched_at": T0,
        "pushed": {"username": "anna@firma.ch"},
        "pushed_version": 1,
    }
    values.update(kw)
    return Link(entra_id=entra_id, kind=kind, eliza_id=eliza_id, **values)


# ---------------------------------------------------------------------------- cursor
def test_cursor_is_none_before_the_first_round(store: StateStore) -> None:
    assert store.get_cursor(USERS) is None


def test_full_round_gets_the_next_round_number_and_its_first_url_as_progress(
    store: StateStore,
) -> None:
    before = datetime.now(UTC)
    first = store.begin_round(USERS, RoundKind.FULL, "fp1", "https://graph.example/start")
    assert first.round_seq == 1
    assert first.next_link == "https://graph.example/start"
    assert first.round_kind is RoundKind.FULL
    assert first.select_fingerprint == "fp1"
    assert first.delta_link is None
    assert first.round_started_at is not None
    assert first.round_started_at.tzinfo == UTC
    assert before <= first.round_started_at <= datetime.now(UTC)

    second = store.begin_round(USERS, RoundKind.FULL, "fp2", "https://graph.example/again")
    assert second.round_seq == 2
    assert store.get_cursor(USERS) == second


def test_incremental_round_keeps_the_round_number(store: StateStore) -> None:
    full_round(store)
    cursor = store.begin_round(USERS, RoundKind.INCREMENTAL, "fp", "d-full")
    assert cursor.round_seq == 1
    assert cursor.round_kind is RoundKind.INCREMENTAL
    assert cursor.next_link == "d-full"
    assert cursor.delta_link == "d-full"


def test_progress_marker_is_stored_with_the_page(store: StateStore) -> None:
    store.begin_round(USERS, RoundKind.FULL, "fp", "https://graph.example/start")
    store.apply_page(USERS, page(user("a", displayName="A"), next_link="p2"), replace=True)

    cursor = store.get_cursor(USERS)
    assert cursor is not None
    assert cursor.next_link == "p2"
    assert cursor.round_kind is RoundKind.FULL
    assert cursor.delta_link is None
    assert cursor.delta_committed_at is None
    assert obj(store, "a").data == {"displayName": "A"}


def test_interrupted_full_round_keeps_the_last_delta_link(store: StateStore) -> None:
    full_round(store, user("a"), delta="d-good")
    store.begin_round(USERS, RoundKind.FULL, "fp", "https://graph.example/start")
    store.apply_page(USERS, page(user("a"), next_link="p2"), replace=True)

    cursor = store.get_cursor(USERS)
    assert cursor is not None
    assert cursor.delta_link == "d-good"
    assert cursor.next_link == "p2"


def test_last_page_commits_the_delta_link_and_ends_the_round(store: StateStore) -> None:
    full_round(store, user("a"), delta="d1")
    cursor = store.get_cursor(USERS)
    assert cursor is not None
    assert (cursor.delta_link, cursor.next_link, cursor.round_kind) == ("d1", None, None)
    assert cursor.delta_committed_at is not None
    assert cursor.full_completed_at == cursor.delta_committed_at

    incremental(store, user("a", displayName="x"), delta="d2")
    after = store.get_cursor(USERS)
    assert after is not None
    assert after.delta_link == "d2"
    assert after.delta_committed_at is not None
    assert after.delta_committed_at > cursor.delta_committed_at
    assert after.full_completed_at == cursor.full_completed_at  # incremental: unchanged


def test_page_without_a_round_is_refused(store: StateStore) -> None:
    with pytest.raises(StateStoreError, match="no delta round"):
        store.apply_page(USERS, page(user("a")), replace=True)
    assert store.get_object("a") is None


def test_reset_cursor_forgets_links_but_keeps_the_round_number(store: StateStore) -> None:
    full_round(store, user("a"))
    store.begin_round("groups", RoundKind.FULL, "fp", "g-start")
    store.reset_cursor(USERS)

    cursor = store.get_cursor(USERS)
    assert cursor is not None
    assert (cursor.delta_link, cursor.next_link, cursor.round_kind) == (None, None, None)
    assert cursor.round_seq == 1
    groups = store.get_cursor("groups")
    assert groups is not None and groups.next_link == "g-start"

    store.reset_cursor(None)
    groups = store.get_cursor("groups")
    assert groups is not None and groups.next_link is None
    assert store.begin_round(USERS, RoundKind.FULL, "fp", "s").round_seq == 2


def test_links_longer_than_8000_characters_round_trip(store: StateStore) -> None:
    assert len(LONG_LINK) > 8000
    store.begin_round(USERS, RoundKind.FULL, "fp", LONG_LINK)
    cursor = store.get_cursor(USERS)
    assert cursor is not None and cursor.next_link == LONG_LINK

    store.apply_page(USERS, page(user("a"), delta=LONG_LINK + "#delta"), replace=True)
    cursor = store.get_cursor(USERS)
    assert cursor is not None and cursor.delta_link == LONG_LINK + "#delta"


# ---------------------------------------------------------------------- merge rules
def test_incremental_page_merges_property_by_property(store: StateStore) -> None:
    full_round(store, user("a", displayName="Anna", jobTitle="Pflege", mobilePhone="079"))

    incremental(store, user("a", jobTitle="Leitung", mobilePhone=None))

    assert obj(store, "a").data == {
        "displayName": "Anna",
        "jobTitle": "Leitung",
        "mobilePhone": None,
    }


def test_full_round_replaces_the_data(store: StateStore) -> None:
    full_round(store, user("a", displayName="Anna", jobTitle="Pflege"))

    full_round(store, user("a", displayName="Anna"))

    assert obj(store, "a").data == {"displayName": "Anna"}


def test_removed_change_keeps_the_data_and_records_the_reason(store: StateStore) -> None:
    full_round(store, user("a", displayName="Anna"), user("b", displayName="Beat"))

    stats = incremental(
        store, user("a", removed=Removed.CHANGED), user("b", removed=Removed.DELETED)
    )

    assert stats == PageStats(seen=2, changed=2, removed=2)
    a, b = obj(store, "a"), obj(store, "b")
    assert (a.removed, a.data) == (Removed.CHANGED, {"displayName": "Anna"})
    assert (b.removed, b.data) == (Removed.DELETED, {"displayName": "Beat"})


def test_restored_object_is_no_longer_removed(store: StateStore) -> None:
    full_round(store, user("a", displayName="Anna"))
    incremental(store, user("a", removed=Removed.CHANGED))
    removed_version = obj(store, "a").version

    incremental(store, user("a", jobTitle="Pflege"))

    restored = obj(store, "a")
    assert restored.removed is None
    assert restored.data == {"displayName": "Anna", "jobTitle": "Pflege"}
    assert restored.version > removed_version


def test_removal_of_an_unknown_object_is_recorded(store: StateStore) -> None:
    incremental(store, user("ghost", removed=Removed.DELETED))
    ghost = obj(store, "ghost")
    assert (ghost.removed, ghost.data) == (Removed.DELETED, {})


def test_same_object_twice_on_a_page_applies_both_in_order(store: StateStore) -> None:
    full_round(store, user("a", displayName="Anna", jobTitle="old"))

    stats = incremental(
        store, user("a", jobTitle="first"), user("a", mobilePhone="079", jobTitle="second")
    )

    assert stats == PageStats(seen=1, changed=1, removed=0)
    assert obj(store, "a").data == {
        "displayName": "Anna",
        "jobTitle": "second",
        "mobilePhone": "079",
    }


def test_change_and_change_back_on_one_page_is_no_change(store: StateStore) -> None:
    full_round(store, user("a", jobTitle="x"))
    version = obj(store, "a").version

    stats = incremental(store, user("a", jobTitle="y"), user("a", jobTitle="x"))

    assert stats.changed == 0
    assert obj(store, "a").version == version


def test_replaying_a_page_changes_nothing(store: StateStore) -> None:
    store.begin_round(USERS, RoundKind.FULL, "fp", "start")
    first = page(user("a", displayName="Anna"), user("b", removed=Removed.DELETED), next_link="p2")
    assert store.apply_page(USERS, first, replace=True) == PageStats(seen=2, changed=2, removed=1)
    before = store.all_objects(USERS)

    assert store.apply_page(USERS, first, replace=True) == PageStats(seen=2, changed=0, removed=0)
    assert store.all_objects(USERS) == before

    store.begin_round(USERS, RoundKind.INCREMENTAL, "fp", "d")
    later = page(user("a", displayName="Anna"), delta="d2")
    assert store.apply_page(USERS, later, replace=False).changed == 0
    assert store.all_objects(USERS) == before


def test_versions_come_from_one_store_wide_increasing_counter(store: StateStore) -> None:
    full_round(store, user("a", n=1), user("b", n=1))
    a1, b1 = obj(store, "a").version, obj(store, "b").version
    store.begin_round("groups", RoundKind.FULL, "fp", "g")
    store.apply_page("groups", page(user("g", n=1), delta="gd"), replace=True)
    g1 = obj(store, "g").version
    incremental(store, user("b", n=2))

    assert g1 > max(a1, b1)
    assert obj(store, "b").version > g1
    assert obj(store, "a").version == a1  # untouched objects keep their version


def test_json_keeps_unicode_nesting_and_none(store: StateStore) -> None:
    data = {
        "displayName": "Zoë Müller-Çelik 日本",
        "mail": None,
        "businessPhones": [],
        "proxyAddresses": ["SMTP:zoe@firma.ch", "smtp:zoë@firma.ch"],
        "onPremisesExtensionAttributes": {"extensionAttribute1": None, "n": 3, "f": 1.5},
    }
    full_round(store, user("a", **data))
    assert obj(store, "a").data == data


def test_page_with_a_non_json_value_writes_nothing(store: StateStore) -> None:
    store.begin_round(USERS, RoundKind.FULL, "fp", "start")
    bad = page(user("a", displayName="Anna"), user("b", when=datetime.now(UTC)), next_link="p2")

    with pytest.raises(StateStoreError, match="JSON"):
        store.apply_page(USERS, bad, replace=True)

    cursor = store.get_cursor(USERS)
    assert cursor is not None and cursor.next_link == "start"
    assert store.count_objects(USERS) == 0


# -------------------------------------------------------------- absent-marking
def test_completed_full_round_marks_unseen_objects_absent(store: StateStore) -> None:
    full_round(store, user("a"), user("b"), user("c"))
    incremental(store, user("d"))  # appeared between full rounds
    incremental(store, user("c", removed=Removed.CHANGED))
    b_version = obj(store, "b").version

    store.begin_round(USERS, RoundKind.FULL, "fp", "start")
    store.apply_page(USERS, page(user("a"), next_link="p2"), replace=True)
    assert store.count_objects(USERS, removed=True) == 1  # nothing absent mid-round
    stats = store.apply_page(USERS, page(delta="d"), replace=True)

    assert stats == PageStats(seen=0, changed=0, removed=0, absent=2)
    assert obj(store, "a").removed is None
    assert obj(store, "b").removed is Removed.ABSENT
    assert obj(store, "b").version > b_version
    assert obj(store, "c").removed is Removed.CHANGED  # keeps the stronger evidence
    assert obj(store, "d").removed is Removed.ABSENT


def test_unfinished_full_round_marks_nothing_absent(store: StateStore) -> None:
    full_round(store, user("a"), user("b"))
    store.begin_round(USERS, RoundKind.FULL, "fp", "start")
    store.apply_page(USERS, page(user("a"), next_link="p2"), replace=True)

    # The round is abandoned (e.g. its skip token expired); an incremental round completes.
    incremental(store, user("a", displayName="x"))

    assert store.count_objects(USERS, removed=True) == 0


def test_new_full_round_after_an_abandoned_one_counts_only_its_own_pages(
    store: StateStore,
) -> None:
    full_round(store, user("a"), user("b"))
    store.begin_round(USERS, RoundKind.FULL, "fp", "start")
    store.apply_page(USERS, page(user("a"), user("b"), next_link="p2"), replace=True)

    full_round(store, user("a"))

    assert obj(store, "b").removed is Removed.ABSENT


def test_incremental_round_never_marks_absent(store: StateStore) -> None:
    full_round(store, user("a"), user("b"))
    incremental(store, user("a", displayName="x"))
    assert store.count_objects(USERS, removed=True) == 0


def test_absent_object_returning_in_a_full_round_is_restored(store: StateStore) -> None:
    full_round(store, user("a"), user("b"))
    full_round(store, user("a"))
    assert obj(store, "b").removed is Removed.ABSENT

    full_round(store, user("a"), user("b"))
    assert obj(store, "b").removed is None


def test_absent_marking_stays_within_its_resource(store: StateStore) -> None:
    store.begin_round("groups", RoundKind.FULL, "fp", "g")
    store.apply_page("groups", page(user("g1"), delta="gd"), replace=True)
    full_round(store, user("a"))
    assert obj(store, "g1").removed is None


# A writer that resumes a full round at the stored progress marker, 100 objects a page.
CRASHING_WRITER = textwrap.dedent(
    """
    import sys
    from deltasync.models import DeltaPage, ObjectChange, RoundKind
    from deltasync.state import open_store

    store = open_store(sys.argv[1])
    cursor = store.get_cursor("users")
    if cursor is None:
        cursor = store.begin_round("users", RoundKind.FULL, "fp", "page-0")
    done = int(cursor.next_link.removeprefix("page-"))
    for k in range(done + 1, 100_000):
        changes = tuple(ObjectChange(id=f"{k:06d}-{i:03d}", props={"n": i}) for i in range(100))
        store.apply_page("users", DeltaPage(changes, f"page-{k}", None), replace=True)
    """
)


def _pages_done(store: StateStore) -> int:
    cursor = store.get_cursor(USERS)
    if cursor is None or cursor.next_link is None:
        return 0
    return int(cursor.next_link.removeprefix("page-"))


def test_crash_mid_round_leaves_whole_pages_and_their_progress_marker(
    db_url: str, store: StateStore
) -> None:
    """SIGKILL while pages are applied, three times, resuming each time: the objects are
    exactly those of the pages up to the stored progress marker, nothing lost or doubled."""
    for crash in range(3):
        start = _pages_done(store)
        proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, db_url])
        try:
            deadline = time.monotonic() + 60
            while _pages_done(store) < start + 2:
                assert proc.poll() is None, "the writer died on its own"
                assert time.monotonic() < deadline, "the writer made no progress"
                time.sleep(0.02)
            time.sleep(0.011 * (crash + 1))  # land at different points of a transaction
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

        done = _pages_done(store)
        assert done >= start + 2
        assert store.count_objects(USERS) == done * 100
        assert max(o.id for o in store.all_objects(USERS)).startswith(f"{done:06d}-")


# ------------------------------------------------------------------ dirty objects
def test_dirty_objects_are_those_changed_since_settled(store: StateStore) -> None:
    full_round(store, user("a"), user("b"), user("c"))
    assert [o.id for o in store.dirty_objects(USERS, T0)] == ["a", "b", "c"]

    for o in store.all_objects(USERS):
        store.settle(o.id, o.version)
    assert store.dirty_objects(USERS, T0) == []

    incremental(store, user("b", displayName="x"), user("c", removed=Removed.DELETED))
    assert [o.id for o in store.dirty_objects(USERS, T0)] == ["b", "c"]
    assert [o.id for o in store.dirty_objects(USERS, T0, everything=True)] == ["a", "b", "c"]


def test_dirty_objects_read_in_batches_keep_the_order_and_the_due_retries(
    store: StateStore,
) -> None:
    full_round(store, *(user(c) for c in "abcdef"))
    for o in store.all_objects(USERS):
        store.settle(o.id, o.version)
    incremental(store, user("b", displayName="x"), user("e", displayName="y"))
    store.record_failure("d", Kind.USER, "update", "error", "x", {}, obj(store, "d").version, T0)

    batches, after = [], None
    while batch := store.dirty_objects(USERS, T0, after=after, limit=2):
        batches.append([o.id for o in batch])
        after = batch[-1].id
    assert batches == [["b", "d"], ["e"]]


def test_an_idle_dirty_query_reads_only_the_unsettled_index(db_url: str) -> None:
    """The changed objects come from the partial index of unsettled rows: an idle run at
    100,000 users scanned every mirror row (0.34 s) while an OR joined the due retries."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the query plan is checked on SQLite; PostgreSQL has the same partial index")
    from sqlalchemy import create_engine, event

    opened = open_store(db_url)
    full_round(opened, *(user(f"{i:03d}") for i in range(50)))
    statements: list[tuple[str, object]] = []
    engine = opened._engine
    listen = event.listens_for(engine, "before_cursor_execute")

    @listen
    def keep(conn: object, cursor: object, stmt: str, params: object, *args: object) -> None:
        if stmt.lstrip().upper().startswith("SELECT") and "FROM mirror" in stmt:
            statements.append((stmt, params))

    opened.dirty_objects(USERS, T0)
    opened.close()
    assert statements
    plain_engine = create_engine(db_url)
    try:
        with plain_engine.connect() as conn:
            for stmt, params in statements:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params)
                plan = " ".join(str(r) for r in rows)
                # the unsettled rows' index, or a lookup of named ids; never all of a resource
                assert "ix_mirror_dirty" in plan or "(resource=? AND id=?)" in plan, (stmt, plan)
    finally:
        plain_engine.dispose()


def test_dirty_objects_read_a_batch_at_a_time_by_id_while_earlier_ones_settle(
    store: StateStore,
) -> None:
    full_round(store, *(user(c) for c in "abcde"))
    first = store.dirty_objects(USERS, T0, limit=2)
    assert [o.id for o in first] == ["a", "b"]
    for o in first:  # the push settles the batch before the next one is read
        store.settle(o.id, o.version)
    assert [o.id for o in store.dirty_objects(USERS, T0, after="b", limit=2)] == ["c", "d"]
    assert [o.id for o in store.dirty_objects(USERS, T0, after="d", limit=2)] == ["e"]
    assert [o.id for o in store.dirty_objects(USERS, T0, everything=True, after="a")] == [
        "b",
        "c",
        "d",
        "e",
    ]


def test_settle_never_moves_backwards(store: StateStore) -> None:
    full_round(store, user("a"))
    incremental(store, user("a", displayName="x"))
    current = obj(store, "a").version

    store.settle("a", current)
    store.settle("a", current - 1)

    assert obj(store, "a").settled_version == current


def test_a_first_failure_is_retried_by_the_very_next_run_however_soon(store: StateStore) -> None:
    full_round(store, user("a"), user("b"))
    a = obj(store, "a")

    failed = store.record_failure("a", Kind.USER, "create", "error", "HTTP 500", {}, a.version, T0)

    assert failed.next_retry_at == T0
    assert [o.id for o in store.dirty_objects(USERS, T0 + timedelta(seconds=30))] == ["a", "b"]


def test_an_object_failing_again_waits_for_its_retry_time(store: StateStore) -> None:
    full_round(store, user("a"), user("b"))
    a = obj(store, "a")
    store.record_failure("a", Kind.USER, "create", "error", "HTTP 500", {}, a.version, T0)

    again = store.record_failure("a", Kind.USER, "create", "error", "HTTP 500", {}, a.version, T0)

    assert again.next_retry_at == T0 + timedelta(minutes=5)
    assert [o.id for o in store.dirty_objects(USERS, T0)] == ["b"]
    assert [o.id for o in store.dirty_objects(USERS, T0 + timedelta(minutes=4))] == ["b"]
    assert [o.id for o in store.dirty_objects(USERS, T0 + timedelta(minutes=5))] == ["a", "b"]


def test_failed_object_that_changed_again_is_retried_at_once(store: StateStore) -> None:
    full_round(store, user("a"))
    for _ in range(2):  # failing again: it waits for its retry time
        store.record_failure(
            "a", Kind.USER, "update", "error", "x", {}, obj(store, "a").version, T0
        )
    assert store.dirty_objects(USERS, T0) == []

    incremental(store, user("a", displayName="fixed in Entra"))

    assert [o.id for o in store.dirty_objects(USERS, T0)] == ["a"]


def test_due_failure_makes_a_settled_object_dirty(store: StateStore) -> None:
    full_round(store, user("a"))
    a = obj(store, "a")
    store.settle("a", a.version)
    for _ in range(2):  # failing again: it waits for its retry time
        store.record_failure("a", Kind.PERSON, "update", "conflict", "x", {}, a.version, T0)

    assert store.dirty_objects(USERS, T0) == []
    assert [o.id for o in store.dirty_objects(USERS, T0 + timedelta(hours=1))] == ["a"]

    store.clear_failure("a", Kind.PERSON)
    assert store.dirty_objects(USERS, T0 + timedelta(hours=1)) == []


# ----------------------------------------------------------------- mirror lookups
def test_find_objects_by_id_upn_or_mail_ignoring_case(store: StateStore) -> None:
    full_round(
        store,
        user("3f2a-AB", userPrincipalName="Anna.Meier@Firma.ch", mail="anna@FIRMA.ch"),
        user("b", userPrincipalName="beat@firma.ch", mail=None),
    )

    def ids(query: str) -> list[str]:
        return [o.id for o in store.find_objects(query)]

    assert ids("anna.meier@firma.CH") == ["3f2a-AB"]
    assert ids(" ANNA@firma.ch ") == ["3f2a-AB"]
    assert ids("3f2a-AB") == ["3f2a-AB"]
    assert ids("BEAT@FIRMA.CH") == ["b"]
    assert ids("nobody@firma.ch") == []


def test_find_objects_follows_a_rename(store: StateStore) -> None:
    full_round(store, user("a", userPrincipalName="old@firma.ch"))
    incremental(store, user("a", userPrincipalName="new@firma.ch"))
    assert store.find_objects("old@firma.ch") == []
    assert [o.id for o in store.find_objects("NEW@firma.ch")] == ["a"]


def test_get_count_and_list_objects(store: StateStore) -> None:
    full_round(store, user("b"), user("a"))
    incremental(store, user("b", removed=Removed.DELETED))

    assert store.get_object("missing") is None
    assert [o.id for o in store.all_objects(USERS)] == ["a", "b"]
    assert store.count_objects(USERS) == 2
    assert store.count_objects(USERS, removed=False) == 1
    assert store.count_objects(USERS, removed=True) == 1
    assert store.count_objects("groups") == 0
    a = obj(store, "a")
    assert a.updated_at is not None and a.updated_at.tzinfo == UTC


# -------------------------------------------------------------------------- links
def test_link_round_trips_every_field(store: StateStore) -> None:
    saved = make_link(
        "a",
        4711,
        Kind.PERSON,
        matched_by="soft:email",
        matched_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))),
        pushed={"vorname": "Zoë", "austrittsdatum": None, "groups": [1, 2]},
        pushed_version=7,
        status="deactivated",
        saved={"anstellungsart": "intern", "austrittsdatum_set": True},
    )
    store.save_link(saved)

    loaded = store.links_for(["a"])["a"][Kind.PERSON]
    assert loaded == saved
    assert loaded.matched_at.tzinfo == UTC
    assert loaded.matched_at == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert store.link_by_eliza_id(Kind.PERSON, 4711) == saved
    assert store.link_by_eliza_id(Kind.USER, 4711) is None


def test_record_push_stores_link_and_journal_together_or_neither(store: StateStore) -> None:
    store.record_push(make_link("a", 1), 5, "a", Kind.USER, "create", 1, {"username": [None, "x"]})
    assert store.links_for(["a"])["a"][Kind.USER] == make_link("a", 1)
    (entry,) = store.journal_for("a")
    assert (entry.run_id, entry.action, entry.eliza_id) == (5, "create", 1)
    store.save_link(make_link("b", 2))
    with pytest.raises(ConflictError):  # ELIZA #2 is b's: neither link nor journal entry lands
        store.record_push(make_link("c", 2), 5, "c", Kind.USER, "match", 2, {})
    assert store.links_for(["c"]) == {}
    assert store.journal_for("c") == []
    store.record_push(None, 6, "a", Kind.USER, "end", 1, {})
    assert store.links_for(["a"]) == {}
    assert [e.action for e in store.journal_for("a")] == ["end", "create"]


def test_write_records_keeps_the_order_in_bulk_or_writes_nothing(store: StateStore) -> None:
    full_round(store, user("a", mail="a@x"), user("b", mail="b@x"))
    store.save_link(make_link("a", 1))
    store.write_records(
        [(5, "a", Kind.USER, "end", 1, {}), (5, "b", Kind.USER, "create", 2, {"mail": "b@x"})],
        [
            ("a", Kind.USER, None),  # a removal, then a save of the same key: in that order
            ("a", Kind.USER, make_link("a", 3, pushed_version=2)),
            ("b", Kind.USER, make_link("b", 2)),
            ("b", Kind.USER, make_link("b", 2, pushed={"mail": "b@x"})),
        ],
        [("a", 1), ("b", obj(store, "b").version)],
    )
    links = store.links_for(["a", "b"])
    assert (links["a"][Kind.USER].eliza_id, links["b"][Kind.USER].pushed) == (3, {"mail": "b@x"})
    assert obj(store, "b").settled_version == obj(store, "b").version
    assert obj(store, "a").settled_version == 1
    assert [e.action for e in store.journal_for("b")] == ["create"]
    with pytest.raises(ConflictError, match="already linked"):  # ELIZA #2 is b's
        store.write_records(
            [(6, "c", Kind.USER, "match", 2, {})],
            [("c", Kind.USER, make_link("c", 2))],
            [("a", obj(store, "a").version)],
        )
    assert store.links_for(["c"]) == {} and store.journal_for("c") == []
    assert obj(store, "a").settled_version == 1


def test_unjournal_deletes_only_the_named_markers_of_that_run(store: StateStore) -> None:
    rows = [
        (5, "a", Kind.USER, "creating", None, {}),
        (5, "a", Kind.PERSON, "creating", None, {}),  # taken ahead, never sent
        (5, "a", Kind.USER, "create", 1, {}),
        (4, "b", Kind.PERSON, "creating", None, {}),  # an earlier run's: a lost POST
        (5, "b", Kind.PERSON, "creating", None, {}),
    ]
    store.write_records(rows, [], [])
    store.unjournal(5, "creating", [("a", Kind.PERSON), ("b", Kind.PERSON)])
    assert [(e.kind, e.action) for e in store.journal_for("a")] == [
        (Kind.USER, "create"),
        (Kind.USER, "creating"),
    ]
    assert [(e.run_id, e.action) for e in store.journal_for("b")] == [(4, "creating")]


def test_save_link_replaces_the_existing_link(store: StateStore) -> None:
    store.save_link(make_link("a", 1))
    store.save_link(make_link("a", 2, pushed={"username": "new"}, pushed_version=3))

    assert store.all_links(Kind.USER) == [
        make_link("a", 2, pushed={"username": "new"}, pushed_version=3)
    ]
    assert store.link_by_eliza_id(Kind.USER, 1) is None


def test_linking_one_eliza_object_to_two_entra_objects_is_a_conflict(store: StateStore) -> None:
    store.save_link(make_link("a", 1))
    store.save_link(make_link("b", 1, Kind.PERSON))  # another kind: another ELIZA object

    with pytest.raises(ConflictError, match="already linked"):
        store.save_link(make_link("b", 1))

    assert store.links_for(["b"]) == {"b": {Kind.PERSON: make_link("b", 1, Kind.PERSON)}}


def test_links_for_many_objects(store: StateStore) -> None:
    for i in range(600):
        store.save_link(make_link(f"u{i:04d}", i))
    store.save_link(make_link("u0001", 9001, Kind.PERSON))

    found = store.links_for([f"u{i:04d}" for i in range(700)] + ["u0001"])

    assert len(found) == 600
    assert set(found["u0001"]) == {Kind.USER, Kind.PERSON}
    assert found["u0599"][Kind.USER].eliza_id == 599
    assert store.links_for([]) == {}


def test_count_list_and_delete_links(store: StateStore) -> None:
    store.save_link(make_link("a", 1))
    store.save_link(make_link("b", 2, status="deactivated"))
    store.save_link(make_link("c", 3, Kind.PERSON))

    assert store.count_links(Kind.USER) == 2
    assert store.count_links(Kind.USER, status="active") == 1
    assert store.count_links(Kind.USER, status="deactivated") == 1
    assert [lk.entra_id for lk in store.all_links(Kind.USER)] == ["a", "b"]

    store.delete_link("a", Kind.USER)
    store.delete_link("a", Kind.USER)  # already gone: fine
    assert [lk.entra_id for lk in store.all_links(Kind.USER)] == ["b"]
    assert store.count_links(Kind.PERSON) == 1


# ----------------------------------------------------------------------- failures
def test_retries_back_off_from_the_next_run_to_five_minutes_to_a_day() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5)] == [
        timedelta(minutes=m) for m in (0, 5, 10, 20, 40)
    ]
    assert retry_delay(10) == timedelta(minutes=5 * 256)
    assert retry_delay(11) == timedelta(hours=24)
    assert retry_delay(1000) == timedelta(hours=24)


def test_repeated_failures_count_attempts_and_space_out(store: StateStore) -> None:
    results = []
    now = T0
    for attempt in range(1, 12):
        results.append(
            store.record_failure(
                "a", Kind.USER, "create", "error", f"HTTP 500 #{attempt}", {"status": 500}, 3, now
            )
        )
        now = results[-1].next_retry_at

    first, last = results[0], results[-1]
    assert [f.attempts for f in results] == list(range(1, 12))
    assert last.first_failed_at == T0
    assert last.next_retry_at - last.last_failed_at == timedelta(hours=24)
    assert results[4].next_retry_at - results[4].last_failed_at == timedelta(minutes=40)
    assert first.next_retry_at == T0
    assert store.failures() == [last]
    assert last.message == "HTTP 500 #11"
    assert last.detail == {"status": 500}


def test_failure_times_are_stored_as_utc(store: StateStore) -> None:
    zurich_summer = timezone(timedelta(hours=2))
    local = datetime(2026, 7, 1, 10, 0, tzinfo=zurich_summer)

    recorded = store.record_failure("a", Kind.USER, "create", "error", "x", {}, 1, local)

    assert recorded.last_failed_at == local
    assert recorded.last_failed_at.tzinfo == UTC
    assert recorded.last_failed_at.hour == 8


def test_naive_datetime_is_refused(store: StateStore) -> None:
    with pytest.raises(StateStoreError, match="naive"):
        store.record_failure("a", Kind.USER, "create", "error", "x", {}, 1, datetime(2026, 1, 1))


def test_failures_listed_by_next_retry_and_per_object(store: StateStore) -> None:
    store.record_failure("b", Kind.USER, "create", "conflict", "two candidates", {}, 1, T0)
    store.record_failure("a", Kind.USER, "create", "error", "x", {}, 1, T0 + timedelta(hours=1))
    store.record_failure("b", Kind.PERSON, "create", "error", "y", {}, 1, T0 + timedelta(hours=2))

    assert [(f.entra_id, f.kind) for f in store.failures()] == [
        ("b", Kind.USER),
        ("a", Kind.USER),
        ("b", Kind.PERSON),
    ]
    assert [f.kind for f in store.failures_for("b")] == [Kind.PERSON, Kind.USER]
    store.clear_failure("b", Kind.USER)
    assert [f.kind for f in store.failures_for("b")] == [Kind.PERSON]


# ------------------------------------------------------------------ runs, journal
def test_runs_are_recorded_and_listed_newest_first(store: StateStore) -> None:
    first = store.start_run("sync", False)
    second = store.start_run("resync", True)
    store.finish_run(first, "partial", 3, {"failed": 2, "note": "Zoë", "held": None})

    runs = store.runs(10)
    assert [r.id for r in runs] == [second, first]
    latest, earlier = runs
    assert (latest.command, latest.dry_run, latest.status) == ("resync", True, "running")
    assert latest.finished_at is None and latest.exit_code is None and latest.report == {}
    assert (earlier.status, earlier.exit_code) == ("partial", 3)
    assert earlier.report == {"failed": 2, "note": "Zoë", "held": None}
    assert earlier.finished_at is not None and earlier.finished_at >= earlier.started_at
    assert store.runs(1) == [latest]


def test_journal_lists_one_objects_entries_newest_first(store: StateStore) -> None:
    run_id = store.start_run("sync", False)
    first = store.journal(run_id, "a", Kind.USER, "create", 17, {"username": [None, "anna"]})
    store.journal(run_id, "b", Kind.USER, "create", 18, {})
    last = store.journal(run_id, "a", Kind.USER, "deactivate", 17, {"is_active": [True, False]})

    entries = store.journal_for("a", 10)
    assert [e.id for e in entries] == [last, first]
    assert entries[0].changes == {"is_active": [True, False]}
    assert (entries[1].run_id, entries[1].kind, entries[1].eliza_id) == (run_id, Kind.USER, 17)
    assert entries[1].at.tzinfo == UTC
    assert [e.id for e in store.journal_for("a", 1)] == [last]


# -------------------------------------------------------------------------- lease
def test_lease_is_exclusive_until_released(store: StateStore) -> None:
    assert store.lease_info() is None
    assert store.acquire_lease("host-a:1")
    assert not store.acquire_lease("host-b:2")
    assert store.acquire_lease("host-a:1")  # its own lease: taken again

    info = store.lease_info()
    assert info is not None
    assert info["holder"] == "host-a:1"
    assert info["expired"] is False
    assert datetime.fromisoformat(info["expires_at"]) > datetime.fromisoformat(info["acquired_at"])

    store.release_lease("host-b:2")  # not the holder: nothing happens
    assert not store.acquire_lease("host-b:2")
    store.release_lease("host-a:1")
    assert store.lease_info() is None
    assert store.acquire_lease("host-b:2")


def test_only_the_holder_renews_the_lease(store: StateStore) -> None:
    assert store.acquire_lease("a", ttl_s=60)
    before = store.lease_info()
    assert before is not None

    assert not store.renew_lease("b")
    assert store.renew_lease("a", ttl_s=600)

    after = store.lease_info()
    assert after is not None
    assert after["holder"] == "a"
    assert after["expires_at"] > before["expires_at"]
    assert after["acquired_at"] == before["acquired_at"]


def test_expired_lease_can_be_taken_over(store: StateStore) -> None:
    assert store.acquire_lease("a", ttl_s=1)
    assert not store.acquire_lease("b")
    time.sleep(1.2)
    info = store.lease_info()
    assert info is not None and info["expired"] is True
    assert store.acquire_lease("b")
    assert not store.renew_lease("a")


def test_lease_of_a_holder_killed_with_sigkill_expires(db_url: str, store: StateStore) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from deltasync.state import open_store

        store = open_store(sys.argv[1])
        print("held" if store.acquire_lease("killed-host:1", ttl_s=2) else "refused", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    assert not store.acquire_lease("next-run:2")
    deadline = time.monotonic() + 10
    while not store.acquire_lease("next-run:2"):
        assert time.monotonic() < deadline, "the dead holder's lease never expired"
        time.sleep(0.2)
    info = store.lease_info()
    assert info is not None and info["holder"] == "next-run:2"


def test_concurrent_acquirers_get_exactly_one_lease(db_url: str) -> None:
    stores = [open_store(db_url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results: dict[int, bool] = {}

    def contend(i: int) -> None:
        barrier.wait()
        results[i] = stores[i].acquire_lease(f"contender-{i}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    assert len(results) == len(stores)
    assert sum(results.values()) == 1
    winner = next(i for i, won in results.items() if won)
    with open_store(db_url) as check:
        info = check.lease_info()
    assert info is not None and info["holder"] == f"contender-{winner}"


# --------------------------------------------------------------------------- meta
def test_meta_values_round_trip(store: StateStore) -> None:
    assert store.get_meta("plan_fingerprint") is None
    store.set_meta("plan_fingerprint", "abc")
    store.set_meta("plan_fingerprint", "def ü")
    assert store.get_meta("plan_fingerprint") == "def ü"


def test_version_counter_lives_in_meta_and_survives_reopening(db_url: str) -> None:
    with open_store(db_url) as first:
        full_round(first, user("a"))
        version = first.get_meta("mirror_version")
        assert version is not None and int(version) == obj(first, "a").version
    with open_store(db_url) as again:
        incremental(again, user("b"))
        assert obj(again, "b").version == int(version) + 1


@pytest.fixture
def two_stores(db_url: str) -> Iterator[tuple[StateStore, StateStore]]:
    a, b = open_store(db_url), open_store(db_url)
    yield a, b
    a.close()
    b.close()


def test_concurrent_writers_keep_versions_unique(two_stores: tuple[StateStore, StateStore]) -> None:
    """Two connections bumping the counter at once never hand out the same version."""
    a, b = two_stores
    a.begin_round(USERS, RoundKind.INCREMENTAL, "fp", "x")
    b.begin_round("groups", RoundKind.INCREMENTAL, "fp", "y")
    errors: list[BaseException] = []

    def write(store: StateStore, resource: str) -> None:
        try:
            for i in range(30):
                store.apply_page(resource, page(user(f"{resource}-{i}")), replace=False)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(a, USERS)),
        threading.Thread(target=write, args=(b, "groups")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    versions = [o.version for r in (USERS, "groups") for o in a.all_objects(r)]
    assert len(versions) == 60
    assert len(set(versions)) == 60


def test_links_are_counted_by_kind_and_status_from_an_index(db_url: str) -> None:
    """`state` and the threshold count active links; at 100,000 users a count that reads every
    row of the kind took ~0.1 s, four times per `state` (migration 0004)."""
    from sqlalchemy import create_engine, inspect, text

    opened = open_store(db_url)
    opened.close()
    engine = create_engine(db_url)
    try:
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("link")}
        assert indexes.get("ix_link_kind_status") == ["kind", "status"]
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                plan = conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT count(*) FROM link "
                        "WHERE kind = 'user' AND status = 'active'"
                    )
                ).fetchall()
            assert "COVERING INDEX ix_link_kind_status" in " ".join(str(r) for r in plan)
    finally:
        engine.dispose()
