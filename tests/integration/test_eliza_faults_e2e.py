"""Faults from ELIZA, one test per kind, through the real httpx client against the sandbox
ELIZA's fault injection: each ends with ELIZA holding exactly one user and one person per
Entra user in scope, nothing duplicated, nothing lost, and the next run converging."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, hand_delete, in_scope, pick, sync

from deltasync import service
from deltasync.config import Config
from deltasync.eliza.http import ElizaHttp
from deltasync.errors import AuthError, PermissionDeniedError, exit_code_for
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=10, seed=21, page_size=50)
PERSONS = "organisation/mitarbeitende"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without the exponential wait (Retry-After is still honoured)."""
    monkeypatch.setattr(ElizaHttp, "backoff", lambda self, attempt: 0.0)


def converged(sandbox: Sandbox, config: Config) -> None:
    """One user and one person per Entra user in scope, with the Entra values; no failures."""
    for u in in_scope(sandbox):
        (user,) = eliza_user_of(sandbox, u["id"])
        (person,) = eliza_person_of(sandbox, u["id"])
        assert (user["username"], person["position"]) == (u["userPrincipalName"], u.get("jobTitle"))
    assert service.state_failures(config) == []


def person_id(sandbox: Sandbox, entra_id: str) -> int:
    return int(eliza_person_of(sandbox, entra_id)[0]["id"])


def new_hire(sandbox: Sandbox, name: str) -> str:
    upn = f"{name}@firma.ch"
    return sandbox.graph.add_user(
        userPrincipalName=upn, mail=upn, givenName=name.title(), surname="Neu", jobTitle="Neu"
    )


def test_5xx_is_retried_and_a_lasting_outage_fails_only_that_object(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.eliza.fail_next(method="POST", path_contains=PERSONS, status=503, n=2)
    assert sync(config).exit_code == 0
    a, b = pick(sandbox, 2)
    for u in (a, b):
        sandbox.graph.update_user(u["id"], jobTitle="Neu")
    down = f"{PERSONS}/{person_id(sandbox, a['id'])}"
    sandbox.eliza.fail_next(method="PATCH", path_contains=down, status=500, n=6)
    report = sync(config)
    assert report.exit_code == 3
    assert [f["entra_id"] for f in report.failures] == [a["id"]]
    assert "500" in report.failures[0]["message"]
    assert eliza_person_of(sandbox, b["id"])[0]["position"] == "Neu"  # the others go on
    assert sync(config, retry_failed=True).exit_code == 0
    converged(sandbox, config)


def test_429_waits_for_retry_after_then_goes_on(sandbox: Sandbox, config: Config) -> None:
    sandbox.eliza.fail_next(method="POST", status=429, retry_after=1)
    started = time.monotonic()
    assert sync(config).exit_code == 0
    assert time.monotonic() - started >= 1.0
    converged(sandbox, config)


def test_a_timed_out_patch_is_resent_and_a_timed_out_post_is_looked_up_not_repeated(
    sandbox: Sandbox, config: Config
) -> None:
    impatient = dataclasses.replace(config, eliza=dataclasses.replace(config.eliza, timeout_s=0.5))
    sync(impatient)
    (a,) = pick(sandbox)
    sandbox.graph.update_user(a["id"], jobTitle="Neu")
    new = new_hire(sandbox, "zora.neu")
    slow = f"{PERSONS}/{person_id(sandbox, a['id'])}"
    sandbox.eliza.slow_next(seconds=1.5, method="PATCH", path_contains=slow)
    sandbox.eliza.slow_next(seconds=1.5, method="POST", path_contains=PERSONS)
    report = sync(impatient)
    assert report.exit_code == 3  # the POST may have been applied: not repeated blindly
    assert [f["entra_id"] for f in report.failures] == [new]
    assert eliza_person_of(sandbox, a["id"])[0]["position"] == "Neu"
    sandbox.eliza.reset_log()
    assert sync(impatient, retry_failed=True).exit_code == 0
    assert not [r for r in sandbox.eliza.requests if r.method == "POST"]  # found by remote_key
    converged(sandbox, config)


def test_409_and_400_fail_only_that_object_and_the_next_run_retries(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    bad, fine = pick(sandbox, 2)
    taken = new_hire(sandbox, "anna.doppelt")
    for u in (bad, fine):
        sandbox.graph.update_user(u["id"], surname="Neuname")
    sandbox.eliza.fail_next(
        method="POST", path_contains="api/user", status=409, body={"detail": "existiert bereits"}
    )
    uid = eliza_user_of(sandbox, bad["id"])[0]["id"]
    sandbox.eliza.fail_next(
        method="PATCH", path_contains=f"api/user/{uid}", status=400, body={"email": ["Ungültig."]}
    )
    report = sync(config)
    assert report.exit_code == 3
    failed = {f["entra_id"]: f["message"] for f in report.failures}
    assert set(failed) == {taken, bad["id"]}
    assert "409" in failed[taken] and "email: Ungültig." in failed[bad["id"]]
    assert eliza_user_of(sandbox, taken) == []  # a failed user gets no person either
    assert eliza_person_of(sandbox, fine["id"])[0]["nachname"] == "Neuname"  # the others go on
    assert sync(config, retry_failed=True).exit_code == 0
    converged(sandbox, config)


class DropAfterWrite(httpx.AsyncBaseTransport):
    """ELIZA applies the next write, then the connection drops before the answer arrives."""

    def __init__(self, sandbox: Sandbox, method: str) -> None:
        self.inner = httpx.MockTransport(sandbox.eliza.handle)
        self.method = method
        self.dropped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self.inner.handle_async_request(request)
        if request.method == self.method and not self.dropped:
            self.dropped += 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return response


def test_a_dropped_connection_after_a_write_neither_duplicates_nor_loses_it(
    sandbox: Sandbox, config: Config
) -> None:
    post = DropAfterWrite(sandbox, "POST")
    report = service.run_sync(
        config, service.RunOptions(), seams=service.Seams(eliza_transport=post)
    )
    assert post.dropped == 1 and report.exit_code == 3  # the create may have been applied
    assert sync(config, retry_failed=True).exit_code == 0  # found by remote_key, linked
    converged(sandbox, config)
    (a,) = pick(sandbox)
    sandbox.graph.update_user(a["id"], jobTitle="Neu")
    patch = DropAfterWrite(sandbox, "PATCH")
    report = service.run_sync(
        config, service.RunOptions(), seams=service.Seams(eliza_transport=patch)
    )
    assert patch.dropped == 1 and report.exit_code == 0  # re-sent: the same PATCH twice
    converged(sandbox, config)


def test_a_linked_person_deleted_by_hand_is_reported_journalled_and_created_again(
    sandbox: Sandbox, config: Config
) -> None:
    """What an administrator expects: ELIZA follows Entra, so a person the sync owns and Entra
    still has comes back; the run that finds it gone says so (exit 3, journal "gone") and the
    next run creates it again. To keep it out of ELIZA, take the user out of the scope."""
    sync(config)
    (a,) = pick(sandbox)
    hand_delete(sandbox, PERSONS, person_id(sandbox, a["id"]))
    sandbox.graph.update_user(a["id"], jobTitle="Neu")
    report = sync(config)
    assert report.exit_code == 3
    assert "no longer exists" in report.failures[0]["message"]
    history = service.state_user(config, a["userPrincipalName"])[0]["history"]
    assert any(h["action"] == "gone" and h["kind"] == "person" for h in history)
    assert sync(config, retry_failed=True).exit_code == 0
    converged(sandbox, config)


@pytest.mark.parametrize("status", [401, 403])
def test_401_or_403_mid_run_stops_with_a_clear_message_and_loses_nothing(
    sandbox: Sandbox, config: Config, status: int
) -> None:
    if status == 403:
        sandbox.eliza.denied = {f"POST {PERSONS}"}
    else:
        sandbox.eliza.fail_next(
            method="POST", path_contains=PERSONS, status=401, body={"detail": "Invalid token."}
        )
    with pytest.raises((AuthError, PermissionDeniedError)) as caught:
        sync(config)
    assert exit_code_for(caught.value) == 1
    message = str(caught.value)
    named = ("POST", "mitarbeitende") if status == 403 else ("API token", "401")
    assert all(word in message for word in named)
    assert service.state_runs(config)[0]["exit_code"] == 1
    sandbox.eliza.denied = set()
    assert sync(config, retry_failed=True).exit_code == 0
    converged(sandbox, config)
