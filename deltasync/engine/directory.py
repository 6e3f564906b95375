"""The ELIZA lookup cache: existing users and persons for matching, live or prefetched."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import Any

from deltasync import fields as f
from deltasync.engine.ports import Collections, LookupRows, Target
from deltasync.models import Kind

#: The fields matching looks ELIZA users and persons up by (the prefetched rows are indexed).
_INDEXED: dict[Kind, tuple[str, ...]] = {
    Kind.USER: (f.REMOTE_KEY, f.USERNAME, f.EMAIL),
    Kind.PERSON: (f.REMOTE_KEY, f.PERSON_USER, f.EMAIL),
}

#: What matching decides by (:mod:`deltasync.matching`: the candidates it describes, a
#: protected account), beside the indexed keys and the fields the sync writes.
DECISION_FIELDS = frozenset({"id", f.USERNAME, f.EMAIL, f.REMOTE_KEY, "is_superuser", f.GROUPS})


class Directory:
    """Lookups of existing ELIZA users and persons for matching: live, or from one list read.

    Before a big first sync, reading the lists once costs a handful of requests where
    per-object lookups would cost several per Entra user. The prefetched rows are indexed
    by the fields matching looks up, so each lookup is O(1), not a scan of the whole list;
    they are held in ``rows`` (the store's :meth:`~deltasync.engine.ports.Store.lookup_rows`,
    out of the process's memory: 200,000 rows as dicts took 280 MB). With ``keep`` (per
    kind: the fields the sync writes), a held row keeps only those, the indexed keys and
    :data:`DECISION_FIELDS`: what matching and adopting a match read, not whole ELIZA objects.
    """

    def __init__(
        self,
        target: Target,
        names: Collections,
        keep: Mapping[Kind, Set[str]] | None = None,
        rows: Callable[[], LookupRows] | None = None,
    ) -> None:
        self.target = target
        self.names = names
        self.keep = (
            None
            if keep is None
            else {k: frozenset(v) | DECISION_FIELDS | set(_INDEXED[k]) for k, v in keep.items()}
        )
        self._new_rows = rows
        self.rows: LookupRows | None = None  # once prefetched

    @property
    def prefetched(self) -> bool:
        return self.rows is not None

    @staticmethod
    def _norm(kind: Kind, name: str, value: Any) -> Any:
        if kind == Kind.USER and name in (f.USERNAME, f.EMAIL):
            return str(value or "").lower()
        return value

    def _add(self, kind: Kind, row: Mapping[str, Any], keep: Set[str] | None) -> None:
        assert self.rows is not None
        row = dict(row) if keep is None else {k: v for k, v in row.items() if k in keep}
        keys = {name: self._norm(kind, name, row.get(name)) for name in _INDEXED[kind]}
        self.rows.put(kind.value, row.get("id"), row, keys)

    async def prefetch(self) -> None:
        """Read every user and person once."""
        if self._new_rows is None:
            raise RuntimeError("a Directory without rows cannot prefetch")
        self.rows = self._new_rows()
        for kind, res in ((Kind.USER, self.names.USER), (Kind.PERSON, self.names.PERSON)):
            keep = None if self.keep is None else self.keep.get(kind)
            async for page in self.target.list_pages(res):  # never the whole list at once
                for row in page:
                    self._add(kind, row, keep)

    def close(self) -> None:
        """The run is over: the held rows go."""
        if self.rows is not None:
            self.rows.close()
            self.rows = None

    def remember(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        """Keep the prefetched lists current after a create: an object the run created is
        linked already, so only what matching decides by is held (a conflict names it)."""
        if self.rows is None or kind not in _INDEXED:
            return
        self._add(kind, obj, DECISION_FIELDS | set(_INDEXED[kind]))

    def _lookup(self, kind: Kind, field_name: str, value: Any) -> list[dict[str, Any]]:
        assert self.rows is not None
        norm = self._norm(kind, field_name, value)
        if field_name in _INDEXED[kind]:
            return self.rows.find(kind.value, field_name, norm)
        return [
            r
            for r in self.rows.rows(kind.value)
            if self._norm(kind, field_name, r.get(field_name)) == norm
        ]

    async def users_by(self, field_name: str, value: str) -> list[dict[str, Any]]:
        """Users whose field equals value (username and email case-insensitively)."""
        if not self.prefetched:
            return await self.target.find(self.names.USER, **{field_name: value})
        return self._lookup(Kind.USER, field_name, value)

    async def persons_by(self, field_name: str, value: Any) -> list[dict[str, Any]]:
        """Persons whose field equals value exactly."""
        if not self.prefetched:
            return await self.target.find(self.names.PERSON, **{field_name: value})
        return self._lookup(Kind.PERSON, field_name, value)
