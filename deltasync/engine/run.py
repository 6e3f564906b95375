"""One run: pull Graph deltas into the mirror, plan, push to ELIZA.

The delta cursor only ever describes what is in the mirror, and a link only what ELIZA
accepted; both are committed right after the fact they describe, so a crash at any instant
leaves a state that the next run converges from. The commit order is in
:mod:`deltasync.engine.push`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from deltasync.engine.adoption import recommend_once
from deltasync.engine.context import Lease, Run
from deltasync.engine.directory import Directory
from deltasync.engine.ledger import DryLedger, Ledger, Records
from deltasync.engine.plan import plan
from deltasync.engine.ports import Collections, Source, Store, Target
from deltasync.engine.progress import NO_PROGRESS, Progress
from deltasync.engine.pull import pull
from deltasync.engine.push import push
from deltasync.engine.report import RunReport
from deltasync.engine.settings import EngineSettings, RunOptions
from deltasync.models import Kind

_ACTION_ORDER = {Kind.USER.value: 0, Kind.PERSON.value: 1, Kind.MEMBERSHIP.value: 2}


class Engine:
    """Runs pull → plan → push over the configured resources against one store and target."""

    def __init__(
        self,
        store: Store,
        source: Source,
        target: Target,
        settings: EngineSettings,
        *,
        resources: Collections,
        holder: str,
        log: Callable[[str], None] = lambda _msg: None,
        progress: Progress = NO_PROGRESS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.source = source
        self.target = target
        self.settings = settings
        self.names = resources
        self.log = log
        self.progress = progress
        self.now = now
        self.lease = Lease(store, holder)
        self.run_id: int | None = None
        self.report: RunReport | None = None

    def _ledger(self, opts: RunOptions) -> Records:
        if opts.dry_run:
            return DryLedger()
        return Ledger(self.store, self.run_id or 0, self.now)

    async def run(self, opts: RunOptions) -> RunReport:
        """One whole run; the caller holds the lease and records the run."""
        started = time.monotonic()
        report = self.report = RunReport(opts.command, opts.dry_run, run_id=self.run_id)
        run = Run(
            store=self.store,
            source=self.source,
            target=self.target,
            names=self.names,
            settings=self.settings,
            opts=opts,
            report=report,
            ledger=self._ledger(opts),
            lease=self.lease,
            directory=Directory(self.target, self.names),
            log=self.log,
            now=self.now,
            progress=self.progress,
        )
        self.progress.begin(self.run_id)
        graph0, eliza0, writes0 = self.source.requests, self.target.requests, self.target.writes
        try:
            mark = time.monotonic()
            await pull(run)
            report.timings["pull"] = time.monotonic() - mark
            mark = time.monotonic()
            planned = await plan(run)
            report.timings["plan"] = time.monotonic() - mark
            mark = time.monotonic()
            await push(run, planned)
            report.timings["push"] = time.monotonic() - mark
            if report.actions and not opts.dry_run:
                hint = recommend_once(self.store, self.settings)
                if hint is not None:
                    report.warnings.append(hint)
                    self.log(f"warning: {hint}")
        finally:
            report.actions.sort(
                key=lambda a: (str(a["label"]).lower(), _ACTION_ORDER.get(a["kind"], 3))
            )
            report.graph_requests = self.source.requests - graph0
            report.eliza_requests = self.target.requests - eliza0
            report.eliza_writes = self.target.writes - writes0
            report.duration_s = time.monotonic() - started
        return report
