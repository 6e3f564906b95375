"""``deltasync check``: every precondition of a run, tested without writing anything."""

from __future__ import annotations

import asyncio
from typing import Any

from deltasync.config import Config, placeholders
from deltasync.eliza.client import ElizaClient, Resource, schema_fields
from deltasync.errors import DeltaSyncError
from deltasync.graph.check import check_graph
from deltasync.service.settings import SyncFlags, engine_settings

# ELIZA fields the sync writes besides the mapped ones
EXTRA_FIELDS = {
    "user": {"remote_key", "is_active", "groups"},
    "mitarbeitende": {"remote_key", "user", "anstellungsart", "austrittsdatum"},
}


def _row(check: str, status: str, detail: str, fix: str = "") -> dict[str, str]:
    return {"check": check, "status": status, "detail": detail, "fix": fix}


def run_checks(
    config: Config,
    *,
    graph_transport: Any = None,
    eliza_transport: Any = None,
    credential: Any = None,
) -> list[dict[str, str]]:
    """Config, Entra credential and Graph permission, ELIZA token, permissions and schema."""
    return asyncio.run(_checks(config, graph_transport, eliza_transport, credential))


async def _checks(
    config: Config, graph_transport: Any, eliza_transport: Any, credential: Any
) -> list[dict[str, str]]:
    rows = [_row("config", "ok", f"{config.path} is valid")]
    rows += [_row("config", "warn", w) for w in config.warnings]
    rows += [
        _row("placeholders", "fail", f"{line} (left from the example config)")
        for line in placeholders(config)
    ]
    settings = engine_settings(config, SyncFlags())
    probes = await check_graph(
        config.entra,
        select=settings.select,
        sync_groups=config.sync_options.sync_groups,
        transport=graph_transport,
        credential=credential,
    )
    rows += [
        _row(
            p.name if p.name.startswith("graph") else f"graph {p.name}",
            "ok" if p.ok else "fail",
            p.detail,
            p.fix,
        )
        for p in probes
    ]
    client = ElizaClient.from_config(config.eliza, transport=eliza_transport)
    try:
        rows += await _eliza_checks(config, client)
    finally:
        await client.aclose()
    return rows


async def _eliza_checks(config: Config, client: ElizaClient) -> list[dict[str, str]]:
    rows = []
    for name, resource in (
        ("users", Resource.USER),
        ("persons", Resource.PERSON),
        ("org units", Resource.ORGUNIT),
        ("memberships", Resource.MEMBERSHIP),
    ):
        try:
            count = await client.probe(resource)
            held = f" ({count} in ELIZA)" if count is not None else ""
            rows.append(
                _row(f"eliza {name}", "ok", f"the API token may read {resource.value}{held}")
            )
        except DeltaSyncError as exc:
            rows.append(_row(f"eliza {name}", "fail", str(exc)))
            if name == "users":
                return rows
    if config.orgunit_mapping:
        try:
            known = {int(o["id"]) for o in await client.list_all(Resource.ORGUNIT)}
            missing = {k: v for k, v in config.orgunit_mapping.items() if v not in known}
            rows.append(
                _row(
                    "orgunit_mapping",
                    "fail" if missing else "ok",
                    "unknown org units: " + ", ".join(f"{k!r} → {v}" for k, v in missing.items())
                    if missing
                    else "every mapped org unit exists",
                )
            )
        except DeltaSyncError as exc:
            rows.append(_row("orgunit_mapping", "fail", str(exc)))
    schema = await client.schema()
    if schema is None:
        rows.append(
            _row(
                "eliza schema",
                "warn",
                "/api/schema/ is not served; field names could not be checked",
            )
        )
        return rows
    fields = {
        "user": schema_fields(schema, client.path(Resource.USER)),
        "mitarbeitende": schema_fields(schema, client.path(Resource.PERSON)),
    }
    mapped = {
        "user": set(config.field_mapping.user) | EXTRA_FIELDS["user"],
        "mitarbeitende": set(config.field_mapping.person) | EXTRA_FIELDS["mitarbeitende"],
    }
    for key, names in mapped.items():
        known_fields = fields.get(key)
        if known_fields is None:
            rows.append(_row(f"eliza schema {key}", "warn", "resource not found in the schema"))
            continue
        unknown = sorted(names - known_fields)
        rows.append(
            _row(
                f"eliza schema {key}",
                "fail" if unknown else "ok",
                f"fields unknown to ELIZA: {', '.join(unknown)}"
                if unknown
                else f"all {len(names)} written fields exist",
            )
        )
    return rows
