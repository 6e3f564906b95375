"""``sync`` and ``resync``: build the clients from the config and run the engine under the lease.

This is the composition root of a run; tests call :func:`run_sync` with the sandbox's
transports injected through :class:`Seams`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from deltasync.config import Config
from deltasync.eliza.client import DryRunEliza, ElizaClient, Resource
from deltasync.engine import NO_PROGRESS, Engine, EngineSettings, Progress, RunOptions, RunReport
from deltasync.errors import DeltaSyncError, LeaseHeldError, UsageError
from deltasync.graph.client import GraphSource
from deltasync.service.settings import SyncFlags, engine_settings
from deltasync.service.store import store_for

if TYPE_CHECKING:
    import httpx

    from deltasync.state import StateStore

Log = Callable[[str], None]
OnReport = Callable[[RunReport], None]
Work = Callable[[Engine], Awaitable[RunReport]]
NO_FLAGS = SyncFlags()


@dataclass(frozen=True)
class Seams:
    """Injected transports for tests and the in-process sandbox; None = the real network."""

    graph_transport: httpx.AsyncBaseTransport | None = None
    eliza_transport: httpx.AsyncBaseTransport | None = None
    credential: Any = None


def lease_holder() -> str:
    """Who holds the lease: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_sync(
    config: Config,
    opts: RunOptions,
    flags: SyncFlags = NO_FLAGS,
    *,
    seams: Seams = Seams(),
    log: Log = lambda _m: None,
    progress: Progress = NO_PROGRESS,
    on_report: OnReport = lambda _r: None,
    work: Work | None = None,
) -> RunReport:
    """The hourly job (and resync, sync --user, undo): pull, plan, push, under the lease,
    recorded as a run. ``work`` replaces the run's pull-plan-push (``undo``).

    ``on_report`` receives the run's report once the run has ended, also when it failed (then
    with ``error`` set, before the exception propagates), so a failed run can be reported with
    what it did up to the failure.
    """
    settings = engine_settings(config, flags)
    with store_for(config) as store:
        holder = lease_holder()
        if not store.acquire_lease(holder):
            raise LeaseHeldError(
                f"another run holds the lease ({lease_words(store.lease_info())}); nothing was done"
            )
        notices = list(store.notices)
        if store.taken_over:
            notices.append(f"took over the lease of {store.taken_over}: that process is gone")
            log(notices[-1])
        try:

            async def session() -> RunReport:
                clients = Clients.build(config, seams)
                try:
                    if opts.users:
                        ids = await resolve_users(store, clients.source, opts.users, log)
                        asked = dataclasses.replace(opts, users=ids)
                        return await one_run(
                            store,
                            settings,
                            asked,
                            clients,
                            holder,
                            log,
                            progress,
                            on_report,
                            notices=notices,
                        )
                    return await one_run(
                        store,
                        settings,
                        opts,
                        clients,
                        holder,
                        log,
                        progress,
                        on_report,
                        work,
                        notices=notices,
                    )
                finally:
                    await clients.aclose()

            report = asyncio.run(session())
            if flags.skip_users or flags.skip_persons:
                report.warnings.append(
                    "--skip-users/--skip-mitarbeitende: the next run without them "
                    "plans every object again"
                )
            return report
        finally:
            store.release_lease(holder)


@dataclass
class Clients:
    """The Graph source and the ELIZA client of a config, kept across the runs of ``watch``."""

    source: GraphSource
    eliza: ElizaClient

    @classmethod
    def build(cls, config: Config, seams: Seams) -> Clients:
        source = GraphSource.from_config(
            config.entra, transport=seams.graph_transport, credential=seams.credential
        )
        return cls(source, ElizaClient.from_config(config.eliza, transport=seams.eliza_transport))

    async def aclose(self) -> None:
        await self.source.aclose()
        await self.eliza.aclose()


async def one_run(
    store: StateStore,
    settings: EngineSettings,
    opts: RunOptions,
    clients: Clients,
    holder: str,
    log: Log,
    progress: Progress,
    on_report: OnReport,
    work: Work | None = None,
    stop: Callable[[], bool] = lambda: False,
    notices: list[str] | None = None,
) -> RunReport:
    """One recorded run with these clients; the caller holds the lease. ``notices`` are what
    opening the state told (a database moved aside, a lease taken over), for its report."""
    run_id = store.start_run(opts.command, opts.dry_run)
    seen = _Seen(notices=notices)
    try:
        report = await _run(
            store, settings, opts, clients, holder, run_id, log, progress, seen, work, stop
        )
    except BaseException as exc:
        if seen.report is None:
            seen.report = RunReport(opts.command, opts.dry_run, run_id=run_id)
            seen.report.error = _error_text(exc)
        on_report(seen.report)
        raise
    on_report(report)
    return report


async def _run(
    store: StateStore,
    settings: EngineSettings,
    opts: RunOptions,
    clients: Clients,
    holder: str,
    run_id: int,
    log: Log,
    progress: Progress,
    seen: _Seen,
    work: Work | None,
    stop: Callable[[], bool],
) -> RunReport:
    target: Any = DryRunEliza(clients.eliza) if opts.dry_run else clients.eliza
    engine = Engine(
        store,
        clients.source,
        target,
        settings,
        resources=Resource,
        holder=holder,
        log=log,
        progress=progress,
        stop=stop,
    )
    engine.run_id = run_id
    report: RunReport | None = None
    try:
        report = await (work(engine) if work is not None else engine.run(opts))
        return report
    except Exception as exc:
        report = engine.report or RunReport(opts.command, opts.dry_run)
        report.error = _error_text(exc)
        raise
    finally:
        if report is None:
            report = engine.report
        if report is not None:
            report.run_id = run_id
            report.warnings[:0] = seen.notices  # a database moved aside, a lease taken over
            seen.report = report
            status = report.status if report.error is None else "failed"
            store.finish_run(run_id, status, report.exit_code, _stored_report(report))
        else:
            store.finish_run(run_id, "failed", 1, {"error": "run did not start"})


_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


async def resolve_users(
    store: StateStore, source: GraphSource, asked: tuple[str, ...], log: Log
) -> tuple[str, ...]:
    """``--user`` values as Entra ids: an id as given; a UPN or mail through the mirror, or
    (unknown there) through Graph's ``GET /users/{upn}``.

    Raises:
        UsageError: Graph knows no user by that name.
    """
    ids: list[str] = []
    for value in asked:
        if _GUID.fullmatch(value.strip()):
            ids.append(value.strip().lower())
            continue
        found = [o.id for o in store.find_objects(value)]
        if len(found) == 1:
            log(f"--user {value}: Entra id {found[0]} (from the state database)")
            ids.append(found[0])
            continue
        entra_id = await source.user_id(value.strip())
        if entra_id is None:
            raise UsageError(f"--user {value}: Graph knows no user with this name or id")
        log(f"--user {value}: Entra id {entra_id} (asked Graph)")
        ids.append(entra_id)
    return tuple(dict.fromkeys(ids))


def run_undo(
    config: Config,
    run_id: int,
    *,
    dry_run: bool = False,
    force: bool = False,
    allow_deletes: bool = False,
    seams: Seams = Seams(),
    log: Log = lambda _m: None,
    progress: Progress = NO_PROGRESS,
    on_report: OnReport = lambda _r: None,
) -> RunReport:
    """``undo RUN_ID``: put back what one run changed, as a journaled run under the lease."""
    opts = RunOptions(command="undo", dry_run=dry_run, allow_deletes=allow_deletes)

    def work(engine: Engine) -> Awaitable[RunReport]:
        return engine.undo(opts, run_id, force=force)

    return run_sync(
        config, opts, seams=seams, log=log, progress=progress, on_report=on_report, work=work
    )


class _Seen:
    """The report of a run, kept for ``on_report`` when the run fails; what opening told."""

    def __init__(self, notices: list[str] | None = None) -> None:
        self.report: RunReport | None = None
        self.notices = notices or []  # warnings for the report: a database moved aside, …


def _error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DeltaSyncError) else f"{type(exc).__name__}: {exc}"


def lease_words(info: Mapping[str, Any] | None) -> str:
    """Who holds the lease and until when, for people (``lease_info`` is a dict)."""
    if not info:
        return "its holder is unknown"
    host, _, rest = str(info.get("holder") or "").partition(":")
    pid = rest.partition(":")[0]
    who = f"process {pid} on {host}" if pid else (host or "an unknown process")
    expires = info.get("expires_at")
    if not expires:
        return who
    try:
        at = datetime.fromisoformat(str(expires))
    except ValueError:
        return f"{who}, until {expires}"
    if at.utcoffset() is not None:
        at = at.astimezone(UTC)
    return f"{who}, until {at:%Y-%m-%d %H:%M:%S} UTC unless it renews it"


def _stored_report(report: RunReport) -> dict[str, Any]:
    """The run report as stored: everything but the per-action list of a large run."""
    data = report.as_dict()
    if len(data["actions"]) > 500:
        data["actions_truncated"] = len(data["actions"])
        data["actions"] = data["actions"][:500]
    return data
