"""The typer option types the commands share, and the config an option names."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deltasync.cli.render import err

if TYPE_CHECKING:
    from deltasync.config import Config

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--config",
        metavar="PATH",
        help="Config file (default: $DELTASYNC_CONFIG, else config/entra_sync.yaml).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
JsonActionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--json-actions",
        metavar="FILE",
        help="Write every action of the run to FILE as JSON lines (the report holds the "
        "first 500).",
        dir_okay=False,
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show every action with old → new values; write nothing.")
]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="More detail.")]
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit-users", metavar="N", help="Apply the actions of at most N users this run."
    ),
]
GroupOpt = Annotated[
    int | None,
    typer.Option("--assign-to-group", metavar="ID", help="ELIZA group id every synced user joins."),
]
ExcelOpt = Annotated[
    Path | None,
    typer.Option(
        "--export-excel",
        metavar="FILE",
        help="Write the users and the plan to FILE (.xlsx, or CSV for a .csv name).",
    ),
]
MetricsOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        metavar="PATH",
        help="Write the run's figures to PATH (Prometheus text format, for node_exporter).",
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option("-q", "--quiet", help="Print nothing for a run that changed and failed nothing."),
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


def load(
    path: str | None, *, need_secrets: bool = True, warn: Callable[[str], None] | None = None
) -> Config:
    """The config of ``-c``/``$DELTASYNC_CONFIG``; its warnings go to ``warn`` (else stderr)."""
    from deltasync.config import load_config, resolve_config_path

    config = load_config(resolve_config_path(path, os.environ), need_secrets=need_secrets)
    for warning in config.warnings:
        if warn is None:
            err.print(f"[yellow]warning:[/] {escape(warning)}")
        else:
            warn(f"warning: {warning}")
    return config
