"""The ELIZA lookup cache: prefetched and created rows are found by their keys, in a file of
their own (200,000 rows as Python dicts took 280 MB of a first sync), and go with the run."""

from __future__ import annotations

import asyncio

import pytest
from engine_fakes import FakeTarget, Names

from deltasync.engine.directory import Directory
from deltasync.models import Kind
from deltasync.state.scratch import ScratchRows


def directory(target: FakeTarget, made: list[ScratchRows]) -> Directory:
    def rows() -> ScratchRows:
        made.append(ScratchRows())
        return made[-1]

    keep = {Kind.USER: {"first_name"}, Kind.PERSON: {"position"}}
    return Directory(target, Names, keep, rows=rows)


def test_prefetched_and_created_rows_are_found_by_their_keys_without_a_request() -> None:
    target = FakeTarget()
    target.rows[Names.USER][7] = {
        "id": 7,
        "username": "Anna.Muster@Firma.ch",
        "email": "anna@firma.ch",
        "remote_key": "rk-anna",
        "first_name": "Anna",
        "notes": "not kept: the sync neither writes nor matches by it",
    }
    target.rows[Names.PERSON][3] = {"id": 3, "user": 7, "remote_key": None, "position": "Chef"}
    made: list[ScratchRows] = []
    d = directory(target, made)
    asyncio.run(d.prefetch())
    calls = len(target.calls)

    found = asyncio.run(d.users_by("username", "anna.muster@firma.CH"))
    assert [u["id"] for u in found] == [7] and "notes" not in found[0]
    assert asyncio.run(d.users_by("first_name", "Anna"))[0]["id"] == 7  # no key: a scan
    assert [p["position"] for p in asyncio.run(d.persons_by("user", 7))] == ["Chef"]
    assert asyncio.run(d.persons_by("user", "7")) == []  # an id is not its text

    d.remember(Kind.USER, {"id": 8, "username": "ben@firma.ch", "remote_key": "rk-ben"})
    d.remember(Kind.USER, {"id": 7, "username": "anna.neu@firma.ch", "remote_key": "rk-anna"})
    assert [u["id"] for u in asyncio.run(d.users_by("remote_key", "rk-ben"))] == [8]
    assert asyncio.run(d.users_by("username", "anna.muster@firma.ch")) == []  # replaced
    assert [u["id"] for u in asyncio.run(d.users_by("remote_key", "rk-anna"))] == [7]
    assert len(target.calls) == calls  # every lookup answered from the held rows

    assert made[0].count(Kind.USER.value) == 2
    d.close()
    assert not d.prefetched
    with pytest.raises(Exception, match="closed"):
        made[0].count(Kind.USER.value)


def test_without_a_prefetch_each_lookup_asks_eliza() -> None:
    target = FakeTarget()
    target.rows[Names.USER][7] = {"id": 7, "username": "anna@firma.ch"}
    d = directory(target, [])
    assert [u["id"] for u in asyncio.run(d.users_by("username", "anna@firma.ch"))] == [7]
    assert target.calls == [("find", "user")]
    d.remember(Kind.USER, {"id": 8, "username": "ben@firma.ch"})  # nothing held: no-op
    d.close()
