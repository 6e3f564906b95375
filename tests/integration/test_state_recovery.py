"""The state database is a cache of facts ELIZA and Graph also hold: losing it, damaging it,
locking it or leaving a dead lease in it loses nothing, duplicates nothing, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, in_scope, pick, sync, writes

from deltasync import service
from deltasync.config import Config
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=40, seed=3, page_size=15)


def state_file(config: Config) -> Path:
    url = config.state.url
    assert url.startswith("sqlite:///"), url
    return Path(url.removeprefix("sqlite:///"))


def test_a_failed_object_is_retried_by_the_very_next_run_and_state_says_so(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.eliza.fail_next(method="POST", path_contains="/api/user", status=400, n=1)
    first = sync(config)
    assert first.exit_code == 3, first.as_dict()
    (failed,) = service.state_failures(config)
    assert failed["next_try"] == "the next run"

    second = sync(config)  # seconds later, far within any backoff

    assert second.exit_code == 0, second.as_dict()
    assert len(eliza_user_of(sandbox, failed["entra_id"])) == 1
    assert service.state_failures(config) == []


def test_an_object_failing_again_is_tried_later_and_state_says_when(
    sandbox: Sandbox, config: Config
) -> None:
    for _ in range(2):  # the retry is the second run's only POST
        sandbox.eliza.fail_next(method="POST", path_contains="/api/user", status=400, n=1)
        assert sync(config).exit_code == 3
    (failed,) = service.state_failures(config)
    assert failed["attempts"] == 2
    assert failed["next_try"].startswith("the first run after ")
    sandbox.eliza.reset_log()
    assert sync(config).counts() == {}
    assert eliza_user_of(sandbox, failed["entra_id"]) == []


@pytest.mark.parametrize("orgunits", [False, True], ids=["users+persons", "with-orgunits"])
def test_a_deleted_state_database_loses_nothing_and_duplicates_nothing(
    sandbox: Sandbox, config: Config, orgunits: bool
) -> None:
    assert sync(config, orgunit_sync=orgunits).exit_code == 0
    changed, leaving = pick(sandbox, 2)
    sandbox.graph.update_user(leaving["id"], accountEnabled=False)
    assert sync(config, orgunit_sync=orgunits).exit_code == 0
    sandbox.graph.update_user(changed["id"], jobTitle="Leitung Hauswirtschaft")
    users, persons = dict(sandbox.eliza.users), dict(sandbox.eliza.persons)
    for path in state_file(config).parent.glob(state_file(config).name + "*"):
        path.unlink()  # the file and its -wal/-shm
    sandbox.eliza.reset_log()

    report = sync(config, orgunit_sync=orgunits)

    assert report.exit_code == 0, report.as_dict()
    assert report.round_kind == "full"
    sent = writes(sandbox)
    assert [w.method for w in sent if w.method == "POST"] == []
    assert [(w.method, w.json) for w in sent] == [("PATCH", {"position": "Leitung Hauswirtschaft"})]
    assert sorted(sandbox.eliza.users) == sorted(users)
    assert sorted(sandbox.eliza.persons) == sorted(persons)
    assert sandbox.eliza.users == {**users, **{k: sandbox.eliza.users[k] for k in users}}
    for entra in in_scope(sandbox):
        assert len(eliza_user_of(sandbox, entra["id"])) == 1
        assert len(eliza_person_of(sandbox, entra["id"])) == 1
    (gone,) = eliza_user_of(sandbox, leaving["id"])
    assert gone["is_active"] is False  # still archived, not touched again
    summary = service.state_summary(config)
    assert summary["links"]["user"]["active"] == len(in_scope(sandbox))
    sandbox.eliza.reset_log()
    assert sync(config, orgunit_sync=orgunits).counts() == {}
    assert sandbox.eliza.write_count == 0
