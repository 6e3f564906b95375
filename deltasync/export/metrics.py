"""A run's figures as a Prometheus text file, for node_exporter's textfile collector.

Cron runs leave no process to scrape, so each run rewrites one file (atomically) that
node_exporter serves; alerts then fire on a stale timestamp, a failed run or held
deactivations. The file name must end in ``.prom`` for the collector to read it.
Plain data in (the JSON run report), file out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from deltasync.errors import UsageError
from deltasync.export.paths import check_metrics_path

PREFIX = "deltasync_"
#: Series that exist (as 0) in every file, so alerts and graphs never see them vanish.
KINDS = ("user", "person", "membership")
OPS = ("create", "match", "update", "deactivate", "reactivate", "delete", "end", "reopen")
CATEGORIES = {"failures": "error", "conflicts": "conflict"}


def write_metrics(path: Path, report: Mapping[str, Any], *, now: float | None = None) -> None:
    """Write the figures of one run report (``RunReport.as_dict()``) to ``path``, atomically.

    A failed run (``error`` set) writes every metric too, zeros where the report has none, so
    the file always says how the last run ended. ``now`` (epoch seconds) defaults to the clock.
    """
    check_metrics_path(path)
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(PREFIX + name, doc, registry=registry).set(value)

    error = report.get("error")
    exit_code = _number(report.get("exit_code"), 1 if error else 0)
    round_ = report.get("round") or {}
    requests = report.get("requests") or {}
    gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).", _clock(now))
    gauge("last_run_exit_code", "Exit code of the last run (0 ok, 1 failed, 3, 4).", exit_code)
    gauge("last_run_success", "1 when the last run exited 0, else 0.", int(exit_code == 0))
    gauge(
        "last_run_duration_seconds",
        "How long the last run took.",
        _number(report.get("duration_s")),
    )
    gauge(
        "deactivations_held",
        "Entra users whose deactivation the deletion threshold held back.",
        len(_entries(report.get("held"))),
    )
    gauge("graph_requests", "Microsoft Graph requests the last run made.", _req(requests, "graph"))
    gauge("eliza_requests", "ELIZA API requests the last run made.", _req(requests, "eliza"))
    gauge("eliza_writes", "ELIZA writes the last run made.", _req(requests, "eliza_writes"))
    gauge("delta_pages", "Graph delta pages the last run read.", _number(round_.get("pages")))
    gauge(
        "objects_seen",
        "Entra objects the last run read from Graph.",
        _number(round_.get("objects_seen")),
    )
    gauge(
        "full_round",
        "1 when the last run read a full round (not an incremental delta).",
        int(round_.get("kind") == "full"),
    )

    changed = Gauge(
        PREFIX + "objects_changed",
        "ELIZA objects the last run changed (in a dry run: would change), by kind and operation.",
        ["kind", "op"],
        registry=registry,
    )
    counts: Mapping[str, Mapping[str, Any]] = report.get("counts") or {}
    for kind in sorted({*KINDS, *counts}):
        ops = counts.get(kind) or {}
        for op in sorted({*OPS, *ops}):
            changed.labels(kind=kind, op=op).set(_number(ops.get(op)))

    failed = Gauge(
        PREFIX + "objects_failed",
        "Objects the last run could not push, by kind and category (error or conflict).",
        ["kind", "category"],
        registry=registry,
    )
    tally: Counter[tuple[str, str]] = Counter()
    for key, category in CATEGORIES.items():
        for entry in _entries(report.get(key)):
            tally[str(entry.get("kind") or "user"), category] += 1
    for kind in sorted({*KINDS, *(k for k, _ in tally)}):
        for category in CATEGORIES.values():
            failed.labels(kind=kind, category=category).set(tally[kind, category])

    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise UsageError(f"cannot write metrics to {path}: {exc.strerror or exc}") from exc


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


def _number(value: Any, default: float = 0) -> float:
    """A report figure, or ``default`` where a failed run's report has none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return value


def _req(requests: Mapping[str, Any], key: str) -> float:
    return _number(requests.get(key))


def _entries(value: Any) -> Sequence[Mapping[str, Any]]:
    return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []
