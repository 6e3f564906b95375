"""The progress port: how the phases of a run say how far they are.

The engine calls it; the CLI renders it (rich bars on a terminal, rate-limited timestamped
lines in a cron log). The default does nothing, so tests and library callers need none.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives a run's progress: its id, then each phase's start, advances and end."""

    def begin(self, run_id: int | None) -> None:
        """The run has started and has this id (None when it is not recorded)."""

    def phase(self, name: str, total: int | None = None) -> None:
        """A phase (``pull``, ``push``) starts; ``total`` objects when known."""

    def advance(self, objects: int = 1, *, pages: int = 0) -> None:
        """The current phase has done ``objects`` more objects (and read ``pages`` pages)."""

    def done(self) -> None:
        """The current phase has ended."""


class NoProgress:
    """Progress that goes nowhere."""

    def begin(self, run_id: int | None) -> None:
        pass

    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, objects: int = 1, *, pages: int = 0) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS: Progress = NoProgress()
