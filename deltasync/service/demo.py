"""``deltasync demo`` and ``deltasync sandbox serve``: the real job against the simulators.

The demo goes through everything a production run does — the real azure-identity credential
against an HTTPS token endpoint, msgraph-sdk against a simulated Graph, httpx against a
simulated ELIZA, a real SQLite state database — only the tenant and ELIZA are simulated.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from deltasync.config import load_config
from deltasync.engine import RunOptions, RunReport
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


def run_demo(
    *, users: int, directory: Path | None, console: Console, as_json: bool, render: Render
) -> int:
    """Initial sync, a few changes in Entra, an incremental sync, and the final state."""
    workdir = directory or Path(tempfile.mkdtemp(prefix="deltasync-demo-"))
    if directory is not None and (directory / "state").exists():
        shutil.rmtree(directory / "state")
    sandbox = start_sandbox(workdir, users=users, sync_groups=True)
    reports: list[RunReport] = []
    try:
        config = load_config(sandbox.config_path, env=sandbox.env)
        console.print(
            f"[bold]sandbox[/]: {users} Entra users, ELIZA at {config.eliza.base_url}, "
            f"state in {config.state.url}"
        )
        console.print("[bold]1. initial sync[/] (full read, match or create every user)")
        first = run_sync(config, RunOptions(), log=_log(console))
        reports.append(first)
        if not as_json:
            render(first, console=console)
        changes = apply_demo_changes(sandbox)
        renamed_upn = changes.pop()
        console.print("[bold]2. changes in Entra[/]:")
        for change in changes:
            console.print(f"   {escape(change)}")
        console.print("[bold]3. incremental sync[/] (only what changed)")
        second = run_sync(config, RunOptions(), log=_log(console))
        reports.append(second)
        if not as_json:
            render(second, console=console)
        console.print("[bold]4. a run with nothing to do[/]")
        third = run_sync(config, RunOptions(), log=_log(console))
        reports.append(third)
        if not as_json:
            render(third, console=console)
            _final_state(config, renamed_upn, console)
        else:
            print(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
        console.print(
            f"state kept in {workdir}; inspect it with: "
            f"deltasync state -c {sandbox.config_path} (the sandbox stops now)"
        )
    finally:
        sandbox.stop()
    return max(r.exit_code for r in reports)


def _final_state(config: Any, upn: str, console: Console) -> None:
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
            changes = ", ".join(f"{k} → {v[1]!r}" for k, v in h["changes"].items())
            console.print(escape(f"     run #{h['run_id']} {h['kind']} {h['action']} {changes}"))


def _log(console: Console) -> Callable[[str], None]:
    def log(message: str) -> None:
        console.print(f"[dim]   {escape(message)}[/]")

    return log


def serve_sandbox(*, users: int, port: int, directory: Path, console: Console) -> int:
    """Run the simulators until Ctrl-C, with a config and an env file pointing at them."""
    sandbox = start_sandbox(directory.resolve(), users=users, port=port, sync_groups=True)
    env_file = sandbox.write_env_file()
    console.print(f"sandbox running: {users} Entra users")
    console.print(f"  config:   {sandbox.config_path}")
    console.print(f"  secrets:  {env_file} (export them with: source {env_file})")
    console.print(f"  then run: deltasync sync -c {sandbox.config_path} --dry-run")
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
