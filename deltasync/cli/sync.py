"""``deltasync sync`` and ``deltasync resync``: flags in, one service call, the report out.

The report (or a dry run's plan, or ``--json``'s one JSON object) goes to stdout; log lines,
warnings and progress to stderr (:mod:`.output`). A failed run is reported like a good one,
with ``error`` set, and exits with the failure's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deltasync import service
from deltasync.cli.options import (
    AllowDeletesOpt,
    ConfigOpt,
    DryRunOpt,
    ExcelOpt,
    GroupOpt,
    JsonActionsOpt,
    JsonOpt,
    LimitOpt,
    MetricsOpt,
    OrgunitOpt,
    QuietOpt,
    SkipGroupsOpt,
    SkipPersonsOpt,
    SkipUsersOpt,
    VerboseOpt,
    load,
)
from deltasync.cli.output import RunOutput, run_output
from deltasync.cli.prog import with_prog
from deltasync.cli.render import ActionFile, err, out, print_json, render_report
from deltasync.errors import DeltaSyncError, UsageError, exit_code_for

if TYPE_CHECKING:
    from deltasync.config import Config
    from deltasync.service import RunReport


def run(
    command: str,
    *,
    config: str | None,
    dry_run: bool,
    verbose: bool,
    quiet: bool,
    limit_users: int | None,
    assign_to_group: int | None,
    export_excel: Path | None,
    metrics_file: Path | None,
    enable_orgunit_sync: bool,
    skip_users: bool,
    skip_mitarbeitende: bool,
    skip_groups: bool,
    allow_deletes: bool,
    as_json: bool,
    json_actions: Path | None = None,
    verify_target: bool = False,
    retry_failed: bool = False,
    user: list[str] | None = None,
) -> int:
    if quiet and verbose:
        raise UsageError("--quiet and --verbose contradict each other; pass one of them")
    output = run_output(err, hold=quiet)
    try:
        cfg = load(config, warn=output.log)
        _check_flags(limit_users, skip_users, skip_mitarbeitende)
        service.check_output_paths(export_excel, metrics_file)
    except BaseException:
        output.close()
        raise
    spool = (
        ActionFile(json_actions)
        if json_actions is not None or dry_run or verbose or export_excel is not None
        else None
    )
    try:
        return _run(
            command,
            cfg,
            output,
            spool,
            dry_run,
            verbose,
            quiet,
            as_json,
            export_excel,
            metrics_file,
            limit_users,
            allow_deletes,
            verify_target,
            retry_failed,
            user,
            skip_users,
            skip_mitarbeitende,
            skip_groups,
            enable_orgunit_sync,
            assign_to_group,
        )
    finally:
        if spool is not None:
            spool.close()


def _run(
    command: str,
    cfg: Config,
    output: RunOutput,
    spool: ActionFile | None,
    dry_run: bool,
    verbose: bool,
    quiet: bool,
    as_json: bool,
    export_excel: Path | None,
    metrics_file: Path | None,
    limit_users: int | None,
    allow_deletes: bool,
    verify_target: bool,
    retry_failed: bool,
    user: list[str] | None,
    skip_users: bool,
    skip_mitarbeitende: bool,
    skip_groups: bool,
    enable_orgunit_sync: bool,
    assign_to_group: int | None,
) -> int:
    opts = service.RunOptions(
        command=command,
        dry_run=dry_run,
        full=command == "resync",
        verify_target=verify_target,
        limit_users=limit_users,
        allow_deletes=allow_deletes,
        retry_failed=retry_failed or command == "resync",
        users=tuple(user or ()),
        actions_sink=spool,
    )
    flags = service.SyncFlags(
        skip_users=skip_users,
        skip_persons=skip_mitarbeitende,
        skip_groups=skip_groups,
        orgunit_sync=enable_orgunit_sync,
        assign_to_group=assign_to_group,
    )
    seen: list[RunReport] = []
    failure: BaseException | None = None
    try:
        report = service.run_sync(
            cfg, opts, flags, log=output.log, progress=output, on_report=seen.append
        )
        code = report.exit_code
    except Exception as exc:  # the report still says what the run did, then the error
        failure = exc
        report = seen[-1] if seen else service.RunReport(command, dry_run)
        if report.error is None:
            report.error = str(exc)
        code = exit_code_for(exc) if isinstance(exc, DeltaSyncError) else 1
    code = _write_files(cfg, report, code, export_excel, metrics_file, output)
    show = not quiet or worth_showing(report, code)
    output.close(show)
    if as_json:  # a JSON consumer always gets its report; -q only silences stderr then
        data = report.as_dict()
        data.update(exit_code=code, status=report.status if code == report.exit_code else "failed")
        print_json(data)
    elif show:
        for line in report.trace:
            out.print(escape(line), highlight=False)
        render_report(report, verbose=verbose, console=out)
    if failure is not None and not isinstance(failure, DeltaSyncError):
        raise failure  # an internal error: run_cli names it (and shows the traceback on request)
    if failure is not None:
        _log_line(output, f"error: {report.error}")
    return code


def _check_flags(limit_users: int | None, skip_users: bool, skip_persons: bool) -> None:
    if limit_users is not None and limit_users < 1:
        raise UsageError("--limit-users must be at least 1")
    if skip_users and skip_persons:
        raise UsageError("--skip-users together with --skip-mitarbeitende leaves nothing to do")


def _write_files(
    cfg: Config,
    report: RunReport,
    code: int,
    excel: Path | None,
    metrics: Path | None,
    output: RunOutput,
) -> int:
    """The export and the metrics file after the run; a failure becomes a warning and exit 1
    (unless the run already exits non-zero), never an internal error."""
    if excel is not None:
        try:
            for path in service.export_excel(cfg, excel, report):
                output.log(f"wrote {path}")
        except (OSError, DeltaSyncError) as exc:
            report.warnings.append(f"could not write {excel}: {exc}")
            code = code or 1
    if metrics is not None:
        data = report.as_dict()
        data.update(exit_code=code)
        try:
            service.write_metrics(metrics, data)
        except (OSError, DeltaSyncError) as exc:
            report.warnings.append(f"could not write the metrics file {metrics}: {exc}")
            code = code or 1
    return code


def worth_showing(report: RunReport, code: int) -> bool:
    """What ``--quiet`` still prints: a run that changed, failed, held or erred."""
    return bool(
        code != 0
        or report.counts()
        or report.failures
        or report.conflicts
        or report.held
        or report.error
    )


def _log_line(output: RunOutput, message: str) -> None:
    output.log(with_prog(message))
    output.close()


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
    json_actions: JsonActionsOpt = None,
    quiet: QuietOpt = False,
    metrics_file: MetricsOpt = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Retry failed objects now, not at their backoff time."),
    ] = False,
    user: Annotated[
        list[str] | None,
        typer.Option(
            "--user",
            metavar="UPN|ID",
            help="Sync just this user now (repeatable), with a step trace; delta tokens untouched.",
        ),
    ] = None,
) -> int:
    """The hourly job: pull what changed in Entra, push only what changed to ELIZA."""
    return run("sync", **locals())


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
    json_actions: JsonActionsOpt = None,
    quiet: QuietOpt = False,
    metrics_file: MetricsOpt = None,
    verify_target: Annotated[
        bool, typer.Option("--verify-target", help="Re-read linked ELIZA objects, repair drift.")
    ] = False,
) -> int:
    """Read everything again (ignoring delta tokens); deprovision what a complete read lacks."""
    return run("resync", **locals())
