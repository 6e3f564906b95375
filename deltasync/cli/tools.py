"""The commands around the job: ``export-excel``, ``check``, ``demo``, ``sandbox serve``,
``sandbox edit``, ``db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from deltasync import service
from deltasync.cli.options import ConfigOpt, GroupOpt, JsonOpt, OrgunitOpt, load
from deltasync.cli.prog import prog_name, with_prog
from deltasync.cli.render import err, out, print_json, render_report


def export_excel(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The file to write: .xlsx, or .csv for CSV.")
    ],
    config: ConfigOpt = None,
) -> int:
    """Write the mirrored Entra users to an Excel file (or CSV, for a .csv name)."""
    cfg = load(config, need_secrets=False)
    service.check_output_paths(excel=file)
    for path in service.export_excel(cfg, file):
        out.print(f"wrote {escape(str(path))}")
    return 0


def check(
    config: ConfigOpt = None,
    orgunit_sync: OrgunitOpt = False,
    assign_to_group: GroupOpt = None,
    as_json: JsonOpt = False,
) -> int:
    """Check what a sync needs: config, Entra and Graph, ELIZA, the state database.

    Pass the flags the sync runs with (--enable-orgunit-sync, --assign-to-group): they
    change what ELIZA must allow. Exit 0 when every line passes, 1 when one fails.
    """
    flags = service.SyncFlags(orgunit_sync=orgunit_sync, assign_to_group=assign_to_group)
    results = service.run_checks(load(config), flags=flags)
    if as_json:
        print_json(results)
    else:
        marks = _check_marks()
        width = max((len(r["check"]) for r in results), default=0)
        for r in results:
            color, mark = marks[r["status"]]
            out.print(
                f"[{color}]{escape(mark)}[/] {escape(r['check']):<{width}}  "
                + escape(with_prog(r["detail"]))
            )
            if r.get("fix"):
                out.print(f"  fix: {escape(with_prog(r['fix']))}")
    return 1 if any(r["status"] == "fail" for r in results) else 0


def _check_marks() -> dict[str, tuple[str, str]]:
    """✓ ✗ ! where stdout can encode them, else ok FAIL warn (padded to one width)."""
    try:
        "✓✗".encode(out.encoding)
    except (UnicodeEncodeError, LookupError):
        return {"ok": ("green", "ok  "), "warn": ("yellow", "warn"), "fail": ("red", "FAIL")}
    return {"ok": ("green", "✓"), "warn": ("yellow", "!"), "fail": ("red", "✗")}


def demo(
    users: Annotated[int, typer.Option("--users", min=5, max=20000)] = 200,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the sandbox state in this folder.")
    ] = None,
    as_json: JsonOpt = False,
) -> int:
    """The whole job against the built-in sandbox; no credentials needed."""
    return service.run_demo(
        users=users,
        directory=directory,
        console=err if as_json else out,  # --json: stdout holds only the JSON
        log_console=err,
        as_json=as_json,
        render=render_report,
        prog=prog_name(),
    )


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
    eliza_latency_ms: Annotated[
        float,
        typer.Option(
            "--eliza-latency-ms",
            min=0,
            help="Hold back each ELIZA answer this long (requests overlap, as on a server).",
        ),
    ] = 0.0,
    groups: Annotated[
        int,
        typer.Option("--groups", min=0, max=10000, help="Project groups beside the departments."),
    ] = 0,
) -> int:
    """Simulated Graph + token endpoint + ELIZA on loopback, and a config pointing at them."""
    return service.serve_sandbox(
        users=users,
        port=port,
        directory=directory,
        console=out,
        prog=prog_name(),
        eliza_latency_ms=eliza_latency_ms,
        groups=groups,
    )


def sandbox_edit(
    action: Annotated[
        str,
        typer.Argument(
            help="disable USER | enable USER | rename USER NEW_UPN | set USER PROPERTY VALUE "
            "| delete USER | restore USER | add-member GROUP USER | remove-member GROUP USER",
            show_default=False,
        ),
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="USER is a UPN or an object id, GROUP an id or a display name; "
            "`set … VALUE` takes null to clear.",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path, typer.Option("--dir", help="The folder of the running `sandbox serve`.")
    ] = Path("sandbox-run"),
) -> int:
    """Change the running sandbox's tenant by hand (through Graph's write API); the next
    sync sees it."""
    values, directory = _late_dir(list(args or []), directory)
    out.print(escape(with_prog(service.edit_sandbox(directory, action, values))))
    return 0


def _late_dir(args: list[str], directory: Path) -> tuple[list[str], Path]:
    """``--dir D`` given after the action: everything after the action reaches the command as
    its values (so a value may start with "-"), except this one option."""
    for i, arg in enumerate(args):
        if arg.startswith("--dir="):
            return args[:i] + args[i + 1 :], Path(arg.split("=", 1)[1])
        if arg == "--dir" and i + 1 < len(args):
            return args[:i] + args[i + 2 :], Path(args[i + 1])
    return args, directory


def db_upgrade(config: ConfigOpt = None) -> int:
    """Apply the state database migrations (sync does it by itself too)."""
    before, after = service.db_upgrade(load(config, need_secrets=False))
    out.print(
        f"state database at revision {after}"
        + (f" (was {before})" if before != after else " (already current)")
    )
    return 0
