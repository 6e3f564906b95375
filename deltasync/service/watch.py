"""``watch``: the delta loop, continuously, under one lease.

Each cycle is a normal ``sync`` run (recorded, journaled, with its report and metrics file);
when nothing changed it costs one Graph request per resource (the stored ``deltaLink``) and
no ELIZA request. The Graph and ELIZA clients live across cycles, so the access token is
fetched once an hour, not once a cycle.

- The lease is taken once and renewed before every cycle and every 30 s while waiting; a
  lost lease ends the loop (exit 75).
- A network outage or Graph throttling (after the client's own retries) fails one cycle:
  the wait before the next one doubles, up to ``MAX_BACKOFF_S``, logged each time, and goes
  back to the interval after a good cycle. Any other error ends the loop with its exit code.
- The config is read once. When the file changes, the loop says once that a restart is
  needed and keeps running with the configuration it started with (a typo in the new file
  never stops offboarding).
- SIGTERM/SIGINT: the cycle under way finishes the object it is writing and stops (objects
  not started stay dirty for the next run); a wait is cut short. Then the loop ends, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltasync.config import Config
from deltasync.engine import NO_PROGRESS, RunOptions, RunReport
from deltasync.errors import LeaseHeldError, ServiceUnavailableError, StateStoreError
from deltasync.service.settings import SyncFlags, engine_settings
from deltasync.service.store import store_for
from deltasync.service.sync import Clients, Seams, lease_holder, lease_words, one_run

Log = Callable[[str], None]
MAX_BACKOFF_S = 300.0
RENEW_EVERY_S = 30.0
NO_SEAMS = Seams()


@dataclass
class WatchResult:
    """How a watch loop went: its cycles, failed cycles, and the last report."""

    cycles: int = 0
    failed_cycles: int = 0
    graph_requests: int = 0
    eliza_requests: int = 0
    last: RunReport | None = None
    reports: list[RunReport] = field(default_factory=list)
    stopped_by: str | None = None


class Stop:
    """Set by SIGTERM/SIGINT (or a test); the loop and the engine look at it."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.event: asyncio.Event | None = None

    def __call__(self) -> bool:
        return self.reason is not None

    def set(self, reason: str) -> None:
        self.reason = reason
        if self.event is not None:
            self.event.set()


def _fingerprint(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def run_watch(
    config: Config,
    *,
    interval_s: float = 60.0,
    config_path: Path | None = None,
    metrics_file: Path | None = None,
    write_metrics: Callable[[Path, dict[str, Any]], None] | None = None,
    seams: Seams = NO_SEAMS,
    log: Log = lambda _m: None,
    stop: Stop | None = None,
    max_cycles: int | None = None,
    keep_reports: bool = False,
    on_report: Callable[[RunReport], None] = lambda _r: None,
) -> WatchResult:
    """Run ``sync`` every ``interval_s`` seconds until stopped (or ``max_cycles``)."""
    stop = stop or Stop()
    settings = engine_settings(config, SyncFlags())
    result = WatchResult()
    with store_for(config) as store:
        holder = lease_holder()
        if not store.acquire_lease(holder):
            raise LeaseHeldError(
                f"another run holds the lease ({lease_words(store.lease_info())}); nothing was done"
            )
        try:
            asyncio.run(
                _loop(
                    config, store, settings, holder, interval_s, config_path, metrics_file,
                    write_metrics, seams, log, stop, max_cycles, keep_reports, on_report, result,
                )
            )  # fmt: skip
        finally:
            store.release_lease(holder)
    result.stopped_by = stop.reason
    return result


async def _loop(
    config: Config,
    store: Any,
    settings: Any,
    holder: str,
    interval_s: float,
    config_path: Path | None,
    metrics_file: Path | None,
    write_metrics: Callable[[Path, dict[str, Any]], None] | None,
    seams: Seams,
    log: Log,
    stop: Stop,
    max_cycles: int | None,
    keep_reports: bool,
    on_report: Callable[[RunReport], None],
    result: WatchResult,
) -> None:
    stop.event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # not the main thread (tests): the caller's Stop still works
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set, signal.Signals(sig).name)
    started_with = _fingerprint(config_path)
    warned_for: str | None = None
    backoff = 0.0
    opts = RunOptions(command="watch")
    clients = Clients.build(config, seams)
    log(f"watch: a sync every {interval_s:g} s; SIGTERM or Ctrl-C stops it between objects")
    try:
        while not stop():
            if not store.renew_lease(holder):
                raise LeaseHeldError("watch lost its lease to another run; it stops")
            now_fp = _fingerprint(config_path)
            if now_fp != started_with and now_fp != warned_for:
                warned_for = now_fp
                log(
                    f"warning: {config_path} changed; watch keeps running with the "
                    "configuration it started with - restart it to apply the change"
                )
            g0, e0 = clients.source.requests, clients.eliza.requests
            try:
                report = await one_run(
                    store, settings, opts, clients, holder, log, NO_PROGRESS, on_report,
                    stop=stop,
                )  # fmt: skip
                backoff = 0.0
            except (ServiceUnavailableError, StateStoreError) as exc:
                result.failed_cycles += 1
                backoff = min(MAX_BACKOFF_S, max(interval_s, backoff * 2 or interval_s))
                log(f"watch: cycle failed ({exc}); next try in {backoff:g} s")
                report = None
            result.cycles += 1
            result.graph_requests += clients.source.requests - g0
            result.eliza_requests += clients.eliza.requests - e0
            if report is not None:
                result.last = report
                if keep_reports:
                    result.reports.append(report)
                if report.counts() or report.failures or report.conflicts or report.held:
                    log(f"watch: run {report.run_id}: {report.counts()} exit {report.exit_code}")
                if metrics_file is not None and write_metrics is not None:
                    write_metrics(metrics_file, report.as_dict())
            if max_cycles is not None and result.cycles >= max_cycles:
                break
            await _wait(store, holder, backoff or interval_s, stop)
    finally:
        await clients.aclose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    if stop():
        log(f"watch: stopped ({stop.reason}); the next run carries on from here")


async def _wait(store: Any, holder: str, seconds: float, stop: Stop) -> None:
    """Sleep, renewing the lease every 30 s; a stop request ends the wait at once."""
    assert stop.event is not None
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            await asyncio.wait_for(stop.event.wait(), timeout=min(left, RENEW_EVERY_S))
        except TimeoutError:
            if left > RENEW_EVERY_S and not store.renew_lease(holder):
                raise LeaseHeldError("watch lost its lease to another run; it stops") from None
