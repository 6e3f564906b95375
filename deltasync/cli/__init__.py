"""The command line: parse, load the config, call one service function, render, exit.

:mod:`.app` holds the command tree and :func:`run_cli`, the one place exceptions become exit
codes; :mod:`.sync`, :mod:`.state` and :mod:`.tools` the commands; :mod:`.options` the shared
option types; :mod:`.render` the human output. The CLI never imports the engine: it reaches
everything through :mod:`deltasync.service`. Only this package imports typer.
"""

from deltasync.cli.app import app, main, run_cli

__all__ = ["app", "main", "run_cli"]
