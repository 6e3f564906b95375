"""A big run holds counts and the first actions, not a dict per action; every action still
reaches the sink (``--json-actions``, a dry run's listing) and the threshold sees them all."""

from __future__ import annotations

import asyncio
from typing import Any

from engine_fakes import FakeSource, FakeTarget, engine, entra_user
from fake_store import FakeStore

from deltasync.cli.render import ActionFile
from deltasync.engine import RunOptions
from deltasync.engine.report import KEEP_ACTIONS

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
