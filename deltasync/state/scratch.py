"""The ELIZA lookup cache's rows, kept out of the process's memory in a private SQLite file.

Before a big first sync the push reads ELIZA's users and persons once and then remembers
every object it creates, so that matching stays O(1) per lookup. At 100,000 users that is
200,000 rows: held as Python dicts with their indexes they took about 1.4 KB each, 280 MB
of the first sync's peak. Here they live in SQLite's private temporary database (the empty
file name: on disk, deleted when closed), with a small page cache; a lookup is one indexed
query of a few microseconds. The file is this run's alone and is never the state database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

CACHE_KIB = 4096  # SQLite's page cache for the file; the rest stays on disk
KEYS = 3  # indexed keys per row at most (matching looks users and persons up by three)

_SCHEMA = """
CREATE TABLE row (kind TEXT NOT NULL, oid TEXT NOT NULL, k0 TEXT, k1 TEXT, k2 TEXT,
                  data TEXT NOT NULL, PRIMARY KEY (kind, oid));
CREATE INDEX ix_k0 ON row (kind, k0);
CREATE INDEX ix_k1 ON row (kind, k1);
CREATE INDEX ix_k2 ON row (kind, k2);
"""


def _text(value: Any) -> str:
    """A key or id as JSON text: 1 and "1" stay apart, as they do in the rows."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class ScratchRows:
    """Rows by kind and id, found by their indexed keys (see :class:`deltasync.engine.ports.
    LookupRows`). One statement per put, drop or lookup: a first sync makes 200,000 puts."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.executescript(_SCHEMA)
        self._columns: dict[tuple[str, str], str] = {}  # (kind, key name) -> its column

    def _column(self, kind: str, name: str) -> str | None:
        column = self._columns.get((kind, name))
        if column is None:
            taken = sum(1 for k, _ in self._columns if k == kind)
            if taken >= KEYS:
                return None
            column = self._columns[(kind, name)] = f"k{taken}"
        return column

    def put(self, kind: str, oid: Any, row: Mapping[str, Any], keys: Mapping[str, Any]) -> None:
        """Hold ``row`` (replacing the one with that id), found by each of ``keys``."""
        values: dict[str, str | None] = {"k0": None, "k1": None, "k2": None}
        for name, value in keys.items():
            column = self._column(kind, name)
            if column is None:
                raise ValueError(f"at most {KEYS} keys per kind ({kind}: {name!r} is one more)")
            values[column] = _text(value)
        self._db.execute(
            "INSERT OR REPLACE INTO row (kind, oid, k0, k1, k2, data) VALUES (?, ?, ?, ?, ?, ?)",
            (
                kind,
                _text(oid),
                values["k0"],
                values["k1"],
                values["k2"],
                json.dumps(dict(row), separators=(",", ":"), default=str),
            ),
        )

    def drop(self, kind: str, oid: Any) -> None:
        """Forget the row with that id, if any."""
        self._db.execute("DELETE FROM row WHERE kind = ? AND oid = ?", (kind, _text(oid)))

    def find(self, kind: str, name: str, value: Any) -> list[dict[str, Any]]:
        """The rows whose key ``name`` is ``value``, in the order they were put."""
        column = self._columns.get((kind, name))
        if column is None:
            return []
        cur = self._db.execute(
            f"SELECT data FROM row WHERE kind = ? AND {column} = ? ORDER BY rowid",
            (kind, _text(value)),
        )
        return [json.loads(data) for (data,) in cur]

    def rows(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every row of ``kind`` (for a lookup by a field that has no key)."""
        cur = self._db.execute("SELECT data FROM row WHERE kind = ? ORDER BY rowid", (kind,))
        for (data,) in cur:
            yield json.loads(data)

    def count(self, kind: str) -> int:
        """How many rows of ``kind`` are held."""
        (n,) = self._db.execute("SELECT count(*) FROM row WHERE kind = ?", (kind,)).fetchone()
        return int(n)

    def close(self) -> None:
        """Delete the file."""
        self._db.close()
