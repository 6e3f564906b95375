"""The whole job through the real msgraph-sdk, azure-identity and httpx against the sandbox on
loopback, with a real SQLite state database: the invariants of DESIGN.md, end to end."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from e2e_helpers import (
    eliza_person_of,
    eliza_user_of,
    in_scope,
    pick,
    sync,
    writes,
)

from deltasync import service
from deltasync.config import Config, load_config
from deltasync.engine import RunOptions
from deltasync.errors import BadPayloadError, LeaseHeldError, ServiceUnavailableError
from deltasync.models import Kind
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=40, seed=3, page_size=15)


def test_initial_sync_creates_every_user_and_person_linked_by_entra_id(
    sandbox: Sandbox, config: Config
) -> None:
    hand_made = {k: dict(v) for k, v in sandbox.eliza.users.items()}
    report = sync(config)
    assert report.exit_code == 0, report.as_dict()
    assert report.round_kind == "full"
    scope = in_scope(sandbox)
    assert len(scope) < len(sandbox.graph.users())  # the sandbox has disabled and external users
    for entra in scope:
        (user,) = eliza_user_of(sandbox, entra["id"])
        (person,) = eliza_person_of(sandbox, entra["id"])
        assert user["username"] == entra["userPrincipalName"]
        assert user["email"] == entra.get("mail")
        assert user["is_active"] is True
        assert person["user"] == user["id"]
        assert person["nachname"] == entra["surname"]
        assert person["position"] == entra.get("jobTitle")
    in_scope_ids = {u["id"] for u in scope}
    for entra in sandbox.graph.users():
        if entra["id"] not in in_scope_ids:
            assert eliza_user_of(sandbox, entra["id"]) == []
    for uid, before in hand_made.items():
        assert sandbox.eliza.users[uid] == before  # accounts the sync does not own are untouched


def test_hire_date_is_written_as_a_zurich_calendar_date(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], employeeHireDate="2024-03-31T22:00:00Z")
    sync(config)
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert person["eintrittsdatum"] == "2024-04-01"


def test_run_with_nothing_to_do_costs_one_graph_request_and_no_eliza_request(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    report = sync(config)
    assert report.exit_code == 0
    assert sandbox.graph.request_count == 1
    assert sandbox.eliza.request_count == 0
    assert (report.graph_requests, report.eliza_requests, report.eliza_writes) == (1, 0, 0)
    assert report.round_kind == "incremental"


def test_one_changed_attribute_is_exactly_one_patch_holding_only_that_field(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], jobTitle="Leiterin Pflege")
    sandbox.eliza.reset_log()
    report = sync(config)
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert [(w.method, w.path, w.json) for w in writes(sandbox)] == [
        (
            "PATCH",
            f"/api/organisation/mitarbeitende/{person['id']}",
            {"position": "Leiterin Pflege"},
        )
    ]
    assert person["position"] == "Leiterin Pflege"
    assert report.counts() == {"person": {"update": 1}}


def test_rename_is_an_update_never_delete_and_create(sandbox: Sandbox, config: Config) -> None:
    sync(config)
    (entra,) = pick(sandbox)
    (before,) = eliza_user_of(sandbox, entra["id"])
    sandbox.graph.update_user(
        entra["id"],
        userPrincipalName="neu.name@firma.ch",
        mail="neu.name@firma.ch",
        surname="Neuname",
    )
    sandbox.eliza.reset_log()
    sync(config)
    assert {w.method for w in writes(sandbox)} == {"PATCH"}
    (after,) = eliza_user_of(sandbox, entra["id"])
    assert after["id"] == before["id"]
    assert (after["username"], after["email"], after["last_name"]) == (
        "neu.name@firma.ch",
        "neu.name@firma.ch",
        "Neuname",
    )


def test_expired_token_starts_a_full_round_by_itself_without_duplicates(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    users_before, persons_before = len(sandbox.eliza.users), len(sandbox.eliza.persons)
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], department="Hauswirtschaft")
    sandbox.graph.expire_tokens()
    sandbox.eliza.reset_log()
    report = sync(config)
    assert report.exit_code == 0
    assert report.round_kind == "full"
    assert "expired" in (report.full_round_reason or "")
    assert (len(sandbox.eliza.users), len(sandbox.eliza.persons)) == (users_before, persons_before)
    assert [w.method for w in writes(sandbox)] == ["PATCH"]
    assert eliza_person_of(sandbox, entra["id"])[0]["abteilung"] == "Hauswirtschaft"


def test_replaying_a_whole_round_changes_nothing_in_eliza(sandbox: Sandbox, config: Config) -> None:
    sync(config)
    sandbox.eliza.reset_log()
    report = sync(config, command="resync", full=True)
    assert report.round_kind == "full"
    assert report.objects_seen >= len(in_scope(sandbox))
    assert sandbox.eliza.write_count == 0
    assert report.counts() == {}


def test_lost_create_response_is_found_by_remote_key_not_duplicated(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.eliza.lose_response_next(method="POST", path_contains="/api/user")
    first = sync(config)
    assert first.exit_code == 3
    assert len(first.failures) == 1
    lost = first.failures[0]["entra_id"]
    assert len(eliza_user_of(sandbox, lost)) == 1  # ELIZA applied it, the sync never heard back
    second = sync(config)  # the very next run retries it, however soon it comes
    assert second.exit_code == 0, second.as_dict()
    assert len(eliza_user_of(sandbox, lost)) == 1
    assert len(eliza_person_of(sandbox, lost)) == 1
    assert service.state_failures(config) == []


def test_dry_run_writes_nothing_and_shows_what_the_real_run_then_does(
    sandbox: Sandbox, config: Config
) -> None:
    dry = sync(config, dry_run=True)
    assert dry.exit_code == 0
    assert sandbox.eliza.write_count == 0
    assert service.state_summary(config)["links"]["user"]["active"] == 0
    planned = {(a["entra_id"], a["kind"], a["op"]) for a in dry.actions}
    assert len(planned) == 2 * len(in_scope(sandbox))
    assert all(a["changes"] for a in dry.actions)  # every create shows its field values
    real = sync(config)
    done = {(a["entra_id"], a["kind"], a["op"]) for a in real.actions if a["result"] == "ok"}
    assert done == planned


def test_disable_archives_and_reenable_reverses_exactly(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    sync(config)
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert person["anstellungsart"] == "intern"
    sandbox.graph.disable_user(entra["id"])
    report = sync(config)
    assert report.exit_code == 0
    (user,) = eliza_user_of(sandbox, entra["id"])
    (person,) = eliza_person_of(sandbox, entra["id"])
    today = datetime.now(ZoneInfo("Europe/Zurich")).date().isoformat()
    assert user["is_active"] is False
    assert (person["anstellungsart"], person["austrittsdatum"]) == ("ehemalig", today)
    sandbox.graph.enable_user(entra["id"])
    sync(config)
    (user,) = eliza_user_of(sandbox, entra["id"])
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert user["is_active"] is True
    assert (person["anstellungsart"], person["austrittsdatum"]) == ("intern", None)


def test_deletion_threshold_holds_deactivations_and_allow_deletes_releases_them(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    strict = dataclasses.replace(
        config, deprovisioning=dataclasses.replace(config.deprovisioning, max_deactivations=2)
    )
    leavers = pick(sandbox, 4)
    for u in leavers[:3]:
        sandbox.graph.disable_user(u["id"])
    sandbox.graph.update_user(leavers[3]["id"], jobTitle="Neu")
    report = sync(strict)
    assert report.exit_code == 4
    assert {h["entra_id"] for h in report.held} == {u["id"] for u in leavers[:3]}
    assert all(eliza_user_of(sandbox, u["id"])[0]["is_active"] for u in leavers[:3])
    assert eliza_person_of(sandbox, leavers[3]["id"])[0]["position"] == "Neu"  # the rest proceeds
    held = service.state_summary(strict)["held_deactivations"]
    assert {h["entra_id"] for h in held} == {u["id"] for u in leavers[:3]}
    again = sync(strict)
    assert again.exit_code == 4  # still held on the next run, not forgotten
    released = sync(strict, allow_deletes=True)
    assert released.exit_code == 0
    assert not any(eliza_user_of(sandbox, u["id"])[0]["is_active"] for u in leavers[:3])


class FailAfter(httpx.AsyncBaseTransport):
    """Lets the first ``ok`` Graph requests through to the sandbox, then fails every page:
    an outage (503) or a page deltasync cannot read."""

    def __init__(self, sandbox: Sandbox, ok: int, failure: str = "outage") -> None:
        self.inner = httpx.MockTransport(sandbox.graph.handle)
        self.ok = ok
        self.failure = failure

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.ok <= 0 and self.failure == "bad page":
            return httpx.Response(200, json={"value": "not a list", "@odata.nextLink": "x"})
        if self.ok <= 0:
            return httpx.Response(
                503,
                headers={"Retry-After": "0"},
                json={"error": {"code": "serviceUnavailable", "message": "x"}},
            )
        self.ok -= 1
        await request.aread()
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(
    ("failure", "error"), [("outage", ServiceUnavailableError), ("bad page", BadPayloadError)]
)
def test_interrupted_full_round_deprovisions_nothing_and_the_next_run_resumes(
    sandbox: Sandbox, config: Config, failure: str, error: type[Exception]
) -> None:
    sync(config)
    (gone,) = pick(sandbox)
    sandbox.graph.hard_delete(gone["id"])  # in a full read it is simply absent
    with pytest.raises(error):
        service.run_sync(
            config,
            RunOptions(command="resync", full=True),
            seams=service.Seams(graph_transport=FailAfter(sandbox, ok=1, failure=failure)),
        )
    assert eliza_user_of(sandbox, gone["id"])[0]["is_active"] is True
    runs = service.state_runs(config)
    assert runs[0]["status"] == "failed" and runs[0]["exit_code"] == 1
    sandbox.graph.reset_log()
    report = sync(config)
    assert report.round_kind == "full"  # resumed: the rest of the same full round
    assert sandbox.graph.requests[0].query.get("$skiptoken")
    assert eliza_user_of(sandbox, gone["id"])[0]["is_active"] is False


def test_a_second_run_while_one_holds_the_lease_does_nothing(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    with service.store_for(config) as store:
        assert store.acquire_lease("other-host:1:x")
        with pytest.raises(LeaseHeldError):
            sync(config)
        store.release_lease("other-host:1:x")
    assert sync(config).exit_code == 0


def test_mapping_change_replans_from_the_mirror_without_a_full_round(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    upper = load_config(sandbox.config_path, env=sandbox.env)
    mapping = dict(upper.field_mapping.person)
    from deltasync.mapping import compile_expr

    mapping["position"] = compile_expr("jobTitle | upper")
    upper = dataclasses.replace(
        upper, field_mapping=dataclasses.replace(upper.field_mapping, person=mapping)
    )
    sandbox.graph.reset_log()
    report = sync(upper)
    assert sandbox.graph.request_count == 1
    assert report.round_kind == "incremental"
    with_title = [u for u in in_scope(sandbox) if u.get("jobTitle")]
    assert report.counts() == {"person": {"update": len(with_title)}}
    for u in with_title:
        assert eliza_person_of(sandbox, u["id"])[0]["position"] == u["jobTitle"].upper()


def test_new_selected_property_starts_a_full_round(sandbox: Sandbox, config: Config) -> None:
    sync(config)
    from deltasync.mapping import compile_expr

    mapping = {**config.field_mapping.person, "kurzzeichen": compile_expr("employeeId")}
    wider = dataclasses.replace(
        config, field_mapping=dataclasses.replace(config.field_mapping, person=mapping)
    )
    report = sync(wider)
    assert report.round_kind == "full"
    assert report.full_round_reason == "the selected Graph properties changed"
    assert len(sandbox.eliza.persons) == len(in_scope(sandbox))


def test_kill_9_during_the_push_then_a_rerun_converges_without_duplicates(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.eliza.delay_s = 0.02  # slow ELIZA down so the kill lands mid-push
    env = {**os.environ, **sandbox.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deltasync", "sync", "-c", str(sandbox.config_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while sandbox.eliza.write_count < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 15 <= sandbox.eliza.write_count < 2 * len(in_scope(sandbox))
    sandbox.eliza.delay_s = 0
    with service.store_for(config) as store:
        info = store.lease_info()
    assert info is not None and not info["expired"]  # the killed run left its lease
    remaining = datetime.fromisoformat(info["expires_at"]) - datetime.now(UTC)
    assert remaining.total_seconds() <= 120
    report = sync(config)  # its process is gone: the lease is taken over at once
    assert report.exit_code == 0, report.as_dict()
    assert f"took over the lease of {info['holder']}: that process is gone" in report.warnings
    for entra in in_scope(sandbox):
        assert len(eliza_user_of(sandbox, entra["id"])) == 1
        assert len(eliza_person_of(sandbox, entra["id"])) == 1
    assert len(sandbox.eliza.persons) == len(in_scope(sandbox))
    assert sync(config).counts() == {}


def test_state_user_shows_how_the_person_was_linked_and_its_history(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], jobTitle="Koch")
    sync(config)
    (found,) = service.state_user(config, entra["userPrincipalName"].upper())
    assert found["links"]["user"]["matched_by"] == "created"
    assert found["links"]["person"]["pushed"]["position"] == "Koch"
    actions = [(h["kind"], h["action"]) for h in found["history"]]
    assert ("person", "update") in actions and ("user", "create") in actions
    by_eliza_id = service.state_user(config, str(found["links"]["user"]["eliza_id"]))
    assert by_eliza_id[0]["entra_id"] == entra["id"]
    assert Kind.PERSON.value in found["links"]
