"""Ids by field value, so a filtered list or a uniqueness check costs O(1), not a scan.

A real ELIZA answers ``GET /api/user?remote_key=…`` from a database index; a simulator that
sorts and scans every row on each request grows slower with every object it holds, and a
benchmark against it measures the simulator. :class:`Index` keeps, per resource, the ids of
the objects holding each value of every filtered field (``FILTERS``) and of the fields the
store's own rules look up (``EXTRA``), plus the ids in order for unfiltered lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from deltasync.sandbox.eliza.resources import FILTERS, PERSON, RESOURCES

# Fields looked up by the store's rules that are no list filter (what a delete takes with it).
EXTRA: Final[dict[str, dict[str, str]]] = {PERSON: {"vorgesetzter": "int"}}


def key(kind: str, value: Any) -> tuple[bool, Any]:
    """The index key of a stored or wanted value: lower-cased for ``iexact``.

    The flag keeps ``True`` and ``1`` apart, as the scans compared them (``is True``).
    """
    if kind == "iexact":
        return False, str(value or "").lower()
    return isinstance(value, bool), value


class Index:
    """Ids per (resource, field, key), kept in step by :meth:`add` and :meth:`remove`."""

    def __init__(self) -> None:
        self.kinds: dict[str, dict[str, str]] = {
            r: {**FILTERS.get(r, {}), **EXTRA.get(r, {})} for r in RESOURCES
        }
        self._ids: dict[str, dict[str, dict[tuple[bool, Any], set[int]]]] = {
            r: {name: {} for name in kinds} for r, kinds in self.kinds.items()
        }
        self._ordered: dict[str, list[int] | None] = dict.fromkeys(RESOURCES)

    def add(self, resource: str, oid: int, obj: Mapping[str, Any]) -> None:
        """Index a new object (after it was stored under ``oid``)."""
        self._key(resource, oid, obj)
        ordered = self._ordered[resource]
        if ordered is not None and (not ordered or ordered[-1] < oid):
            ordered.append(oid)
        else:
            self._ordered[resource] = None

    def update(
        self, resource: str, oid: int, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        """Re-index an object whose fields changed from ``old`` to ``new``."""
        self._unkey(resource, oid, old)
        self._key(resource, oid, new)

    def remove(self, resource: str, oid: int, obj: Mapping[str, Any]) -> None:
        """Forget a deleted object."""
        self._unkey(resource, oid, obj)
        self._ordered[resource] = None

    def _key(self, resource: str, oid: int, obj: Mapping[str, Any]) -> None:
        for name, kind in self.kinds[resource].items():
            self._ids[resource][name].setdefault(key(kind, obj.get(name)), set()).add(oid)

    def _unkey(self, resource: str, oid: int, obj: Mapping[str, Any]) -> None:
        for name, kind in self.kinds[resource].items():
            values = self._ids[resource][name]
            k = key(kind, obj.get(name))
            ids = values.get(k)
            if ids is not None:
                ids.discard(oid)
                if not ids:
                    del values[k]

    def ids(self, resource: str, name: str, value: Any) -> set[int]:
        """The ids whose ``name`` equals ``value`` (as the field's filter compares); a copy."""
        kind = self.kinds[resource][name]
        return set(self._ids[resource][name].get(key(kind, value), ()))

    def ordered(self, resource: str, objects: Iterable[int]) -> list[int]:
        """Every id of ``resource`` in ascending order (kept until the next insert or delete)."""
        ordered = self._ordered[resource]
        if ordered is None:
            ordered = sorted(objects)
            self._ordered[resource] = ordered
        return ordered
