"""The DELTASYNC_FAILPOINT test seam: what it accepts, and that it costs nothing when unset."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from deltasync.state import failpoint


def test_a_failpoint_names_a_phase_and_a_positive_count() -> None:
    assert failpoint._parse(None) is None
    assert failpoint._parse("") is None
    assert failpoint._parse("before-commit:3") == ("before-commit", 3)
    assert failpoint._parse("after-commit:12") == ("after-commit", 12)
    for bad in ("commit:3", "after-commit:0", "after-commit:x", "after-commit"):
        with pytest.raises(ValueError, match="DELTASYNC_FAILPOINT"):
            failpoint._parse(bad)


def test_unset_it_wraps_nothing() -> None:
    assert failpoint._POINT is None  # the test run does not set it
    engine = create_engine("sqlite://")
    original = engine.dialect.do_commit
    failpoint.install(engine)
    assert engine.dialect.do_commit == original
