"""The state store of a config, opened (and migrated) for one command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from deltasync.config import Config
from deltasync.state import StateStore, open_store


@contextmanager
def store_for(config: Config) -> Iterator[StateStore]:
    """The state store, migrated, closed afterwards."""
    store = open_store(config.state.url)
    try:
        yield store
    finally:
        store.close()
