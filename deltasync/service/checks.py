"""``deltasync check``: every precondition of a run, tested without writing anything.

The rows come from the adapters' own checks: ``graph.check`` (credential, token permissions,
one read with the full ``$select``), ``eliza.check`` (host, token, permissions per resource,
org unit and group ids, schema) and ``state.probe_state`` (reachable, revision, writable).
Graph, ELIZA and the state database are checked at the same time, so the slowest decides
how long ``check`` takes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from deltasync.config import Config, placeholders
from deltasync.eliza.check import ElizaNeeds, check_eliza
from deltasync.eliza.client import Resource
from deltasync.fields import unknown_properties
from deltasync.graph.check import check_graph
from deltasync.models import Probe
from deltasync.service.inspect import soft_match_advice
from deltasync.service.settings import SyncFlags, engine_settings
from deltasync.state import probe_state

# ELIZA fields the sync writes besides the mapped ones
EXTRA_FIELDS = {
    "user": {"remote_key", "is_active", "groups"},
    "mitarbeitende": {"remote_key", "user", "anstellungsart", "austrittsdatum"},
    "membership": {"mitarbeiter", "orgunit", "von", "bis"},
}


def _row(check: str, status: str, detail: str, fix: str = "") -> dict[str, str]:
    return {"check": check, "status": status, "detail": detail, "fix": fix}


def _probe_row(probe: Probe, prefix: str = "") -> dict[str, str]:
    status = "warn" if probe.ok is None else "ok" if probe.ok else "fail"
    name = probe.name if not prefix or probe.name.startswith(prefix) else f"{prefix}{probe.name}"
    return _row(name, status, probe.detail, probe.fix)


def run_checks(
    config: Config,
    *,
    flags: SyncFlags | None = None,
    graph_transport: Any = None,
    eliza_transport: Any = None,
    credential: Any = None,
) -> list[dict[str, str]]:
    """Config, Entra and Graph, ELIZA, and the state database: one row per line of check.

    ``flags`` are the sync flags the run will use (``--enable-orgunit-sync``,
    ``--assign-to-group``): they change what ELIZA must allow.
    """
    return asyncio.run(
        _checks(config, flags or SyncFlags(), graph_transport, eliza_transport, credential)
    )


def _catalogue_row(select: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Every selected Graph property the catalogue (``fields.GRAPH_USER_PROPERTIES``) does not
    know, all of them at once: Graph's own answer names only the first."""
    unknown = unknown_properties(select)
    if not unknown:
        return _row(
            "graph properties", "ok", f"all {len(select)} selected are known Graph properties"
        )
    return _row(
        "graph properties",
        "warn",
        f"{len(unknown)} not in deltasync's catalogue of Graph user properties: "
        f"{', '.join(unknown)} (a typo, or newer than the catalogue: graph users says whether "
        "Graph knows them)",
        "correct them in field_mapping or advanced.user_filter",
    )


def eliza_needs(config: Config, flags: SyncFlags) -> ElizaNeeds:
    """What a run with these settings reads and writes in ELIZA."""
    so = config.sync_options
    writes: dict[Resource, list[str]] = {
        Resource.USER: (["create"] if so.create_users else []) + ["update"],
        Resource.PERSON: (["create"] if so.create_persons else []) + ["update"],
    }
    fields = {
        Resource.USER: set(config.field_mapping.user) | EXTRA_FIELDS["user"],
        Resource.PERSON: set(config.field_mapping.person) | EXTRA_FIELDS["mitarbeitende"],
    }
    if config.orgunit_mapping or flags.orgunit_sync:
        writes[Resource.ORGUNIT] = []
    if flags.orgunit_sync:
        writes[Resource.MEMBERSHIP] = ["create", "update"]
        fields[Resource.MEMBERSHIP] = EXTRA_FIELDS["membership"]
    if so.sync_groups:
        writes[Resource.CUSTOMGROUP] = ["create", "update"]
    groups: dict[str, int] = {}
    if flags.assign_to_group is not None:
        groups["--assign-to-group"] = flags.assign_to_group
    elif config.groups.assign_to_group is not None:
        groups["groups.assign_to_group"] = config.groups.assign_to_group
    for gid in config.matching.protected_groups:
        groups[f"matching.protected_groups {gid}"] = gid
    return ElizaNeeds(
        writes=writes, fields=fields, orgunits=dict(config.orgunit_mapping), groups=groups
    )


async def _checks(
    config: Config, flags: SyncFlags, graph_transport: Any, eliza_transport: Any, credential: Any
) -> list[dict[str, str]]:
    rows = [_row("config", "ok", f"{config.path} is valid")]
    rows += [_row("config", "warn", w) for w in config.warnings]
    rows += [
        _row("placeholders", "fail", f"{line} (left from the example config)", "replace it")
        for line in placeholders(config)
    ]
    settings = engine_settings(config, flags)
    rows.append(_catalogue_row(settings.select))
    graph, eliza, state = await asyncio.gather(
        check_graph(
            config.entra,
            select=settings.select,
            sync_groups=config.sync_options.sync_groups,
            transport=graph_transport,
            credential=credential,
        ),
        check_eliza(config.eliza, eliza_needs(config, flags), transport=eliza_transport),
        asyncio.to_thread(probe_state, config.state.url),
    )
    rows += [_probe_row(p, "graph ") for p in graph]
    rows += [_probe_row(p) for p in eliza]
    rows += [_probe_row(p) for p in state]
    rows += [_row("matching", "warn", a) for a in filter(None, [soft_match_advice(config)])]
    return rows
