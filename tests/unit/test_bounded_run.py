"""A big run holds counts and the first actions, not a dict per action; every action still
reaches the sink (``--json-actions``, a dry run's listing) and the threshold sees them all."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from engine_fakes import FakeSource, FakeTarget, Names, Prop, engine, entra_user, settings
from fake_store import NOW, FakeStore

from deltasync import fields as f
from deltasync.cli.render import ActionFile
from deltasync.engine import Engine, RunOptions
from deltasync.engine.report import KEEP_ACTIONS
from deltasync.models import ObjectChange

USERS = 300  # a user and a person each: 600 actions, more than the report holds


def test_a_big_run_holds_the_first_actions_counts_all_and_streams_every_one() -> None:
    store, target = FakeStore(), FakeTarget()
    source = FakeSource({"users": [entra_user(f"u{i:04d}") for i in range(USERS)]})
    sink = ActionFile()
    try:
        report = asyncio.run(engine(store, source, target).run(RunOptions(actions_sink=sink)))
        streamed = list(report.actions.every())
    finally:
        sink.close()
    assert report.exit_code == 0
    assert len(report.actions.kept) == KEEP_ACTIONS < 2 * USERS
    assert report.counts() == {"user": {"create": USERS}, "person": {"create": USERS}}
    data: dict[str, Any] = report.as_dict()
    assert len(data["actions"]) == KEEP_ACTIONS
    assert (data["actions_total"], data["actions_truncated"]) == (2 * USERS, 2 * USERS - 500)
    assert len(streamed) == 2 * USERS
    assert {a["entra_id"] for a in streamed} == {f"u{i:04d}" for i in range(USERS)}


BATCH = 10


def batched(store: FakeStore, target: FakeTarget, source: FakeSource, **kw: Any) -> Engine:
    """An engine over the fakes that plans and pushes ``BATCH`` objects at a time."""
    base = settings()
    ctx = replace(base.ctx, person_mapping={**base.ctx.person_mapping, **kw})
    run = Engine(
        store,
        source,
        target,
        replace(base, ctx=ctx, batch_size=BATCH),
        resources=Names,
        holder="test",
        now=lambda: NOW,
    )
    run.run_id = 1
    return run


def test_a_run_bigger_than_a_batch_reads_in_batches_and_converges_managers_included() -> None:
    users = [entra_user(f"u{i:03d}", manager=f"u{(i + 25) % 35:03d}") for i in range(35)]
    store, target = FakeStore(), FakeTarget()
    source = FakeSource({"users": users})
    report = asyncio.run(
        batched(store, target, source, **{f.MANAGER: Prop("manager")}).run(RunOptions())
    )
    assert report.exit_code == 0
    assert [after for _, after, _ in store.dirty_reads] == [None, "u009", "u019", "u029"]
    assert {limit for _, _, limit in store.dirty_reads} == {BATCH}
    persons = {p["remote_key"]: p for p in target.rows[Names.PERSON].values()}
    assert len(persons) == len(target.rows[Names.USER]) == 35
    for i in range(35):  # u000's manager u025 was created three batches later
        boss = persons[f"u{(i + 25) % 35:03d}"]
        assert persons[f"u{i:03d}"][f.MANAGER] == boss["id"]
    assert all(o.settled_version == o.version for _, o in store.mirror.values())
    assert store.meta["plan_fingerprint"] == "fp"
    again = asyncio.run(batched(store, target, FakeSource({})).run(RunOptions()))
    assert again.counts() == {} and again.eliza_writes == 0


def _disabled(users: list[ObjectChange], count: int) -> list[ObjectChange]:
    return [
        ObjectChange(u.id, {**u.props, "accountEnabled": False}) if i < count else u
        for i, u in enumerate(users)
    ]


def test_a_mass_deactivation_over_several_batches_is_held_and_released_as_a_whole() -> None:
    users = [entra_user(f"u{i:03d}") for i in range(40)]  # four batches
    store, target = FakeStore(), FakeTarget()
    asyncio.run(batched(store, target, FakeSource({"users": users})).run(RunOptions()))
    gone = _disabled(users, 30)  # 30 > max_deactivations=25, 10 in each of three batches

    held = asyncio.run(
        batched(store, target, FakeSource({"users": gone})).run(RunOptions(full=True))
    )
    assert len(store.dirty_reads) > 2  # read in batches
    assert held.exit_code != 0 and held.threshold is not None
    assert len(held.held) == 30
    assert all(u.get("is_active", True) for u in target.rows[Names.USER].values())
    assert sum(o.version > o.settled_version for _, o in store.mirror.values()) == 30

    store.dirty_reads.clear()
    done = asyncio.run(
        batched(store, target, FakeSource({"users": gone})).run(
            RunOptions(full=True, allow_deletes=True)
        )
    )
    assert len(store.dirty_reads) > 2
    assert done.exit_code == 0 and not done.held
    assert sum(not u.get("is_active", True) for u in target.rows[Names.USER].values()) == 30
    assert all(o.settled_version == o.version for _, o in store.mirror.values())
