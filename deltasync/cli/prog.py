"""The program's name as the user typed it, for the hints deltasync prints.

``uv run deltasync …`` when started through ``uv run`` (uv sets ``UV_RUN_RECURSION_DEPTH`` in
the child), ``python -m deltasync`` when started as a module, else the name of the script.
"""

from __future__ import annotations

import os
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
