"""``deltasync sync`` and ``deltasync resync``: flags in, one service call, the report out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deltasync import service
from deltasync.cli.options import (
    AllowDeletesOpt,
    ConfigOpt,
    DryRunOpt,
    ExcelOpt,
    GroupOpt,
    JsonOpt,
    LimitOpt,
    OrgunitOpt,
    SkipGroupsOpt,
    SkipPersonsOpt,
    SkipUsersOpt,
    VerboseOpt,
    load,
)
from deltasync.cli.render import err, logger, render_report
from deltasync.errors import DeltaSyncError, UsageError, exit_code_for


def run(
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
    cfg = load(config)
    if limit_users is not None and limit_users < 1:
        raise UsageError("--limit-users must be at least 1")
    if skip_users and skip_mitarbeitende:
        raise UsageError("--skip-users together with --skip-mitarbeitende leaves nothing to do")
    opts = service.RunOptions(
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
    try:
        report = service.run_sync(cfg, opts, flags, log=logger(verbose))
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
    verify_target: Annotated[
        bool, typer.Option("--verify-target", help="Re-read linked ELIZA objects, repair drift.")
    ] = False,
) -> int:
    """Read everything again (ignoring delta tokens); deprovision what a complete read lacks."""
    return run("resync", **locals())
