"""The command line: parse, load the config, call one service function, render, exit.

Human output of sync runs goes to stderr (cron logs take both streams), the JSON report of
``--json`` to stdout. :func:`run_cli` is the one place exceptions become exit codes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from deltasync import __version__, service
from deltasync.config import Config, load_config, resolve_config_path
from deltasync.engine import RunOptions, RunReport
from deltasync.errors import ConfigError, DeltaSyncError, UsageError, exit_code_for

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Keeps ELIZA in step with Microsoft Entra ID (Graph delta queries).",
    context_settings={"help_option_names": ["-h", "--help"]},
)
state_app = typer.Typer(
    invoke_without_command=True,
    help="Inspect the state: tokens, counts, runs, failures, one person.",
)
db_app = typer.Typer(help="State database maintenance.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The built-in simulated tenant and ELIZA.", no_args_is_help=True)
app.add_typer(state_app, name="state")
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--config",
        help="Config file (default: $DELTASYNC_CONFIG, else config/entra_sync.yaml).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _config(path: str | None, *, need_secrets: bool = True) -> Config:
    config = load_config(resolve_config_path(path, os.environ), need_secrets=need_secrets)
    for warning in config.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    return config


def _logger(verbose: bool) -> Any:
    tty = err.is_terminal

    def log(message: str) -> None:
        if tty:
            err.print(f"[dim]{escape(message)}[/]")
        else:
            err.print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} deltasync: {escape(message)}")

    return log


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deltasync {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Keeps ELIZA in step with Microsoft Entra ID (Graph delta queries)."""


# ------------------------------------------------------------------ sync and resync
def _sync(
    command: str,
    *,
    config: str | None,
    dry_run: bool,
    verbose: bool,
    limit_users: int | None,
    assign_to_group: int | None,
    export_excel: Path | None,
    enable_orgunit_sync: bool,
    skip_users: bool,
    skip_mitarbeitende: bool,
    skip_groups: bool,
    allow_deletes: bool,
    as_json: bool,
    verify_target: bool = False,
    retry_failed: bool = False,
) -> int:
    cfg = _config(config)
    if limit_users is not None and limit_users < 1:
        raise UsageError("--limit-users must be at least 1")
    if skip_users and skip_mitarbeitende:
        raise UsageError("--skip-users together with --skip-mitarbeitende leaves nothing to do")
    opts = RunOptions(
        command=command,
        dry_run=dry_run,
        full=command == "resync",
        verify_target=verify_target,
        limit_users=limit_users,
        allow_deletes=allow_deletes,
        retry_failed=retry_failed or command == "resync",
    )
    flags = service.SyncFlags(
        skip_users=skip_users,
        skip_persons=skip_mitarbeitende,
        skip_groups=skip_groups,
        orgunit_sync=enable_orgunit_sync,
        assign_to_group=assign_to_group,
    )
    if cfg.sync_options.sync_groups and not skip_groups:
        err.print(
            "[yellow]note:[/] group sync is not available in this version; "
            "sync_options.sync_groups is ignored"
        )
    try:
        report = service.run_sync(cfg, opts, flags, log=_logger(verbose))
    except DeltaSyncError as exc:
        if as_json:
            failed = {
                "command": command,
                "dry_run": dry_run,
                "status": "failed",
                "exit_code": exit_code_for(exc),
                "error": str(exc),
            }
            typer.echo(json.dumps(failed, ensure_ascii=False, indent=2))
        raise
    if export_excel is not None:
        service.export_excel(export_excel, service.mirrored_users(cfg), report)
        err.print(f"wrote {export_excel}")
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        render_report(report, verbose=verbose)
    return report.exit_code


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


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
    marks = {
        "create": "+",
        "match": "=",
        "update": "~",
        "deactivate": "-",
        "delete": "x",
        "reactivate": "^",
        "end": "-",
        "reopen": "^",
    }
    shown = (
        report.actions
        if show_all
        else [a for a in report.actions if a["result"] not in ("ok", "planned")]
    )
    if shown:
        console.print("actions:" if show_all else "actions needing attention:")
    for a in shown:
        head = f"  {marks.get(a['op'], '?')} {a['kind']:<10} {a['op']:<10} {a['label']}" + (
            f" (#{a['eliza_id']})" if a["eliza_id"] else ""
        )
        suffix = "" if a["result"] in ("ok", "planned") else f"  [{a['result'].upper()}]"
        console.print(escape(head + suffix + f"  — {a['reason']}"))
        for name, (old, new) in a["changes"].items():
            console.print(escape(f"      {name}: {_fmt(old)} → {_fmt(new)}"))
    counts = report.counts()
    if counts:
        summary = "; ".join(
            f"{kind}: " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))
            for kind, ops in sorted(counts.items())
        )
        console.print(("planned " if report.dry_run else "applied ") + escape(summary))
    elif not report.actions:
        console.print("nothing to do")
    if report.deferred_objects:
        console.print(f"{report.deferred_objects} object(s) wait for later runs (--limit-users)")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    if report.held:
        console.print(
            f"[red]held:[/] {len(report.held)} deactivation(s) — {escape(report.threshold or '')}"
        )
        for h in report.held:
            console.print(escape(f"  {h['label']} ({h['status']})"))
        if not report.dry_run:
            console.print("rerun with --allow-deletes to release them")
    for title_, rows in (("conflicts", report.conflicts), ("failures", report.failures)):
        if rows:
            console.print(f"[red]{title_}:[/] {len(rows)}")
            for f in rows:
                console.print(escape(f"  {f['label']} {f['kind']} {f['op']}: {f['message']}"))
    if report.error:
        console.print(f"[red]error:[/] {escape(report.error)}")
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


DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show every action with old → new values; write nothing.")
]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="More detail.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit-users", help="Apply the actions of at most N users this run.")
]
GroupOpt = Annotated[
    int | None, typer.Option("--assign-to-group", help="ELIZA group id every synced user joins.")
]
ExcelOpt = Annotated[
    Path | None, typer.Option("--export-excel", help="Write users and the plan to .xlsx.")
]
OrgunitOpt = Annotated[
    bool, typer.Option("--enable-orgunit-sync", help="Sync org-unit memberships.")
]
SkipUsersOpt = Annotated[bool, typer.Option("--skip-users", help="Leave ELIZA users alone.")]
SkipPersonsOpt = Annotated[
    bool, typer.Option("--skip-mitarbeitende", help="Leave ELIZA persons alone.")
]
SkipGroupsOpt = Annotated[bool, typer.Option("--skip-groups", help="Leave groups alone.")]
AllowDeletesOpt = Annotated[
    bool, typer.Option("--allow-deletes", help="Release deactivations held by the threshold.")
]


@app.command()
def sync(
    config: ConfigOpt = None,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    limit_users: LimitOpt = None,
    assign_to_group: GroupOpt = None,
    export_excel: ExcelOpt = None,
    enable_orgunit_sync: OrgunitOpt = False,
    skip_users: SkipUsersOpt = False,
    skip_mitarbeitende: SkipPersonsOpt = False,
    skip_groups: SkipGroupsOpt = False,
    allow_deletes: AllowDeletesOpt = False,
    as_json: JsonOpt = False,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Retry failed objects now, not at their backoff time."),
    ] = False,
) -> int:
    """The hourly job: pull what changed in Entra, push only what changed to ELIZA."""
    return _sync("sync", **locals())


@app.command()
def resync(
    config: ConfigOpt = None,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
    limit_users: LimitOpt = None,
    assign_to_group: GroupOpt = None,
    export_excel: ExcelOpt = None,
    enable_orgunit_sync: OrgunitOpt = False,
    skip_users: SkipUsersOpt = False,
    skip_mitarbeitende: SkipPersonsOpt = False,
    skip_groups: SkipGroupsOpt = False,
    allow_deletes: AllowDeletesOpt = False,
    as_json: JsonOpt = False,
    verify_target: Annotated[
        bool, typer.Option("--verify-target", help="Re-read linked ELIZA objects, repair drift.")
    ] = False,
) -> int:
    """Read everything again (ignoring delta tokens); deprovision what a complete read lacks."""
    return _sync("resync", **locals())


# ------------------------------------------------------------------ state
def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@state_app.callback()
def state(
    ctx: typer.Context,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> int | None:
    """Summary: tokens and their age, counts, last runs, pending failures."""
    if ctx.invoked_subcommand is not None:
        return None
    data = service.state_summary(_config(config, need_secrets=False))
    if as_json:
        _print_json(data)
        return 0
    c = data["cursors"][0]
    out.print(f"state: {escape(data['state_url'])}")
    token = "yes" if c["has_delta_token"] else "no"
    out.print(
        f"users: delta token {token}"
        + (f", last round {c['token_age']} ago" if c["token_age"] else "")
        + (f", {c['round_in_progress']} round in progress" if c["round_in_progress"] else "")
        + (f", last full read {c['last_full_round_at'][:19]}" if c["last_full_round_at"] else "")
    )
    out.print(f"mirror: {data['mirror']['users']} Entra users")
    for kind, n in data["links"].items():
        out.print(f"linked {kind}s: {n['active']} active, {n['deactivated']} deactivated")
    f = data["failures"]
    out.print(
        f"pending: {f['errors']} failed, {f['conflicts']} in conflict"
        + (" (deltasync state failures)" if f["errors"] or f["conflicts"] else "")
    )
    if data["held_deactivations"]:
        out.print(
            f"[red]held deactivations:[/] {len(data['held_deactivations'])} "
            "(rerun with --allow-deletes to release)"
        )
        for h in data["held_deactivations"]:
            out.print(escape(f"  {h['label']} ({h['status']})"))
    if data["last_runs"]:
        out.print("last runs:")
        for r in data["last_runs"]:
            out.print(escape(_run_line(r)))
    return 0


def _run_line(r: dict[str, Any]) -> str:
    counts = (
        "; ".join(
            f"{k}: " + ", ".join(f"{op} {n}" for op, n in v.items()) for k, v in r["counts"].items()
        )
        or "no changes"
    )
    extra = "".join(f", {r[k]} {k}" for k in ("failures", "conflicts", "held") if r[k])
    dry = " --dry-run" if r["dry_run"] else ""
    return (
        f"  #{r['id']} {r['started_at'][:19]} {r['command']}{dry} {r['status']} "
        f"(exit {r['exit_code']}), {r['round'] or '-'} round: {counts}{extra}"
        + (f" — {r['error']}" if r["error"] else "")
    )


@state_app.command("user")
def state_user(
    query: Annotated[str, typer.Argument(help="UPN, mail, Entra object id or ELIZA id.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> int:
    """One person: mirror, links (how matched, when), pushed values, failures, history."""
    found = service.state_user(_config(config, need_secrets=False), query)
    if as_json:
        _print_json(found)
        return 0 if found else 1
    if not found:
        out.print(f"no Entra user matches {escape(query)!r} in the mirror")
        return 1
    for u in found:
        out.print(
            f"[bold]{escape(str(u['userPrincipalName']))}[/] ({u['entra_id']}), "
            f"found by {escape(str(u['found_by']))}"
        )
        out.print(
            f"  scope: {escape(u['scope'])}; mirror version {u['version']}, "
            f"settled {u['settled_version']}" + (" (changes pending)" if u["pending"] else "")
        )
        for kind, lk in u["links"].items():
            out.print(
                escape(
                    f"  {kind}: ELIZA #{lk['eliza_id']} {lk['status']}, "
                    f"{_matched_text(lk['matched_by'])} at {lk['matched_at'][:19]}"
                )
            )
            for name, value in sorted(lk["pushed"].items()):
                out.print(escape(f"      {name} = {_fmt(value)}"))
        if not u["links"]:
            out.print("  not linked to ELIZA")
        for f in u["failures"]:
            out.print(
                escape(
                    f"  {f['category']} ({f['kind']}): {f['message']} — "
                    f"attempt {f['attempts']}, next try {f['next_retry_at'][:19]}"
                )
            )
        if u["history"]:
            out.print("  history:")
            for h in u["history"]:
                changes = ", ".join(
                    f"{k}: {_fmt(v[0])} → {_fmt(v[1])}" for k, v in h["changes"].items()
                )
                out.print(
                    escape(
                        f"    {h['at'][:19]} run #{h['run_id']} {h['kind']} "
                        f"{h['action']}"
                        + (f" #{h['eliza_id']}" if h["eliza_id"] else "")
                        + (f": {changes}" if changes else "")
                    )
                )
    return 0


def _matched_text(matched_by: str) -> str:
    if matched_by == "created":
        return "created by the sync"
    if matched_by == "hard":
        return "hard match on remote_key"
    if matched_by == "user":
        return "matched as the person of the linked user"
    if matched_by.startswith("soft:"):
        return "soft match on " + matched_by[5:].replace("+", " and ")
    return f"matched ({matched_by})"


@state_app.command("runs")
def state_runs(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    as_json: JsonOpt = False,
) -> int:
    """The last runs, newest first."""
    runs = service.state_runs(_config(config, need_secrets=False), limit)
    if as_json:
        _print_json(runs)
    elif not runs:
        out.print("no runs yet")
    for r in [] if as_json else runs:
        out.print(escape(_run_line(r)))
    return 0


@state_app.command("failures")
def state_failures(config: ConfigOpt = None, as_json: JsonOpt = False) -> int:
    """Objects whose push failed or conflicted, and when each is tried next."""
    rows = service.state_failures(_config(config, need_secrets=False))
    if as_json:
        _print_json(rows)
        return 0
    if not rows:
        out.print("no pending failures")
    for f in rows:
        out.print(
            escape(
                f"{f['label']} ({f['entra_id']}) {f['kind']} {f['action']}: "
                f"{f['category'].upper()} {f['message']}"
            )
        )
        out.print(
            escape(
                f"    attempts {f['attempts']}, first {f['first_failed_at'][:19]}, "
                f"next try {f['next_retry_at'][:19]}"
            )
        )
        for c in f["detail"].get("candidates") or []:
            out.print(escape(f"    candidate: {c}"))
    return 0


@state_app.command("reset")
def state_reset(
    config: ConfigOpt = None,
    resource: Annotated[str, typer.Option("--resource", help="users, groups or all")] = "all",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> int:
    """Forget delta tokens: the next run reads everything (mirror and links are kept)."""
    if resource not in ("users", "groups", "all"):
        raise UsageError("--resource must be users, groups or all")
    cfg = _config(config, need_secrets=False)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("state reset asks for confirmation; pass --yes when not interactive")
        typer.confirm(f"Forget the delta tokens of {resource}?", abort=True)
    names = service.state_reset(cfg, resource)
    out.print(f"forgot the delta tokens of {', '.join(names)}; the next run reads everything")
    return 0


# ------------------------------------------------------------------ other commands
@app.command("export-excel")
def export_excel(
    file: Annotated[Path, typer.Argument(help="The .xlsx file to write.")],
    config: ConfigOpt = None,
) -> int:
    """Write the mirrored Entra users to an Excel file."""
    cfg = _config(config, need_secrets=False)
    path = service.export_excel(file, service.mirrored_users(cfg), None)
    out.print(f"wrote {path}")
    return 0


@app.command()
def check(config: ConfigOpt = None, as_json: JsonOpt = False) -> int:
    """Check config, Entra credential and Graph permission, ELIZA token, permissions and schema."""
    from deltasync.checks import run_checks

    results = run_checks(_config(config))
    if as_json:
        _print_json(results)
    else:
        for r in results:
            color, label = {
                "ok": ("green", "ok"),
                "warn": ("yellow", "warn"),
                "fail": ("red", "FAIL"),
            }[r["status"]]
            out.print(f"[{color}]{label:<4}[/] {escape(r['check'])}: {escape(r['detail'])}")
    return 1 if any(r["status"] == "fail" for r in results) else 0


@app.command()
def demo(
    users: Annotated[int, typer.Option("--users", min=5, max=20000)] = 200,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the sandbox state in this folder.")
    ] = None,
    as_json: JsonOpt = False,
) -> int:
    """The whole job against the built-in sandbox; no credentials needed."""
    from deltasync.demo import run_demo

    return run_demo(
        users=users, directory=directory, console=err, as_json=as_json, render=render_report
    )


@sandbox_app.command("serve")
def sandbox_serve(
    users: Annotated[int, typer.Option("--users", min=1, max=100000)] = 200,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            help="Graph on P, the token endpoint on P+1, ELIZA on P+2 (0 = any free ports).",
        ),
    ] = 0,
    directory: Annotated[Path, typer.Option("--dir")] = Path("sandbox-run"),
) -> int:
    """Simulated Graph + token endpoint + ELIZA on loopback, and a config pointing at them."""
    from deltasync.demo import serve_sandbox

    return serve_sandbox(users=users, port=port, directory=directory, console=out)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> int:
    """Apply the state database migrations (sync does it by itself too)."""
    before, after = service.db_upgrade(_config(config, need_secrets=False))
    out.print(
        f"state database at revision {after}"
        + (f" (was {before})" if before != after else " (already current)")
    )
    return 0


# ------------------------------------------------------------------ entry point
def _quiet_libraries() -> None:
    """azure-identity logs a failed token request at WARNING in its own words; deltasync
    reports the same failure once, in its own error message."""
    logging.getLogger("azure").setLevel(logging.ERROR)


def run_cli(argv: list[str] | None = None) -> int:
    """Run a command and return its exit code; every error becomes a message and a code."""
    _quiet_libraries()
    try:
        result = app(args=argv, prog_name="deltasync", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            err.print(f"error: {escape(exc.format_message())}")
        return 2
    except ConfigError as exc:
        err.print(f"[red]configuration error[/] ({len(exc.problems)}):")
        for problem in exc.problems:
            err.print(f"  {escape(problem)}")
        return exc.exit_code
    except DeltaSyncError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        err.print("interrupted; the next run resumes where this one stopped")
        return 130
    except Exception as exc:
        err.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}")
        if os.environ.get("DELTASYNC_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            err.print("set DELTASYNC_DEBUG=1 for the traceback")
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """The console script."""
    sys.exit(run_cli())
