"""In-memory fakes of the engine's Source and Target (the Store is in fake_store.py).

Each fake records the calls that matter and can be told to fail one call, so the engine tests
can stop a run at any step of the commit order and check what the next run makes of it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from fake_store import NOW, FakeStore

from deltasync.engine import Engine, EngineSettings, ResourceSpec
from deltasync.models import DeltaPage, ObjectChange
from deltasync.plan import PlanContext


class Names(enum.StrEnum):
    """The target's collection names, as ``deltasync.eliza.Resource`` provides them."""

    USER = "user"
    PERSON = "person"
    MEMBERSHIP = "membership"
    ORGUNIT = "orgunit"
    CUSTOMGROUP = "customgroup"


class Crash(Exception):
    """The process died here (not an error ELIZA answered with)."""


@dataclass(frozen=True)
class Prop:
    """A mapping expression that reads one Graph property."""

    name: str

    @property
    def source(self) -> str:
        return self.name

    @property
    def properties(self) -> frozenset[str]:
        return frozenset({self.name})

    def evaluate(self, data: Mapping[str, Any], tz: ZoneInfo) -> Any:
        return data.get(self.name)


def entra_user(oid: str, **props: Any) -> ObjectChange:
    """A Graph delta entry of an enabled user."""
    return ObjectChange(
        oid,
        {
            "id": oid,
            "userPrincipalName": f"{oid}@firma.ch",
            "mail": f"{oid}@firma.ch",
            "givenName": oid.capitalize(),
            "surname": "Muster",
            "accountEnabled": True,
            **props,
        },
    )


def settings(*resources: ResourceSpec) -> EngineSettings:
    ctx = PlanContext(
        user_mapping={
            "username": Prop("userPrincipalName"),
            "email": Prop("mail"),
            "first_name": Prop("givenName"),
            "last_name": Prop("surname"),
        },
        person_mapping={"vorname": Prop("givenName"), "nachname": Prop("surname")},
        tz=ZoneInfo("Europe/Zurich"),
        today=date(2026, 11, 22),
    )
    return EngineSettings(
        ctx=ctx, select=("id", "userPrincipalName"), plan_fingerprint="fp", resources=resources
    )


class FakeSource:
    """Graph: one page per resource round, each URL serving a fixed page."""

    def __init__(self, pages: Mapping[str, Sequence[ObjectChange]]) -> None:
        self.pages = {name: tuple(changes) for name, changes in pages.items()}
        self.fetched: list[str] = []

    @property
    def requests(self) -> int:
        return len(self.fetched)

    def initial_url(self, resource: str, select: Sequence[str]) -> str:
        return f"https://graph/{resource}/delta?$select={','.join(select)}"

    async def fetch_page(self, url: str, *, minimal: bool) -> DeltaPage:
        self.fetched.append(url)
        resource = url.split("/")[3]
        changes = () if "token" in url else self.pages.get(resource, ())
        return DeltaPage(changes, None, f"https://graph/{resource}/delta?token=1")


class FakeTarget:
    """ELIZA: collections of rows by id; ``fail`` maps a method to the exception it raises
    before (``"create"``) or after ELIZA did the write (``"create:after"``, a lost response)."""

    def __init__(self, *, dry: bool = False, events: list[str] | None = None) -> None:
        self.rows: dict[str, dict[int, dict[str, Any]]] = {n.value: {} for n in Names}
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, Exception] = {}
        self.dry = dry
        self.schema: dict[str, frozenset[str]] = {}  # resource -> fields its schema lists
        self.made: list[str] = []  # resource of every object ELIZA really created
        self.events = [] if events is None else events  # shared with a FakeStore: one timeline
        self._next = 0

    @property
    def requests(self) -> int:
        return len(self.calls)

    @property
    def writes(self) -> int:
        return 0 if self.dry else sum(m in ("create", "update", "delete") for m, _ in self.calls)

    def _call(self, method: str, resource: str) -> None:
        self.calls.append((method, str(resource)))
        self.events.append(f"eliza.{method}")
        if method in self.fail:
            raise self.fail.pop(method)

    def _after(self, method: str) -> None:
        if f"{method}:after" in self.fail:
            raise self.fail.pop(f"{method}:after")

    async def find(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        self._call("find", resource)
        rows = self.rows[str(resource)].values()
        return [dict(r) for r in rows if all(r.get(k) == v for k, v in filters.items())]

    async def list_all(self, resource: str, **filters: Any) -> list[dict[str, Any]]:
        return await self.find(resource, **filters)

    async def list_pages(self, resource: str) -> AsyncIterator[list[dict[str, Any]]]:
        yield await self.find(resource)

    async def get(self, resource: str, id: int) -> dict[str, Any] | None:
        self._call("get", resource)
        row = self.rows[str(resource)].get(id)
        return dict(row) if row is not None else None

    async def create(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        self._call("create", resource)
        self._next += 1
        row = {**fields, "id": -self._next if self.dry else self._next}
        if not self.dry:
            self.rows[str(resource)][row["id"]] = row
            self.made.append(str(resource))
        self._after("create")
        return dict(row)

    async def update(self, resource: str, id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        self._call("update", resource)
        row = {**self.rows[str(resource)].get(id, {"id": id}), **fields}
        if not self.dry:
            self.rows[str(resource)][id] = row
        self._after("update")
        return dict(row)

    async def delete(self, resource: str, id: int) -> None:
        self._call("delete", resource)
        if not self.dry:
            self.rows[str(resource)].pop(id, None)

    async def known_fields(self, resource: str) -> frozenset[str] | None:
        return self.schema.get(str(resource))

    def created(self, names: Names) -> int:
        """How many objects ELIZA created in that collection."""
        return self.made.count(names.value)


def engine(
    store: FakeStore, source: FakeSource, target: FakeTarget, *specs: ResourceSpec
) -> Engine:
    """An engine over the fakes; without specs it reads the users resource."""
    run = Engine(
        store, source, target, settings(*specs), resources=Names, holder="test", now=lambda: NOW
    )
    run.run_id = 1
    return run
