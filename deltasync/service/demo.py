"""``deltasync demo``, ``sandbox serve`` and ``sandbox edit``: the real job against the simulators.

The demo goes through everything a production run does — the real azure-identity credential
against an HTTPS token endpoint, msgraph-sdk against a simulated Graph, httpx against a
simulated ELIZA, a real SQLite state database — only the tenant and ELIZA are simulated.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from deltasync.config import Config, load_config
from deltasync.engine import RunOptions, RunReport
from deltasync.errors import RunFailedError, UsageError
from deltasync.sandbox.edit import EditError, edit
from deltasync.sandbox.provision import set_deactivation_percent
from deltasync.sandbox.server import Sandbox, start_sandbox
from deltasync.service.inspect import state_summary, state_user
from deltasync.service.sync import run_sync

Render = Callable[..., None]


def _pick(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    """Enabled users with a job title, in a stable order, for the demo's changes."""
    users = [
        u
        for u in sandbox.graph.users()
        if u.get("accountEnabled")
        and u.get("jobTitle")
        and u.get("companyName")
        and not str(u.get("userPrincipalName", "")).endswith("external.firma.ch")
    ]
    return sorted(users, key=lambda u: str(u["userPrincipalName"]))[:count]


def apply_demo_changes(sandbox: Sandbox) -> list[str]:
    """A rename, a new job title and group, a disabled account and a deleted one; returns
    what was done."""
    renamed, promoted, leaver, deleted = _pick(sandbox, 4)
    domain = str(renamed["userPrincipalName"]).split("@", 1)[1]
    new_surname = "Keller-" + str(renamed.get("surname") or "Muster")
    new_upn = f"{str(renamed.get('givenName') or 'x').lower()}.{new_surname.lower()}@{domain}"
    sandbox.graph.update_user(
        renamed["id"],
        surname=new_surname,
        userPrincipalName=new_upn,
        mail=new_upn,
        displayName=f"{renamed.get('givenName')} {new_surname}",
    )
    sandbox.graph.update_user(promoted["id"], jobTitle="Leiterin Qualitätsmanagement")
    sandbox.graph.disable_user(leaver["id"])
    sandbox.graph.soft_delete(deleted["id"])
    kader = next(g for g in sandbox.graph.groups() if g["displayName"] == "Kader")
    sandbox.graph.add_member(kader["id"], promoted["id"])
    return [
        f"renamed {renamed['userPrincipalName']} → {new_upn} (surname {new_surname})",
        f"new job title for {promoted['userPrincipalName']}: "
        f"{promoted.get('jobTitle')} → Leiterin Qualitätsmanagement",
        f"disabled {leaver['userPrincipalName']}",
        f"added {promoted['userPrincipalName']} to the group Kader",
        f"deleted {deleted['userPrincipalName']} (soft delete, restorable)",
        new_upn,
    ]


# The demo's scripted deprovisionings (one disabled account, one deleted), which its own
# deletion threshold must let through at every size.
DEMO_DEACTIVATIONS = 2


def run_demo(
    *,
    users: int,
    directory: Path | None,
    console: Console,
    as_json: bool,
    render: Render,
    log_console: Console | None = None,
    prog: str = "deltasync",
) -> int:
    """Initial sync, a few changes in Entra, an incremental sync, and the final state.

    The story and the reports go to ``console`` (stdout), the runs' log lines to
    ``log_console`` (stderr); hints name the program as ``prog``.
    Without ``directory`` the demo works in a temporary folder and removes it at the end,
    also when it fails or is interrupted (Ctrl-C or SIGTERM).
    """
    workdir = directory or Path(tempfile.mkdtemp(prefix="deltasync-demo-"))
    if directory is not None and (directory / "state").exists():
        shutil.rmtree(directory / "state")
    restore_sigterm = _sigterm_interrupts()
    try:
        return _run_demo(
            workdir,
            users,
            console,
            as_json,
            render,
            keep=directory is not None,
            log_console=log_console or console,
            prog=prog,
        )
    finally:
        restore_sigterm()
        if directory is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_demo(
    workdir: Path,
    users: int,
    console: Console,
    as_json: bool,
    render: Render,
    *,
    keep: bool,
    log_console: Console,
    prog: str,
) -> int:
    sandbox = start_sandbox(workdir, users=users, sync_groups=True)
    reports: list[RunReport] = []
    try:
        config = load_config(sandbox.config_path, env=sandbox.env)
        console.print(
            f"[bold]sandbox[/]: {users} Entra users, ELIZA at {config.eliza.base_url}, "
            f"state in {config.state.url}"
        )
        console.print("[bold]1. initial sync[/] (full read, match or create every user)")
        first = run_sync(config, RunOptions(), log=_log(log_console))
        reports.append(first)
        if not as_json:
            render(first, console=console)
        config = _fit_threshold(sandbox, config, console)
        changes = apply_demo_changes(sandbox)
        renamed_upn = changes.pop()
        console.print("[bold]2. changes in Entra[/]:")
        for change in changes:
            console.print(f"   {escape(change)}")
        console.print("[bold]3. incremental sync[/] (only what changed)")
        second = run_sync(config, RunOptions(), log=_log(log_console))
        reports.append(second)
        if not as_json:
            render(second, console=console)
        console.print("[bold]4. a run with nothing to do[/]")
        third = run_sync(config, RunOptions(), log=_log(log_console))
        reports.append(third)
        if not as_json:
            render(third, console=console)
            _final_state(config, renamed_upn, console)
        else:
            print(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
        if keep:
            console.print(
                f"state kept in {workdir}; inspect it with: "
                f"{prog} state -c {sandbox.config_path} (the sandbox stops now)"
            )
        else:
            console.print(
                "the sandbox stops now and its temporary folder is removed "
                "(keep the state with --dir DIR)"
            )
    finally:
        sandbox.stop()
    return max(r.exit_code for r in reports)


def _fit_threshold(sandbox: Sandbox, config: Config, console: Console) -> Config:
    """Raise the demo config's ``max_deactivation_percent`` just enough for its own changes.

    The default 10 % would hold the demo's two scripted deactivations in a tenant of fewer
    than 20 linked users (``demo --users 20`` links 17); the limit the demo needs is written
    into its config file, with the reason, and shown.
    """
    linked = int(state_summary(config)["links"]["user"]["active"])
    limit = config.deprovisioning.max_deactivation_percent
    if linked == 0 or limit * linked >= DEMO_DEACTIVATIONS * 100:
        return config
    needed = math.ceil(DEMO_DEACTIVATIONS * 100 / linked)
    why = (
        f"demo: {DEMO_DEACTIVATIONS} scripted deactivations of {linked} linked users "
        f"need max_deactivation_percent {needed} (default {limit:g})"
    )
    set_deactivation_percent(sandbox.config_path, needed, why)
    console.print(f"[dim]   {escape(why)}[/]")
    return load_config(sandbox.config_path, env=sandbox.env)


def _sigterm_interrupts() -> Callable[[], None]:
    """Make SIGTERM interrupt like Ctrl-C while the demo runs; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo


def _final_state(config: Config, upn: str, console: Console) -> None:
    summary = state_summary(config)
    links = summary["links"]
    console.print(
        "[bold]final state[/]: "
        f"{summary['mirror']['users']} Entra users mirrored; ELIZA users linked: "
        f"{links['user']['active']} active, {links['user']['deactivated']} deactivated; "
        f"persons: {links['person']['active']} active, "
        f"{links['person']['deactivated']} former"
    )
    for person in state_user(config, upn):
        console.print(f"   {escape(upn)}: scope {person['scope']}; history:")
        for h in person["history"]:
            changes = ", ".join(f"{k} → {_shown(v[1])}" for k, v in h["changes"].items())
            console.print(escape(f"     run #{h['run_id']} {h['kind']} {h['action']} {changes}"))


def _shown(value: Any) -> str:
    """A value as the state commands show it: strings quoted, the rest as JSON (``true``,
    ``null``), never Python's ``True``/``None``."""
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _log(console: Console) -> Callable[[str], None]:
    def log(message: str) -> None:
        console.print(f"[dim]   {escape(message)}[/]")

    return log


def serve_sandbox(
    *,
    users: int,
    port: int,
    directory: Path,
    console: Console,
    prog: str = "deltasync",
    eliza_latency_ms: float = 0.0,
    groups: int = 0,
) -> int:
    """Run the simulators until Ctrl-C, with a config and an env file pointing at them.

    ELIZA keeps only its last 10,000 requests in its log, so hours of syncing a big tenant
    do not grow the sandbox without end.
    """
    sandbox = start_sandbox(
        directory.resolve(),
        users=users,
        port=port,
        eliza_latency_ms=eliza_latency_ms,
        eliza_log_limit=10_000,
        groups=groups,
        sync_groups=True,
    )
    # The seeded tenant lives as long as the process: keep the collector from rescanning it
    # on every page (at 100,000 users most of a page's time was full collections).
    gc.freeze()
    env_file = sandbox.write_env_file()
    latency = f", ELIZA answers after {eliza_latency_ms:g} ms" if eliza_latency_ms else ""
    extra = f", {groups} project groups" if groups else ""
    console.print(f"sandbox running: {users} Entra users{extra}{latency}")
    console.print(f"  config:    {sandbox.config_path}")
    console.print(f"  secrets:   {env_file}")
    console.print("  in another terminal:")
    console.print(f"    source {env_file}")
    console.print(f"    export DELTASYNC_CONFIG={sandbox.config_path}")
    console.print(f"    {prog} sync --dry-run")
    console.print(
        f"  change the tenant: {prog} sandbox edit --dir {directory} disable USER "
        "(or enable, rename, set, delete, restore, add-member, remove-member)"
    )
    console.print("Ctrl-C stops it.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


def edit_sandbox(directory: Path, action: str, args: list[str]) -> str:
    """Change the tenant of the sandbox running in ``directory`` through Graph's write API.

    Returns one line saying what changed; a usage error (no sandbox in the folder, an unknown
    user or property) is a :class:`UsageError`, a failed request a :class:`RunFailedError`.
    """
    try:
        return edit(directory, action, args, env=dict(os.environ))
    except EditError as exc:
        raise (UsageError if exc.usage else RunFailedError)(str(exc)) from None
