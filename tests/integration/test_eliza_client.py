"""ElizaClient against the sandbox ELIZA: verified lookups, paging, retries, error mapping."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from deltasync.eliza import BlockedWrite, DryRunEliza, ElizaClient, Resource
from deltasync.eliza.client import schema_fields
from deltasync.errors import (
    AuthError,
    ObjectRejectedError,
    PermissionDeniedError,
    RunFailedError,
    ServiceUnavailableError,
)
from deltasync.sandbox.eliza_sim import ElizaSim

TOKEN = "tok-9d2e7c51b8a04f6e"
BASE = "https://firma.myeliza.test"
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class Harness:
    """A sim, a client talking to it in-process, and the delays the client waited."""

    def __init__(
        self,
        sim: ElizaSim | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str = TOKEN,
        **kwargs: Any,
    ) -> None:
        self.sim = sim or ElizaSim(TOKEN)
        self.delays: list[float] = []

        async def sleep(seconds: float) -> None:
            self.delays.append(seconds)

        self.client = ElizaClient(
            BASE,
            token,
            transport=transport or httpx.MockTransport(self.sim.handle),
            sleep=sleep,
            **kwargs,
        )

    def run(self, scenario: Callable[[ElizaClient], Awaitable[T]]) -> T:
        async def main() -> T:
            async with self.client:
                return await scenario(self.client)

        return asyncio.run(main())


class FaultTransport(httpx.AsyncBaseTransport):
    """Raises the given transport errors on the first requests, then asks the sim."""

    def __init__(self, sim: ElizaSim, errors: list[type[httpx.TransportError]]) -> None:
        self.inner = httpx.MockTransport(sim.handle)
        self.errors = list(errors)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.errors:
            raise self.errors.pop(0)("simulated", request=request)
        return await self.inner.handle_async_request(request)


# ---------------------------------------------------------------- verified lookups
def test_lookup_with_a_filter_the_server_ignores_returns_only_true_matches() -> None:
    h = Harness()
    h.sim.add_customgroup("QM-Team")
    wanted = h.sim.add_customgroup("Einkauf")
    h.sim.add_customgroup("Verkauf")
    h.sim.add_user(username="anna", first_name="Anna")
    h.sim.add_user(username="bert", first_name="Bert")

    async def scenario(c: ElizaClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return await c.find(Resource.CUSTOMGROUP, name="Einkauf"), await c.find(
            Resource.USER, first_name="Bert"
        )

    groups, users = h.run(scenario)
    assert [g["id"] for g in groups] == [wanted["id"]]
    assert [u["username"] for u in users] == ["bert"]
    sent = h.sim.requests[0]
    assert sent.query == {"name": "Einkauf", "limit": "1000"}  # the filter was really sent


def test_lookup_of_something_absent_under_an_ignored_filter_is_empty() -> None:
    h = Harness()
    for i in range(3):
        h.sim.add_user(username=f"u{i}", first_name="X")
    assert h.run(lambda c: c.find(Resource.USER, first_name="Nobody")) == []


def test_username_and_email_are_verified_case_insensitively_other_fields_exactly() -> None:
    h = Harness()
    anna = h.sim.add_user(username="Anna.Muster@firma.ch", email="Anna.Muster@firma.ch")
    h.sim.add_person(vorname="A", nachname="M", email="Anna.Muster@firma.ch", remote_key="AbC")

    async def scenario(c: ElizaClient) -> list[list[dict[str, Any]]]:
        return [
            await c.find(Resource.USER, username="anna.muster@FIRMA.ch"),
            await c.find(Resource.USER, email="ANNA.MUSTER@firma.ch"),
            await c.find(Resource.PERSON, email="anna.muster@firma.ch"),
            await c.find(Resource.PERSON, remote_key="abc"),
        ]

    by_name, by_mail, person_ci, key_ci = h.run(scenario)
    assert [u["id"] for u in by_name] == [u["id"] for u in by_mail] == [anna["id"]]
    assert person_ci == key_ci == []


def test_boolean_integer_and_null_filters() -> None:
    h = Harness()
    user = h.sim.add_user(username="anna")
    linked = h.sim.add_person(vorname="A", nachname="A", user=user["id"])
    free = h.sim.add_person(vorname="B", nachname="B")
    gone = h.sim.add_person(vorname="C", nachname="C", archived=True)

    async def scenario(c: ElizaClient) -> list[list[int]]:
        results = [
            await c.find(Resource.PERSON, archived=False),
            await c.find(Resource.PERSON, archived=True),
            await c.find(Resource.PERSON, user=user["id"]),
            await c.find(Resource.PERSON, user=None, archived=False),
        ]
        return [[r["id"] for r in rows] for rows in results]

    active, archived, by_user, unlinked = h.run(scenario)
    assert active == [linked["id"], free["id"]]
    assert archived == [gone["id"]]
    assert by_user == [linked["id"]]
    assert unlinked == [free["id"]]
    assert h.sim.requests[0].query["archived"] == "false"
    assert "user" not in h.sim.requests[3].query  # a null filter is verified locally only


# ---------------------------------------------------------------- paging
def test_paging_follows_next_across_several_pages() -> None:
    h = Harness(ElizaSim(TOKEN, max_limit=3))
    for i in range(10):
        h.sim.add_user(username=f"u{i}", first_name="Same")
    users = h.run(lambda c: c.list_all(Resource.USER, first_name="Same"))
    assert [u["id"] for u in users] == list(range(1, 11))
    assert h.sim.request_count == 4  # pages of 3, 3, 3, 1
    assert [r.query.get("offset") for r in h.sim.requests] == [None, "3", "6", "9"]
    assert all(r.query["limit"] == "1000" for r in h.sim.requests)  # capped by the server


def test_paging_with_a_small_page_size() -> None:
    h = Harness(page_size=4)
    for i in range(9):
        h.sim.add_user(username=f"u{i}")
    users = h.run(lambda c: c.list_all(Resource.USER))
    assert len(users) == 9
    assert h.client.requests == h.sim.request_count == 3


def test_list_pages_hands_over_one_page_at_a_time() -> None:
    """The prefetch before a big first sync keeps a part of each row; it never holds the
    whole list (100,000 ELIZA persons) at once."""
    h = Harness(page_size=4)
    for i in range(9):
        h.sim.add_user(username=f"u{i}")

    async def pages(c: ElizaClient) -> list[list[int]]:
        seen: list[list[int]] = []
        async for page in c.list_pages(Resource.USER):
            seen.append([u["id"] for u in page])
            assert h.sim.request_count == len(seen)  # the next page is read on demand
        return seen

    assert h.run(pages) == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_a_bare_array_answer_is_accepted() -> None:
    sim = ElizaSim(TOKEN)
    for i in range(5):
        sim.add_user(username=f"u{i}")
    inner = httpx.MockTransport(sim.handle)

    class NoPaging(httpx.AsyncBaseTransport):  # an instance without LimitOffset pagination
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_remove_param("limit")
            return await inner.handle_async_request(request)

    h = Harness(sim, transport=NoPaging())
    users = h.run(lambda c: c.list_all(Resource.USER))
    assert len(users) == 5
    assert h.sim.request_count == 1


def test_next_links_are_followed_on_the_configured_origin_only() -> None:
    sim = ElizaSim(TOKEN, max_limit=2)
    for i in range(5):
        sim.add_user(username=f"u{i}")
    inner = httpx.MockTransport(sim.handle)
    hosts: list[str] = []

    class ProxyLinks(httpx.AsyncBaseTransport):  # Django behind a proxy builds internal links
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            hosts.append(f"{request.url.scheme}://{request.url.host}")
            response = await inner.handle_async_request(request)
            body = json.loads(response.read())
            if isinstance(body, dict) and body.get("next"):
                nxt = httpx.URL(body["next"])
                body["next"] = str(nxt.copy_with(scheme="http", host="10.0.0.7", port=8000))
            return httpx.Response(response.status_code, json=body)

    h = Harness(sim, transport=ProxyLinks())
    assert len(h.run(lambda c: c.list_all(Resource.USER))) == 5
    assert hosts == [BASE] * 3


# ---------------------------------------------------------------- retries
def test_retries_honour_retry_after_seconds() -> None:
    h = Harness()
    h.sim.add_user(username="anna")
    h.sim.fail_next(method="GET", status=429, retry_after=7, n=2)
    user = h.run(lambda c: c.get(Resource.USER, 1))
    assert user is not None
    assert user["username"] == "anna"
    assert h.delays == [7.0, 7.0]
    assert h.client.requests == h.sim.request_count == 3


def test_retry_after_as_http_date_and_the_cap_on_one_wait() -> None:
    h = Harness()
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    h.sim.fail_next(status=503, retry_after=when)
    h.sim.fail_next(status=503, retry_after=3600)
    h.run(lambda c: c.list_all(Resource.USER))
    assert len(h.delays) == 2
    assert 25 < h.delays[0] <= 30
    assert h.delays[1] == 120.0


def test_backoff_grows_exponentially_with_jitter() -> None:
    h = Harness(retry_base_delay_s=1.0)
    h.sim.fail_next(status=502, n=4)
    h.run(lambda c: c.list_all(Resource.USER))
    assert len(h.delays) == 4
    for attempt, delay in enumerate(h.delays):
        assert 0.5 * 2**attempt <= delay <= 2**attempt


def test_gives_up_after_max_retries_naming_method_and_path() -> None:
    h = Harness(max_retries=3)
    h.sim.add_user(username="anna")
    h.sim.fail_next(status=503, n=10)
    with pytest.raises(ServiceUnavailableError, match=r"PATCH /api/user/1") as info:
        h.run(lambda c: c.update(Resource.USER, 1, {"first_name": "A"}))
    assert "4 attempts" in str(info.value)
    assert len(h.delays) == 3
    assert h.sim.request_count == 4
    assert h.client.writes == h.sim.write_count == 4
    assert TOKEN not in str(info.value)


def test_a_post_whose_response_was_lost_is_not_repeated() -> None:
    h = Harness()
    h.sim.lose_response_next(method="POST")

    async def scenario(c: ElizaClient) -> list[dict[str, Any]]:
        with pytest.raises(ServiceUnavailableError, match="POST /api/user"):
            await c.create(Resource.USER, {"username": "anna", "remote_key": "entra-1"})
        return await c.find(Resource.USER, remote_key="entra-1")

    found = h.run(scenario)
    assert [u["username"] for u in found] == ["anna"]  # applied once: the engine finds it
    assert len(h.sim.users) == 1
    assert h.sim.write_count == 1
    assert h.delays == []


@pytest.mark.parametrize("status", [500, 504])
def test_a_post_is_not_retried_on_server_errors_that_may_follow_processing(status: int) -> None:
    h = Harness()
    h.sim.fail_next(method="POST", status=status)
    with pytest.raises(ServiceUnavailableError):
        h.run(lambda c: c.create(Resource.USER, {"username": "anna"}))
    assert h.sim.write_count == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_post_is_retried_when_it_was_never_processed(status: int) -> None:
    h = Harness()
    h.sim.fail_next(method="POST", status=status, retry_after=1)
    created = h.run(lambda c: c.create(Resource.USER, {"username": "anna"}))
    assert created["id"] == 1
    assert len(h.sim.users) == 1
    assert h.delays == [1.0]


def test_a_post_is_retried_after_a_connect_error_but_not_after_a_read_timeout() -> None:
    sim = ElizaSim(TOKEN)
    h = Harness(sim, transport=FaultTransport(sim, [httpx.ConnectError]))
    assert h.run(lambda c: c.create(Resource.USER, {"username": "anna"}))["id"] == 1
    assert len(h.delays) == 1

    h2 = Harness(sim, transport=FaultTransport(sim, [httpx.ReadTimeout]))
    with pytest.raises(ServiceUnavailableError, match="no answer within"):
        h2.run(lambda c: c.create(Resource.USER, {"username": "bert"}))
    assert h2.delays == []


def test_reads_and_patches_are_retried_after_timeouts_and_lost_responses() -> None:
    sim = ElizaSim(TOKEN)
    sim.add_user(username="anna")
    h = Harness(sim, transport=FaultTransport(sim, [httpx.ReadTimeout, httpx.RemoteProtocolError]))
    sim.lose_response_next(method="PATCH")

    async def scenario(c: ElizaClient) -> dict[str, Any]:
        assert len(await c.list_all(Resource.USER)) == 1
        return await c.update(Resource.USER, 1, {"first_name": "Anna"})

    updated = h.run(scenario)
    assert updated["first_name"] == "Anna"
    assert len(h.delays) == 3
    assert h.client.requests == 5


# ---------------------------------------------------------------- error mapping
def test_wrong_token_is_an_auth_error_without_the_token() -> None:
    h = Harness(token="not-the-token-123")
    with pytest.raises(AuthError, match=r"ELIZA rejected the API token \(401\)") as info:
        h.run(lambda c: c.find(Resource.USER, username="anna"))
    assert "not-the-token-123" not in str(info.value)
    assert h.delays == []


def test_client_sends_the_token_keyword_not_bearer() -> None:
    h = Harness()
    h.run(lambda c: c.list_all(Resource.USER))
    assert h.sim.request_count == 1  # a Bearer header would have been a 401


def test_missing_permission_names_method_and_resource() -> None:
    h = Harness(ElizaSim(TOKEN, denied={"PATCH organisation/mitarbeitende"}))
    h.sim.add_person(vorname="A", nachname="B")

    async def scenario(c: ElizaClient) -> None:
        assert await c.get(Resource.PERSON, 1) is not None
        await c.update(Resource.PERSON, 1, {"vorname": "C"})

    with pytest.raises(
        PermissionDeniedError,
        match="the API token lacks permission to PATCH organisation/mitarbeitende",
    ):
        h.run(scenario)


def test_validation_error_is_an_object_rejection_with_field_summary() -> None:
    h = Harness()
    with pytest.raises(ObjectRejectedError) as info:
        h.run(lambda c: c.create(Resource.PERSON, {"vorname": "A", "anstellungsart": "x"}))
    exc = info.value
    assert exc.status == 400
    assert set(exc.body) == {"nachname", "anstellungsart"}
    assert "nachname: " in str(exc)
    assert "anstellungsart: " in str(exc)


def test_uniqueness_conflict_is_an_object_rejection_409() -> None:
    h = Harness()
    h.sim.add_user(username="Anna")
    with pytest.raises(ObjectRejectedError) as info:
        h.run(lambda c: c.create(Resource.USER, {"username": "anna"}))
    assert info.value.status == 409
    assert "detail" in info.value.body


def test_deleted_object_is_none_on_read_and_404_on_write() -> None:
    h = Harness()

    async def scenario(c: ElizaClient) -> dict[str, Any] | None:
        with pytest.raises(ObjectRejectedError) as info:
            await c.update(Resource.USER, 41, {"first_name": "A"})
        assert info.value.status == 404
        with pytest.raises(ObjectRejectedError):
            await c.delete(Resource.USER, 41)
        return await c.get(Resource.USER, 41)

    assert h.run(scenario) is None


def test_a_wrong_slash_style_is_a_configuration_failure_not_a_deleted_object() -> None:
    h = Harness(ElizaSim(TOKEN, trailing_slash=True))
    h.sim.add_user(username="anna")
    with pytest.raises(RunFailedError, match="trailing_slash"):
        h.run(lambda c: c.get(Resource.USER, 1))
    h2 = Harness(h.sim)
    with pytest.raises(RunFailedError, match="trailing_slash"):
        h2.run(lambda c: c.update(Resource.USER, 1, {"first_name": "A"}))
    h3 = Harness(h.sim, trailing_slash=True)
    user = h3.run(lambda c: c.get(Resource.USER, 1))
    assert user is not None
    assert h3.sim.requests[-1].path == "/api/user/1/"


def test_writing_a_read_only_resource_stops_the_run() -> None:
    h = Harness()
    h.sim.add_orgunit("Einkauf")
    with pytest.raises(RunFailedError, match="405"):
        h.run(lambda c: c.update(Resource.ORGUNIT, 1, {"titel": "X"}))


def test_paths_can_be_configured() -> None:
    client = ElizaClient(BASE, TOKEN, paths={"mitarbeitende": "/api/hr/personen/"})
    assert client.path(Resource.PERSON) == "/api/hr/personen"
    assert client.path(Resource.PERSON, 5) == "/api/hr/personen/5"
    assert client.path(Resource.USER, 5) == "/api/user/5"
    with pytest.raises(ValueError, match="persons"):
        ElizaClient(BASE, TOKEN, paths={"persons": "x"})
    run(client.aclose())


# ---------------------------------------------------------------- concurrency, counters
def test_concurrency_is_bounded_by_max_concurrency() -> None:
    sim = ElizaSim(TOKEN)
    for i in range(20):
        sim.add_user(username=f"u{i}")
    inner = httpx.MockTransport(sim.handle)

    class InFlight(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.now = 0
            self.max = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.now += 1
            self.max = max(self.max, self.now)
            try:
                await asyncio.sleep(0.01)
                return await inner.handle_async_request(request)
            finally:
                self.now -= 1

    counter = InFlight()
    h = Harness(sim, transport=counter, max_concurrency=3)

    async def scenario(c: ElizaClient) -> list[dict[str, Any] | None]:
        return await asyncio.gather(*(c.get(Resource.USER, i) for i in range(1, 21)))

    users = h.run(scenario)
    assert all(u is not None for u in users)
    assert counter.max == 3


def test_counters_count_every_attempt_and_every_write_attempt() -> None:
    h = Harness()
    h.sim.fail_next(method="POST", status=503)

    async def scenario(c: ElizaClient) -> None:
        created = await c.create(Resource.USER, {"username": "anna"})
        await c.update(Resource.USER, created["id"], {"first_name": "A"})
        await c.get(Resource.USER, created["id"])
        await c.delete(Resource.USER, created["id"])

    h.run(scenario)
    assert h.client.requests == h.sim.request_count == 5
    assert h.client.writes == h.sim.write_count == 4


# ---------------------------------------------------------------- dry run
def test_dry_run_sends_no_write_and_answers_with_synthetic_objects() -> None:
    h = Harness()
    anna = h.sim.add_user(username="anna", first_name="Anna", groups=[1])
    dry = DryRunEliza(h.client)

    async def scenario() -> tuple[Any, ...]:
        async with h.client:
            assert (await dry.get(Resource.USER, anna["id"])) is not None
            created = await dry.create(Resource.USER, {"username": "bert"})
            second = await dry.create(Resource.PERSON, {"vorname": "B", "nachname": "B"})
            updated = await dry.update(Resource.USER, anna["id"], {"last_name": "Muster"})
            unknown = await dry.update(Resource.USER, 77, {"last_name": "X"})
            await dry.delete(Resource.PERSON, 3)
            again = await dry.get(Resource.USER, created["id"])
            found = await dry.find(Resource.USER, username="ANNA")
            return created, second, updated, unknown, again, found

    created, second, updated, unknown, again, found = asyncio.run(scenario())
    assert h.sim.write_count == 0
    assert dry.writes == 0
    assert created == {"username": "bert", "id": -1}
    assert second["id"] == -2
    assert updated["first_name"] == "Anna"
    assert updated["last_name"] == "Muster"
    assert updated["groups"] == [1]
    assert unknown == {"last_name": "X", "id": 77}
    assert again == created
    assert [u["id"] for u in found] == [anna["id"]]
    assert dry.requests == h.sim.request_count == 2
    assert dry.blocked == [
        BlockedWrite("POST", Resource.USER, None, {"username": "bert"}),
        BlockedWrite("POST", Resource.PERSON, None, {"vorname": "B", "nachname": "B"}),
        BlockedWrite("PATCH", Resource.USER, anna["id"], {"last_name": "Muster"}),
        BlockedWrite("PATCH", Resource.USER, 77, {"last_name": "X"}),
        BlockedWrite("DELETE", Resource.PERSON, 3, {}),
    ]


# ---------------------------------------------------------------- schema, config, secrets
def test_schema_is_read_and_its_fields_found() -> None:
    h = Harness()
    schema = h.run(lambda c: c.schema())
    assert schema is not None
    users = schema_fields(schema, "/api/user")
    assert users is not None
    assert {"username", "email", "remote_key", "groups"} <= users
    persons = schema_fields(schema, "organisation/mitarbeitende")
    assert persons is not None
    assert "vorname" in persons
    assert schema_fields(schema, "/api/nothing") is None
    assert Harness(ElizaSim(TOKEN, serve_schema=False)).run(lambda c: c.schema()) is None


@dataclass(frozen=True)
class FakeSecret:
    value: str

    def reveal(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class ElizaSection:
    base_url: str
    api_token: FakeSecret
    trailing_slash: bool = True
    timeout_s: float = 5.0
    max_concurrency: int = 2
    ca_bundle: Path | None = None
    paths: dict[str, str] = field(default_factory=dict)


def test_from_config_uses_every_setting() -> None:
    sim = ElizaSim(TOKEN, trailing_slash=True)
    sim.add_user(username="anna")
    cfg = ElizaSection(BASE + "/", FakeSecret(TOKEN))
    client = ElizaClient.from_config(cfg, transport=httpx.MockTransport(sim.handle))
    assert client.timeout_s == 5.0

    async def scenario() -> list[dict[str, Any]]:
        async with client:
            return await client.list_all(Resource.USER)

    assert len(asyncio.run(scenario())) == 1
    assert sim.requests[0].path == "/api/user/"


def test_from_config_trusts_the_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate")
    cfg = ElizaSection(BASE, FakeSecret(TOKEN), ca_bundle=bundle)
    with pytest.raises(ssl.SSLError):
        ElizaClient.from_config(cfg)  # it is really loaded, so a broken bundle is noticed


def test_the_token_never_appears_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim = ElizaSim(TOKEN)
    sim.fail_next(method="POST", status=400, body={"detail": f"token {TOKEN} is not allowed here"})
    sim.fail_next(method="GET", status=503, n=10)
    h = Harness(sim, max_retries=1)
    messages: list[str] = [repr(h.client), repr(DryRunEliza(h.client))]

    async def scenario(c: ElizaClient) -> None:
        for call in (
            c.create(Resource.USER, {"username": "a"}),
            c.list_all(Resource.USER),
        ):
            try:
                await call
            except Exception as exc:  # every failure message is checked below
                messages.append(str(exc))
                messages.append(repr(exc))

    h.run(scenario)
    bad = Harness(token="WRONG-" + TOKEN)
    try:
        bad.run(lambda c: c.list_all(Resource.USER))
    except AuthError as exc:
        messages.append(str(exc))
    assert len(messages) == 7
    messages.extend(record.getMessage() for record in caplog.records)
    assert not [m for m in messages if TOKEN in m]
    assert any("***" in m for m in messages[2:])  # the echoed token was redacted
