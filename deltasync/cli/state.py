"""``deltasync state`` and its subcommands: what the state database holds, for people."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from deltasync import service
from deltasync.cli.options import ConfigOpt, JsonOpt, load
from deltasync.cli.prog import prog_name, with_prog
from deltasync.cli.render import fmt, out, print_json
from deltasync.errors import UsageError


def state(
    ctx: typer.Context,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> int | None:
    """Summary: tokens and their age, counts, last runs, pending failures."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"config": config}  # `state -c CFG user X`: the subcommand takes it from here
        return None
    data = service.state_summary(load(_config(ctx, config), need_secrets=False))
    if as_json:
        print_json(data)
        return 0
    c = data["cursors"][0]
    out.print(f"state: {escape(data['state_url'])}")
    token = "yes" if c["has_delta_token"] else "no"
    out.print(
        f"users: delta token {token}"
        + (f", last round {c['token_age']} ago" if c["token_age"] else "")
        + (f", {c['round_in_progress']} round in progress" if c["round_in_progress"] else "")
        + (f", last full read {c['last_full_round_at'][:19]}" if c["last_full_round_at"] else "")
    )
    for c in data["cursors"][1:]:
        out.print(
            f"{c['resource']}: delta token {'yes' if c['has_delta_token'] else 'no'}"
            + (f", last round {c['token_age']} ago" if c["token_age"] else "")
            + (f", {c['round_in_progress']} round in progress" if c["round_in_progress"] else "")
        )
    out.print(f"mirror: {data['mirror']['users']} Entra users")
    g = data["groups"]
    if g["sync_groups"] or g["mirrored"]:
        out.print(
            f"groups: {g['mirrored']} mirrored, {g['in_scope']} in scope, {g['linked']} linked, "
            f"{g['memberships']} memberships" + ("" if g["sync_groups"] else " (sync_groups off)")
        )
    for kind, n in data["links"].items():
        out.print(f"linked {kind}s: {n['active']} active, {n['deactivated']} deactivated")
    f = data["failures"]
    out.print(
        f"pending: {f['errors']} failed, {f['conflicts']} in conflict"
        + (f" ({prog_name()} state failures)" if f["errors"] or f["conflicts"] else "")
    )
    if data["held_deactivations"]:
        out.print(
            f"[red]held deactivations:[/] {len(data['held_deactivations'])} "
            "(rerun with --allow-deletes to release)"
        )
        for h in data["held_deactivations"]:
            out.print(escape(f"  {h['label']} ({h['status']})"))
    for hint in data.get("hints", ()):
        out.print(f"[yellow]hint:[/] {escape(with_prog(hint))}")
    if data.get("history"):
        out.print(escape(f"history: {data['history']['note']}"))
    if data["last_runs"]:
        out.print("last runs:")
        for r in data["last_runs"]:
            out.print(escape(run_line(r)))
    return 0


def _config(ctx: typer.Context, config: str | None) -> str | None:
    """``-c`` after the subcommand's name, else the one before it (``state -c CFG runs``)."""
    if config is not None:
        return config
    parent = ctx.parent.obj if ctx.parent is not None else None
    given = parent.get("config") if isinstance(parent, dict) else None
    return given if isinstance(given, str) else None


def run_line(r: dict[str, Any]) -> str:
    counts = (
        "; ".join(
            f"{k}: " + ", ".join(f"{op} {n}" for op, n in v.items()) for k, v in r["counts"].items()
        )
        or "no changes"
    )
    extra = "".join(f", {r[k]} {k}" for k in ("failures", "conflicts", "held") if r[k])
    dry = " --dry-run" if r["dry_run"] else ""
    return (
        f"  #{r['id']} {r['started_at'][:19]} {r['command']}{dry} {r['status']} "
        f"(exit {r['exit_code']}), {r['round'] or '-'} round: {counts}{extra}"
        + (f" — {r['error']}" if r["error"] else "")
        + (f" — undo of run {r['undo_of']}" if r.get("undo_of") else "")
        + (f" — UNDONE by run {r['undone_by']}" if r.get("undone_by") else "")
    )


KEPT_WHY = "kept from ELIZA: Entra has none; deltasync writes it once Entra has one"


def state_user(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="UPN, mail, Entra object id or ELIZA id.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> int:
    """One person: mirror, links (how matched, when), pushed values, failures, history."""
    found = service.state_user(load(_config(ctx, config), need_secrets=False), query)
    if as_json:
        print_json(found)
        return 0 if found else 1
    if not found:
        out.print(f"no Entra user matches {escape(query)!r} in the mirror")
        return 1
    for u in found:
        out.print(
            f"[bold]{escape(str(u['userPrincipalName']))}[/] ({u['entra_id']}), "
            f"found by {escape(str(u['found_by']))}"
        )
        out.print(
            f"  scope: {escape(u['scope'])}; mirror version {u['version']}, "
            f"settled {u['settled_version']}" + (" (changes pending)" if u["pending"] else "")
        )
        for kind, lk in u["links"].items():
            out.print(
                escape(
                    f"  {kind}: ELIZA #{lk['eliza_id']} {lk['status']}, "
                    f"{matched_text(lk['matched_by'])} at {lk['matched_at'][:19]}"
                )
            )
            kept = lk.get("kept", {})
            for name, value in sorted({**lk["pushed"], **kept}.items()):
                why = f"  ({KEPT_WHY})" if name in kept else ""
                out.print(escape(f"      {name} = {fmt(value)}{why}"))
        if not u["links"]:
            out.print("  not linked to ELIZA")
        for g in u.get("groups", ()):
            why = "directly" if g["via"] is None else f"through {g['via']}"
            out.print(escape(f"  group {g['name']} (ELIZA #{g['eliza_id']}): {why}"))
        for f in u["failures"]:
            out.print(
                escape(
                    f"  {f['category']} ({f['kind']}): {f['message']} — "
                    f"attempt {f['attempts']}, next try: {f['next_try']}"
                )
            )
        if u["history"]:
            out.print("  history:")
            for h in u["history"]:
                changes = ", ".join(
                    f"{k}: {fmt(v[0])} → {fmt(v[1])}" for k, v in h["changes"].items()
                )
                out.print(
                    escape(
                        f"    {h['at'][:19]} run #{h['run_id']} {h['kind']} "
                        f"{h['action']}"
                        + (f" #{h['eliza_id']}" if h["eliza_id"] else "")
                        + (f": {changes}" if changes else "")
                    )
                )
    return 0


def matched_text(matched_by: str) -> str:
    return service.matched_words(matched_by)


def state_groups(config: ConfigOpt = None, as_json: JsonOpt = False) -> int:
    """Groups in scope or why not, their ELIZA custom group, their direct member counts."""
    rows = service.state_groups(load(config, need_secrets=False))
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        out.print("no groups mirrored (sync_options.sync_groups reads them)")
    for r in rows:
        link = r["link"]
        linked = (
            f"ELIZA #{link['eliza_id']} {link['status']}, {matched_text(link['matched_by'])}"
            if link
            else "not linked"
        )
        members = ", ".join(f"{n} {kind}s" for kind, n in sorted(r["members"].items())) or "empty"
        out.print(
            escape(
                f"{r['name']} ({r['entra_id']}): {r['scope']}; {linked}; {members}"
                + (" (changes pending)" if r["pending"] else "")
            )
        )
    return 0


def state_runs(
    ctx: typer.Context,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="How many runs.")] = 20,
    as_json: JsonOpt = False,
) -> int:
    """The last runs, newest first."""
    runs = service.state_runs(load(_config(ctx, config), need_secrets=False), limit)
    if as_json:
        print_json(runs)
    elif not runs:
        out.print("no runs yet")
    for r in [] if as_json else runs:
        out.print(escape(run_line(r)))
    return 0


def state_failures(ctx: typer.Context, config: ConfigOpt = None, as_json: JsonOpt = False) -> int:
    """Objects whose push failed or conflicted, and when each is tried next."""
    rows = service.state_failures(load(_config(ctx, config), need_secrets=False))
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        out.print("no pending failures")
    for f in rows:
        out.print(
            escape(
                f"{f['label']} ({f['entra_id']}) {f['kind']} {f['action']}: "
                f"{f['category'].upper()} {f['message']}"
            )
        )
        out.print(
            escape(
                f"    attempts {f['attempts']}, first {f['first_failed_at'][:19]}, "
                f"next try: {f['next_try']}"
            )
        )
        for c in f["detail"].get("candidates") or []:
            out.print(escape(f"    candidate: {candidate_text(c)}"))
    return 0


def candidate_text(candidate: Any) -> str:
    """An ELIZA account a conflict names: ``#3 username='chef', is_superuser=true``."""
    if not isinstance(candidate, dict):
        return fmt(candidate)
    head = f"#{candidate['id']} " if candidate.get("id") is not None else ""
    rest = ", ".join(f"{k}={fmt(v)}" for k, v in candidate.items() if k != "id" and v is not None)
    return head + rest


def state_reset(
    ctx: typer.Context,
    config: ConfigOpt = None,
    resource: Annotated[
        str, typer.Option("--resource", metavar="users|groups|all", help="Which tokens.")
    ] = "all",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> int:
    """Forget delta tokens: the next run reads everything (mirror and links are kept)."""
    if resource not in ("users", "groups", "all"):
        raise UsageError("--resource must be users, groups or all")
    cfg = load(_config(ctx, config), need_secrets=False)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("state reset asks for confirmation; pass --yes when not interactive")
        typer.confirm(f"Forget the delta tokens of {resource}?", abort=True)
    names = service.state_reset(cfg, resource)
    out.print(f"forgot the delta tokens of {', '.join(names)}; the next run reads everything")
    return 0
