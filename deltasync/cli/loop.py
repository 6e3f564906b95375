"""``deltasync undo RUN_ID`` and ``deltasync watch``: flags in, one service call, the report out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deltasync import service
from deltasync.cli.options import (
    AllowDeletesOpt,
    ConfigOpt,
    DryRunOpt,
    JsonOpt,
    MetricsOpt,
    VerboseOpt,
    load,
)
from deltasync.cli.output import run_output
from deltasync.cli.prog import with_prog
from deltasync.cli.render import err, print_json, render_report
from deltasync.cli.render import out as stdout
from deltasync.errors import DeltaSyncError, UsageError, exit_code_for

if TYPE_CHECKING:
    from deltasync.service import RunReport


def undo(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID", help="The run to undo (state runs).")],
    config: ConfigOpt = None,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Undo objects changed since, too (overwrites newer work)."),
    ] = False,
    allow_deletes: AllowDeletesOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> int:
    """Put back what one run changed; objects changed since are refused unless --force."""
    output = run_output(err, hold=False)
    try:
        cfg = load(config, warn=output.log)
    except BaseException:
        output.close()
        raise
    seen: list[RunReport] = []
    failure: DeltaSyncError | None = None
    try:
        report = service.run_undo(
            cfg,
            run_id,
            dry_run=dry_run,
            force=force,
            allow_deletes=allow_deletes,
            log=output.log,
            progress=output,
            on_report=seen.append,
        )
        code = report.exit_code
    except DeltaSyncError as exc:
        if isinstance(exc, UsageError) and not seen:
            output.close()
            raise
        failure = exc
        report = seen[-1] if seen else service.RunReport("undo", dry_run)
        report.error = report.error or str(exc)
        code = exit_code_for(exc)
    output.close(True)
    if as_json:
        data = report.as_dict()
        data.update(exit_code=code)
        print_json(data)
    else:
        render_report(report, verbose=verbose, console=stdout)
    if failure is not None:
        err.print(f"error: {escape(with_prog(str(failure)))}")
    return code


def watch(
    config: ConfigOpt = None,
    interval: Annotated[
        float,
        typer.Option("--interval", min=1.0, metavar="S", help="Seconds between delta runs."),
    ] = 60.0,
    metrics_file: MetricsOpt = None,
) -> int:
    """The delta loop, continuously: a sync every S seconds until SIGTERM or Ctrl-C."""
    output = run_output(err, hold=False)
    try:
        from deltasync.config import resolve_config_path

        path = Path(resolve_config_path(config, os.environ))
        cfg = load(config, warn=output.log)
        service.check_output_paths(None, metrics_file)
        result = service.run_watch(
            cfg,
            interval_s=interval,
            config_path=path,
            metrics_file=metrics_file,
            write_metrics=service.write_metrics,
            log=output.log,
        )
        output.log(
            f"watch: {result.cycles} cycles ({result.failed_cycles} failed), "
            f"{result.graph_requests} Graph and {result.eliza_requests} ELIZA requests"
        )
    finally:
        output.close()
    return 0
