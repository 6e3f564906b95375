"""Faults from Graph, one test per kind, through the real msgraph-sdk against the sandbox
Graph: retried when Graph says so, a full round when the token is gone, a message naming the
page and nothing applied from a page deltasync cannot read; the next run always converges."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, in_scope, pick, sync

from deltasync import service
from deltasync.config import Config
from deltasync.engine import RunOptions, RunReport
from deltasync.errors import BadPayloadError
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=12, seed=31, page_size=4)

Page = dict[str, Any]


class Faulty(httpx.AsyncBaseTransport):
    """The sandbox Graph in-process; request number ``at`` (0-based, this run) gets ``fault``:
    it returns a response (or raises) instead of Graph's, or rewrites Graph's first page with
    objects on it from then on."""

    def __init__(
        self,
        sandbox: Sandbox,
        at: int,
        *,
        answer: Callable[[httpx.Request], httpx.Response] | None = None,
        page: Callable[[Page], Page] | None = None,
    ) -> None:
        self.inner = httpx.MockTransport(sandbox.graph.handle)
        self.at, self.answer, self.page = at, answer, page
        self.seen = 0
        self.hit: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        n, self.seen = self.seen, self.seen + 1
        await request.aread()
        if n == self.at and self.answer is not None:
            self.hit = str(request.url)
            return self.answer(request)
        response = await self.inner.handle_async_request(request)
        if n >= self.at and self.page is not None and self.hit is None:
            body = json.loads(await response.aread())
            if body.get("value"):  # the first page with objects on it from ``at`` on
                self.hit = str(request.url)
                body = self.page(copy.deepcopy(body))
                headers = {"Content-Type": "application/json"}
                return httpx.Response(200, json=body, headers=headers)
            return httpx.Response(200, json=body, headers={"Content-Type": "application/json"})
        return response


def run(config: Config, transport: httpx.AsyncBaseTransport, **opts: Any) -> RunReport:
    return service.run_sync(
        config, RunOptions(**opts), seams=service.Seams(graph_transport=transport)
    )


def converged(sandbox: Sandbox, config: Config) -> None:
    """Exactly one user and one person per Entra user in scope, with Entra's values."""
    scope = in_scope(sandbox)
    for u in scope:
        (user,) = eliza_user_of(sandbox, u["id"])
        (person,) = eliza_person_of(sandbox, u["id"])
        assert user["is_active"] and person["position"] == u.get("jobTitle")
    assert sum(1 for u in sandbox.eliza.users.values() if u.get("remote_key")) >= len(scope)
    assert len([p for p in sandbox.eliza.persons.values() if p.get("remote_key")]) == len(
        {p["remote_key"] for p in sandbox.eliza.persons.values() if p.get("remote_key")}
    )
    assert service.state_failures(config) == []


def change_some(sandbox: Sandbox) -> list[dict[str, Any]]:
    """A new job title for three users and a disabled fourth: the next round has pages."""
    users = pick(sandbox, 4)
    for u in users[:3]:
        sandbox.graph.update_user(u["id"], jobTitle=f"Neu {u['id'][:4]}")
    sandbox.graph.disable_user(users[3]["id"])
    return users


def error(status: int, code: str, headers: dict[str, str] | None = None) -> Callable[..., Any]:
    body = {"error": {"code": code, "message": "sandbox fault"}}
    return lambda _r: httpx.Response(
        status, json=body, headers={"Retry-After": "0", **(headers or {})}
    )


@pytest.mark.parametrize("statuses", [(429, 503, 504), (500, 502)], ids=["429-503-504", "500-502"])
def test_bursts_of_retryable_errors_are_retried_mid_round(
    sandbox: Sandbox, config: Config, statuses: tuple[int, ...]
) -> None:
    sync(config)
    change_some(sandbox)
    sandbox.graph.reset_log()
    for status in statuses:
        sandbox.graph.fail_next(status, retry_after=0)
    report = sync(config)
    assert report.exit_code == 0, report.as_dict()
    assert [r.status for r in sandbox.graph.requests[: len(statuses)]] == list(statuses)
    converged(sandbox, config)


def test_a_connection_reset_mid_round_is_retried(sandbox: Sandbox, config: Config) -> None:
    def reset(_r: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Connection reset by peer")

    faulty = Faulty(sandbox, at=1, answer=reset)
    assert run(config, faulty).exit_code == 0
    assert faulty.hit is not None
    converged(sandbox, config)


@pytest.mark.parametrize(
    "answer",
    [
        error(400, "syncStateNotFound"),
        error(410, "resyncRequired", {"Location": "http://graph.invalid/v1.0/users/delta"}),
    ],
    ids=["400-syncStateNotFound", "410-Location"],
)
def test_an_expired_token_mid_round_starts_a_full_round_without_duplicates(
    sandbox: Sandbox, config: Config, answer: Callable[..., Any]
) -> None:
    sync(config)
    change_some(sandbox)
    faulty = Faulty(sandbox, at=1, answer=answer)
    report = run(config, faulty)
    assert faulty.hit is not None
    assert report.exit_code == 0, report.as_dict()
    assert report.full_round_reason == "the delta token expired"
    converged(sandbox, config)


def _no_value(p: Page) -> Page:
    del p["value"]
    return p


def _value_not_list(p: Page) -> Page:
    p["value"] = {"id": "x"}
    return p


def _no_id(p: Page) -> Page:
    del p["value"][-1]["id"]
    return p


def _wrong_type(p: Page) -> Page:
    p["value"][-1]["accountEnabled"] = "no"
    return p


BAD_PAGES = {
    "no value": (_no_value, "'value'"),
    "value not a list": (_value_not_list, "'value'"),
    "object without id": (_no_id, "'id'"),
    "wrong type": (_wrong_type, "'accountEnabled'"),
}


@pytest.mark.parametrize("kind", list(BAD_PAGES))
def test_a_malformed_page_is_named_nothing_from_it_is_applied_and_the_next_run_goes_on(
    sandbox: Sandbox, config: Config, kind: str
) -> None:
    sync(config)
    users = change_some(sandbox)
    before = {u["id"]: eliza_person_of(sandbox, u["id"])[0]["position"] for u in users}
    with service.store_for(config) as store:
        mirror_before = {u["id"]: dict(store.links_for([u["id"]])) for u in users}
    rewrite, named = BAD_PAGES[kind]
    faulty = Faulty(sandbox, at=0, page=rewrite)
    with pytest.raises(BadPayloadError) as caught:
        run(config, faulty)
    message = str(caught.value)
    assert "Graph delta page" in message and named in message
    assert {u["id"]: eliza_person_of(sandbox, u["id"])[0]["position"] for u in users} == before
    with service.store_for(config) as store:
        assert {u["id"]: dict(store.links_for([u["id"]])) for u in users} == mirror_before
        assert not store.dirty_objects("users", store_now())  # no change of the bad page
    assert sync(config).exit_code == 0
    converged(sandbox, config)


def store_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_unknown_annotations_are_ignored(sandbox: Sandbox, config: Config) -> None:
    def annotate(p: Page) -> Page:
        p["@odata.futureThing"] = {"x": 1}
        for entry in p["value"]:
            entry["displayName@odata.type"] = "#String"
            entry["@microsoft.graph.tips"] = "x"
        return p

    assert run(config, Faulty(sandbox, at=0, page=annotate)).exit_code == 0
    converged(sandbox, config)
