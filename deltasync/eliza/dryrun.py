"""``--dry-run``: reads go to ELIZA, writes are only recorded as :class:`BlockedWrite`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deltasync.eliza.resources import Resource

if TYPE_CHECKING:
    from deltasync.eliza.client import ElizaClient


@dataclass(frozen=True)
class BlockedWrite:
    """A write a dry run would have sent."""

    method: str
    resource: Resource
    id: int | None
    fields: Mapping[str, Any] = field(default_factory=dict)


class DryRunEliza:
    """The client's interface for ``--dry-run``: reads go to ELIZA, writes are only recorded.

    Creates answer with the fields and a negative id; updates answer with the fields merged
    over the object as last read (when it was read), so the run can go on exactly as a real one.
    """

    def __init__(self, inner: ElizaClient) -> None:
        self.inner = inner
        self.blocked: list[BlockedWrite] = []
        self._next_id = -1
        self._known: dict[tuple[Resource, int], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"DryRunEliza({self.inner!r})"

    @property
    def requests(self) -> int:
        """HTTP requests sent (reads only)."""
        return self.inner.requests

    @property
    def writes(self) -> int:
        """Write requests sent: none, unless the inner client was used directly."""
        return self.inner.writes

    def _remember(self, res: Resource, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            if isinstance(row.get("id"), int):
                self._known[(res, row["id"])] = dict(row)
        return rows

    async def find(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """As :meth:`ElizaClient.find`."""
        res = Resource(resource)
        return self._remember(res, await self.inner.find(res, **filters))

    async def list_all(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """As :meth:`ElizaClient.list_all`."""
        res = Resource(resource)
        return self._remember(res, await self.inner.list_all(res, **filters))

    async def list_pages(self, resource: Resource | str) -> AsyncIterator[list[dict[str, Any]]]:
        """As :meth:`ElizaClient.list_pages`."""
        res = Resource(resource)
        async for page in self.inner.list_pages(res):
            yield self._remember(res, page)

    async def get(self, resource: Resource | str, id: int) -> dict[str, Any] | None:
        """As :meth:`ElizaClient.get`; objects this dry run "created" come from memory."""
        res = Resource(resource)
        if id < 0:
            known = self._known.get((res, id))
            return dict(known) if known is not None else None
        obj = await self.inner.get(res, id)
        if obj is not None:
            self._remember(res, [obj])
        return obj

    async def schema(self) -> dict[str, Any] | None:
        """As :meth:`ElizaClient.schema`."""
        return await self.inner.schema()

    async def known_fields(self, resource: Resource | str) -> frozenset[str] | None:
        """As :meth:`ElizaClient.known_fields`."""
        return await self.inner.known_fields(resource)

    async def create(self, resource: Resource | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record the POST; answer with the fields and a new negative id."""
        res = Resource(resource)
        self.blocked.append(BlockedWrite("POST", res, None, dict(fields)))
        obj = {**fields, "id": self._next_id}
        self._next_id -= 1
        self._known[(res, obj["id"])] = dict(obj)
        return obj

    async def update(
        self, resource: Resource | str, id: int, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record the PATCH; answer with the fields merged over the object as last read."""
        res = Resource(resource)
        self.blocked.append(BlockedWrite("PATCH", res, id, dict(fields)))
        obj = {**self._known.get((res, id), {}), **fields, "id": id}
        self._known[(res, id)] = dict(obj)
        return obj

    async def delete(self, resource: Resource | str, id: int) -> None:
        """Record the DELETE."""
        res = Resource(resource)
        self.blocked.append(BlockedWrite("DELETE", res, id, {}))
        self._known.pop((res, id), None)

    async def aclose(self) -> None:
        """Close the inner client."""
        await self.inner.aclose()
