"""The command tree and the entry point: parse, call one command, turn errors into exit codes.

Each command module imports only what it needs, and heavy libraries load inside the service
call a command makes, so ``--version`` and ``--help`` stay cheap.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from deltasync import __version__
from deltasync.cli import helptypes, loop, state, sync, tools
from deltasync.cli.prog import prog_name, with_prog
from deltasync.cli.render import err
from deltasync.errors import ConfigError, DeltaSyncError, exit_code_for

helptypes.install()

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


app.command()(sync.sync)
app.command()(sync.resync)
app.command()(loop.watch)
app.command()(loop.undo)
state_app.callback()(state.state)
state_app.command("user")(state.state_user)
state_app.command("groups")(state.state_groups)
state_app.command("runs")(state.state_runs)
state_app.command("failures")(state.state_failures)
state_app.command("reset")(state.state_reset)
app.command("export-excel")(tools.export_excel)
app.command()(tools.check)
app.command()(tools.demo)
sandbox_app.command("serve")(tools.sandbox_serve)
# everything after the action is its arguments, so a value may start with "-" ("-Chef")
sandbox_app.command("edit", context_settings={"allow_interspersed_args": False})(tools.sandbox_edit)
db_app.command("upgrade")(tools.db_upgrade)


def _quiet_libraries() -> None:
    """azure-identity logs a failed token request at WARNING in its own words; deltasync
    reports the same failure once, in its own error message."""
    logging.getLogger("azure").setLevel(logging.ERROR)


def run_cli(argv: list[str] | None = None) -> int:
    """Run a command and return its exit code; every error becomes a message and a code."""
    _quiet_libraries()
    try:
        result = app(args=argv, prog_name=prog_name(), standalone_mode=False)
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
            err.print(f"  {escape(with_prog(problem))}")
        return exc.exit_code
    except DeltaSyncError as exc:
        err.print(f"[red]error:[/] {escape(with_prog(str(exc)))}")
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
