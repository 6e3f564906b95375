"""Pull: read each resource's Graph delta round into the mirror.

Each resource has its own cursor, ``$select`` and round. The delta cursor only ever
describes what is in the mirror: every page is applied, with the cursor moved past it, in
one store transaction, so a crash leaves a round the next run resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from deltasync.engine.context import Run
from deltasync.engine.settings import ResourceSpec
from deltasync.errors import DeltaTokenExpiredError
from deltasync.graph.delta import fingerprint
from deltasync.models import RoundKind


@dataclass
class _Round:
    """What reading one resource's round has done so far."""

    url: str
    kind: RoundKind
    pages: int = 0


async def pull(run: Run) -> None:
    """Read every resource of the settings, in order."""
    for spec in run.settings.resources:
        await _pull(run, spec)


async def _pull(run: Run, spec: ResourceSpec) -> None:
    select = list(spec.select)
    fp = fingerprint(select)
    cursor = run.store.get_cursor(spec.name)
    reason: str | None = None
    if run.opts.full:
        reason = "resync asked for a full read"
    elif cursor is None or (cursor.delta_link is None and cursor.next_link is None):
        reason = "no delta token yet"
    elif cursor.select_fingerprint != fp:
        reason = "the selected Graph properties changed"
    if reason is None and cursor is not None and cursor.next_link:
        current = _Round(cursor.next_link, cursor.round_kind or RoundKind.INCREMENTAL)
        run.log(f"resuming the unfinished {current.kind.value} round")
    elif reason is None and cursor is not None and cursor.delta_link:
        current = _Round(cursor.delta_link, RoundKind.INCREMENTAL)
        run.store.begin_round(spec.name, current.kind, fp, current.url)
    else:
        current = _begin_full(run, spec, fp, reason or "")
    run.progress.phase("pull")
    try:
        await _read_round(run, spec, current)
    except DeltaTokenExpiredError as exc:
        if (
            current.kind == RoundKind.FULL
            and current.pages == 0
            and current.url == run.source.initial_url(spec.name, select)
        ):
            raise  # the very first page of a fresh read: not a token problem
        why = f"Graph no longer accepts the delta token ({exc}); reading everything again"
        run.log(why)
        run.report.warnings.append(why)
        await _read_round(run, spec, _begin_full(run, spec, fp, "the delta token expired"))
    finally:
        run.progress.done()


def _begin_full(run: Run, spec: ResourceSpec, fp: str, reason: str) -> _Round:
    url = run.source.initial_url(spec.name, list(spec.select))
    run.store.begin_round(spec.name, RoundKind.FULL, fp, url)
    run.report.full_round_reason = reason
    run.log(f"full round: {reason}")
    return _Round(url, RoundKind.FULL)


async def _read_round(run: Run, spec: ResourceSpec, current: _Round) -> None:
    report = run.report
    report.round_kind = current.kind.value
    url = current.url
    while True:
        page = await run.source.fetch_page(url, minimal=current.kind == RoundKind.INCREMENTAL)
        stats = run.store.apply_page(spec.name, page, replace=current.kind == RoundKind.FULL)
        current.pages += 1
        report.pages += 1
        report.objects_seen += stats.seen
        report.objects_changed += stats.changed
        run.lease.renew()
        run.progress.advance(stats.seen, pages=1)
        if page.delta_link is not None:
            report.round_complete = True
            return
        if run.stop():
            return  # the page and its nextLink are stored: the next run resumes here
        assert page.next_link is not None
        url = page.next_link
