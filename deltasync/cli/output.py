"""What a run writes on stderr while it works: log lines and progress.

On a terminal: rich progress bars (counts, rate, ETA) and dim log lines above them. Without one
(cron, a pipe): plain lines, each starting with a UTC timestamp and the run id
(``2026-12-02T06:10:00Z run 42 pull: …``), one line when a phase ends and at most one progress
line a minute in between. Lines logged before the run has an id wait for it.

With ``hold`` (``-q``) nothing is written until :meth:`RunOutput.close` says the run is worth
showing; an idle run then leaves stderr empty. Both renderers implement the engine's progress
port (``begin``/``phase``/``advance``/``done``), which the service passes to the engine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

PROGRESS_INTERVAL_S = 60.0


def utc_stamp(now: datetime) -> str:
    """``2026-12-02T06:10:00Z``."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s"


@dataclass
class _Phase:
    name: str
    total: int | None
    started: float
    objects: int = 0
    pages: int = 0

    def figures(self, now: float) -> str:
        if self.total == 0:
            return "nothing to do"
        counted = f"{self.objects}/{self.total}" if self.total is not None else str(self.objects)
        text = f"{counted} object{'' if (self.total or self.objects) == 1 else 's'}"
        if self.pages:
            text = f"{self.pages} page{'s' if self.pages != 1 else ''}, " + text
        elapsed = now - self.started
        if elapsed > 0 and self.objects:
            rate = self.objects / elapsed
            text += f" ({rate:.0f}/s"
            if self.total and rate > 0 and self.objects < self.total:
                text += f", about {_duration((self.total - self.objects) / rate)} left"
            text += ")"
        return text


class RunOutput:
    """Log lines and progress of one run; the base holds lines back while ``hold`` is set."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.run_id: int | None = None
        self._held: list[str] = []

    # -- the engine's progress port
    def begin(self, run_id: int | None) -> None:
        self.run_id = run_id

    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, objects: int = 1, *, pages: int = 0) -> None:
        pass

    def done(self) -> None:
        pass

    # -- log lines
    def log(self, message: str) -> None:
        """One log line (a warning starts with ``warning:``)."""
        self._emit(message)

    def close(self, show: bool = True) -> None:
        """The run is over: write what was held back if ``show``, else drop it."""
        held, self._held, self.hold = self._held, [], False
        if show:
            for line in held:
                self._write(line)

    def _emit(self, line: str) -> None:
        if self.hold:
            self._held.append(line)
        else:
            self._write(line)

    def _write(self, line: str) -> None:
        raise NotImplementedError


class PlainOutput(RunOutput):
    """Timestamped lines for a log file; progress at most once every ``interval`` seconds."""

    def __init__(
        self,
        write: Callable[[str], None] | None = None,
        *,
        hold: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: float = PROGRESS_INTERVAL_S,
    ) -> None:
        super().__init__(hold=hold)
        self._out = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.clock = clock
        self.wallclock = wallclock
        self.interval = interval
        self._phase: _Phase | None = None
        self._last_line = 0.0
        self._waiting: list[tuple[str, str]] = []  # (stamp, message) before the run id

    def begin(self, run_id: int | None) -> None:
        super().begin(run_id)
        waiting, self._waiting = self._waiting, []
        for stamp, message in waiting:
            self._emit(self._line(stamp, message))

    def phase(self, name: str, total: int | None = None) -> None:
        self._phase = _Phase(name, total, self.clock())
        self._last_line = self._phase.started

    def advance(self, objects: int = 1, *, pages: int = 0) -> None:
        p = self._phase
        if p is None:
            return
        p.objects += objects
        p.pages += pages
        now = self.clock()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.log(f"{p.name}: {p.figures(now)} so far")

    def done(self) -> None:
        p, self._phase = self._phase, None
        if p is None:
            return
        now = self.clock()
        took = "" if p.total == 0 else f" in {_duration(now - p.started)}"
        self.log(f"{p.name}: {p.figures(now)}{took}")

    def log(self, message: str) -> None:
        stamp = utc_stamp(self.wallclock())
        if self.run_id is None:
            self._waiting.append((stamp, message))
        else:
            self._emit(self._line(stamp, message))

    def close(self, show: bool = True) -> None:
        waiting, self._waiting = self._waiting, []  # the run never got an id
        for stamp, message in waiting:
            self._emit(self._line(stamp, message))
        super().close(show)

    def _line(self, stamp: str, message: str) -> str:
        who = f"run {self.run_id}" if self.run_id is not None else "deltasync"
        return f"{stamp} {who} {message}"

    def _write(self, line: str) -> None:
        self._out(line)


class _Counts(ProgressColumn):
    """``1200/20000 objects, 12 pages`` (no total: ``1200 objects``)."""

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        text = f"{done}/{int(task.total)}" if task.total is not None else f"{done}"
        text += " objects"
        pages = task.fields.get("pages", 0)
        if pages:
            text += f", {pages} page{'s' if pages != 1 else ''}"
        return Text(text)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.0f}/s", style="cyan")


class RichOutput(RunOutput):
    """Progress bars on the terminal; log lines printed above them, dim."""

    def __init__(self, console: Console, *, hold: bool = False) -> None:
        super().__init__(hold=hold)
        self.console = console
        self._bars: RichProgress | None = None
        self._task: TaskID | None = None

    def phase(self, name: str, total: int | None = None) -> None:
        if self.hold:
            return
        if self._bars is None:
            self._bars = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description:<5}"),
                BarColumn(),
                _Counts(),
                _Rate(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bars.start()
        self._task = self._bars.add_task(name, total=total, pages=0)

    def advance(self, objects: int = 1, *, pages: int = 0) -> None:
        if self._bars is None or self._task is None:
            return
        task = self._current(self._bars, self._task)
        self._bars.update(
            self._task, advance=objects, pages=int(task.fields.get("pages", 0)) + pages
        )

    def done(self) -> None:
        if self._bars is None or self._task is None:
            return
        task = self._current(self._bars, self._task)
        if task.total is None:  # a delta round: now its size is known
            self._bars.update(self._task, total=task.completed)
        self._bars.stop_task(self._task)
        self._task = None

    @staticmethod
    def _current(bars: RichProgress, task_id: TaskID) -> Task:
        return next(t for t in bars.tasks if t.id == task_id)

    def close(self, show: bool = True) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
        super().close(show)

    def _write(self, line: str) -> None:
        self.console.print(f"[dim]{escape(line)}[/]")


def run_output(console: Console, *, hold: bool) -> RunOutput:
    """Bars on a terminal, timestamped lines otherwise."""
    if console.is_terminal:
        return RichOutput(console, hold=hold)
    return PlainOutput(hold=hold)
