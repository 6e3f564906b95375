"""Human output: the two consoles, the run report for people, JSON for machines.

The run report (and a dry run's plan), the JSON of ``--json`` and the state commands' output go
to stdout; log lines, warnings and progress to stderr (:mod:`deltasync.cli.output`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from deltasync.cli.prog import prog_name, with_prog

if TYPE_CHECKING:
    from deltasync.service import RunReport

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

MARKS = {
    "create": "+",
    "match": "=",
    "update": "~",
    "deactivate": "-",
    "delete": "x",
    "reactivate": "^",
    "end": "-",
    "reopen": "^",
    "empty": "-",
}


class ActionFile:
    """Every action of a run as JSON lines, written as it comes and read back streamed.

    ``--json-actions FILE`` keeps them in FILE; a dry run (which lists every action) and a
    verbose run spool them to a temporary file, so the report need not hold them all.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.file: IO[str] = (
            tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by close())
            if path is None
            else path.open("w+", encoding="utf-8")
        )

    def write(self, action: dict[str, Any]) -> None:
        self.file.write(json.dumps(action, ensure_ascii=False, default=str) + "\n")

    def replay(self) -> Iterator[dict[str, Any]]:
        self.file.flush()
        self.file.seek(0)
        try:
            for line in self.file:
                yield json.loads(line)
        finally:
            self.file.seek(0, 2)

    def close(self) -> None:
        self.file.close()


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (dates as strings)."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def fmt(value: Any) -> str:
    """A field value as it is shown beside its name: strings quoted, the rest as JSON."""
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _no_actions(report: RunReport) -> str:
    """Why a report lists no action: "nothing to do" only when the run found nothing to do."""
    verb = "planned" if report.dry_run else "applied"
    if report.error is not None:
        return f"nothing {verb}: the run failed (the error is below)"
    if report.held or report.failures or report.conflicts:
        return f"nothing {verb} (see below)"
    return "nothing to do"


def render_report(report: RunReport, *, verbose: bool = False, console: Console = err) -> None:
    """A run report for people: what was read, every action (or a summary), what needs care."""
    title = f"deltasync {report.command}"
    if report.dry_run:
        title += " --dry-run (nothing was written to ELIZA)"
    round_ = f"{report.round_kind or 'no'} round, {report.pages} page(s), "
    round_ += f"{report.objects_seen} object(s) read, {report.objects_changed} changed"
    if report.full_round_reason:
        round_ += f" — full read because {report.full_round_reason}"
    console.print(f"[bold]{escape(title)}[/]")
    console.print(escape(round_))
    show_all = report.dry_run or verbose or len(report.actions) <= 30
    every = report.actions.every()
    shown = every if show_all else (a for a in every if a["result"] not in ("ok", "planned"))
    for i, a in enumerate(shown):
        if i == 0:
            console.print("actions:" if show_all else "actions needing attention:")
        head = f"  {MARKS.get(a['op'], '?')} {a['kind']:<10} {a['op']:<10} {a['label']}" + (
            f" (#{a['eliza_id']})" if a["eliza_id"] else ""
        )
        suffix = "" if a["result"] in ("ok", "planned") else f"  [{a['result'].upper()}]"
        console.print(escape(head + suffix + f"  — {a['reason']}"))
        marks = a.get("adoption") or {}
        for name, (old, new) in a["changes"].items():
            note = "  (overwritten)" if marks.get(name) == "overwritten" else ""
            console.print(escape(f"      {name}: {fmt(old)} → {fmt(new)}{note}"))
        for name, value in (a.get("kept") or {}).items():
            console.print(escape(f"      {name}: {fmt(value)} kept (Entra has none)"))
        for entry in a.get("groups", ()):
            console.print(escape(f"      {entry[0]}group {entry[1:]}"))
    if report.actions.truncated and report.actions.sink is None:
        console.print(
            f"  … the first {len(report.actions.kept)} of {len(report.actions)} actions are "
            f"shown; `{prog_name()} state runs` and `state user` list every one"
        )
    counts = report.counts()
    if counts:
        summary = "; ".join(
            f"{kind}: " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))
            for kind, ops in sorted(counts.items())
        )
        console.print(("planned " if report.dry_run else "applied ") + escape(summary))
    elif not report.actions:
        console.print(_no_actions(report))
    for line_ in report.summary_lines():
        console.print(escape(with_prog(line_)))
    if report.deferred_objects:
        console.print(f"{report.deferred_objects} object(s) wait for later runs (--limit-users)")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(with_prog(w))}")
    if report.held:
        console.print(
            f"[red]held:[/] {len(report.held)} deactivation(s) — {escape(report.threshold or '')}"
        )
        for h in report.held:
            console.print(escape(f"  {h['label']} ({h['status']})"))
        if not report.dry_run:
            console.print(
                f"rerun with `{prog_name()} {report.command} --allow-deletes` to release them"
            )
    for title_, rows in (("conflicts", report.conflicts), ("failures", report.failures)):
        if rows:
            console.print(f"[red]{title_}:[/] {len(rows)}")
            for f in rows:
                console.print(
                    escape(with_prog(f"  {f['label']} {f['kind']} {f['op']}: {f['message']}"))
                )
    if report.error:
        console.print(f"[red]error:[/] {escape(with_prog(report.error))}")
    if verbose:
        idle = report.objects_changed - report.planned_objects
        if idle > 0:
            console.print(f"{idle} object(s) changed in Entra but need nothing in ELIZA")
        if report.timings:
            console.print(
                "timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
            )
    line = (
        f"requests: Graph {report.graph_requests}, ELIZA {report.eliza_requests} "
        f"({report.eliza_writes} writes); {report.duration_s:.1f}s"
    )
    console.print(escape(line) + (f"; exit {report.exit_code}" if verbose else ""))
