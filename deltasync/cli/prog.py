"""The program's name as the user typed it, for the hints deltasync prints.

The layers below the CLI name a command to run as a backticked subcommand (`state runs`);
:func:`with_prog` puts the program's name in front wherever the CLI prints such a message.

``uv run deltasync …`` when started through ``uv run`` (uv sets ``UV_RUN_RECURSION_DEPTH`` in
the child), ``python -m deltasync`` when started as a module, else the name of the script.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import PurePath


def prog_name(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> str:
    """How to start deltasync again, the way it was started this time."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    script = PurePath(argv[0]).name if argv and argv[0] else ""
    if script in ("__main__.py", "-m", "-c") or script.startswith("python"):
        base = "python -m deltasync"
    elif script.startswith("deltasync") and not script.endswith(".py"):
        base = script  # the console script, perhaps deltasync.exe
    else:
        base = "deltasync"  # embedded (run_cli from a test or another program)
    if environ.get("UV_RUN_RECURSION_DEPTH"):
        return f"uv run {base}"
    return base


@functools.cache
def _hint_pattern() -> re.Pattern[str]:
    """A backticked command line that starts with one of the CLI's commands (`state runs`)."""
    import typer

    from deltasync.cli.app import app

    names = sorted(typer.main.get_command(app).commands, key=len, reverse=True)  # type: ignore[attr-defined]
    return re.compile(r"`((?:" + "|".join(map(re.escape, names)) + r")(?:\s[^`]*)?)`")


def with_prog(text: str, prog: str | None = None) -> str:
    """``text`` with every hint to run a command (`state runs`, as the layers below the CLI
    write them, knowing no program name) prefixed with the program's name as typed."""
    name = prog_name() if prog is None else prog
    return _hint_pattern().sub(lambda m: f"`{name} {m.group(1)}`", text)
