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
from deltasync.engine.groups import plan_groups, push_groups, retire_groups
from deltasync.engine.ledger import DryLedger, Ledger, Records
from deltasync.engine.ondemand import (
    TracingSource,
    TracingTarget,
    pull_users,
    trace_plan,
    trace_results,
)
from deltasync.engine.plan import plan_and_push
from deltasync.engine.ports import Collections, Source, Store, Target
from deltasync.engine.progress import NO_PROGRESS, Progress
from deltasync.engine.pull import pull
from deltasync.engine.report import RunReport
from deltasync.engine.settings import EngineSettings, RunOptions
from deltasync.engine.undo import undo
from deltasync.models import Kind

_ACTION_ORDER = {
    Kind.USER.value: 0,
    Kind.PERSON.value: 1,
    Kind.MEMBERSHIP.value: 2,
    Kind.GROUP.value: 3,
}


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
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.source = source
        self.target = target
        self.settings = settings
        self.names = resources
        self.log = log
        self.progress = progress
        self.now = now
        self.stop = stop
        self.lease = Lease(store, holder)
        self.run_id: int | None = None
        self.report: RunReport | None = None

    def _ledger(self, opts: RunOptions) -> Records:
        if opts.dry_run:
            return DryLedger()
        return Ledger(self.store, self.run_id or 0, self.now)

    def _start(self, opts: RunOptions) -> Run:
        report = self.report = RunReport(opts.command, opts.dry_run, run_id=self.run_id)
        report.actions.sink = opts.actions_sink
        source: Source = self.source
        target: Target = self.target
        if opts.users:
            source, target = TracingSource(source, report), TracingTarget(target, report)
        return Run(
            store=self.store,
            source=source,
            target=target,
            names=self.names,
            settings=self.settings,
            opts=opts,
            report=report,
            ledger=self._ledger(opts),
            lease=self.lease,
            directory=Directory(target, self.names),
            log=self.log,
            now=self.now,
            progress=self.progress,
            stop=self.stop,
        )

    async def undo(self, opts: RunOptions, run_id: int, *, force: bool) -> RunReport:
        """Put back what run ``run_id`` changed (:mod:`deltasync.engine.undo`)."""
        started = time.monotonic()
        run = self._start(opts)
        report = run.report
        self.progress.begin(self.run_id)
        eliza0, writes0 = self.target.requests, self.target.writes
        try:
            await undo(run, run_id, force=force)
        finally:
            run.ledger.flush()  # the ledger writes behind: commit what was done
            report.eliza_requests = self.target.requests - eliza0
            report.eliza_writes = self.target.writes - writes0
            report.duration_s = time.monotonic() - started
        return report

    async def run(self, opts: RunOptions) -> RunReport:
        """One whole run; the caller holds the lease and records the run."""
        started = time.monotonic()
        run = self._start(opts)
        report = run.report
        self.progress.begin(self.run_id)
        graph0, eliza0, writes0 = self.source.requests, self.target.requests, self.target.writes
        try:
            mark = time.monotonic()
            await (pull_users(run) if opts.users else pull(run))
            report.timings["pull"] = time.monotonic() - mark
            if self.stop():
                report.warnings.append("stopped before planning (signal); nothing half-done")
                return report
            mark = time.monotonic()
            groups = plan_groups(run)
            await push_groups(run, groups)  # custom groups first: the users' plans need their ids
            if groups is not None:
                report.timings["groups"] = time.monotonic() - mark
            mark = time.monotonic()
            await plan_and_push(run, groups, trace_plan if opts.users else None)
            await retire_groups(run, groups)  # after their members lost them
            report.timings["push"] = time.monotonic() - mark - report.timings.get("plan", 0.0)
            if opts.users:
                trace_results(report)
            if report.actions and not opts.dry_run:
                hint = recommend_once(self.store, self.settings)
                if hint is not None:
                    report.warnings.append(hint)
                    self.log(f"warning: {hint}")
        finally:
            run.ledger.flush()  # the ledger writes behind: commit what was done, also on error
            report.actions.sort(
                key=lambda a: (str(a["label"]).lower(), _ACTION_ORDER.get(a["kind"], 3))
            )
            report.graph_requests = self.source.requests - graph0
            report.eliza_requests = self.target.requests - eliza0
            report.eliza_writes = self.target.writes - writes0
            report.duration_s = time.monotonic() - started
        return report
