"""The ELIZA side of ``deltasync check``: the host, the token, its permissions per resource,
the mapped fields against ``/api/schema/`` and the org unit and group ids the config names.

Nothing is written. Reads are ``?limit=1``; whether the token may *write* is asked with
``OPTIONS`` (Django REST Framework lists the writes a token passes the permission check for);
where ELIZA does not answer that way, the line says the write was not verified. No retries,
a 5 s timeout on the first request, so an unreachable or silent host fails fast, named.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from deltasync.eliza.client import ElizaClient, ElizaConfigLike
from deltasync.eliza.resources import Resource
from deltasync.eliza.schema import schema_fields
from deltasync.errors import (
    AuthError,
    DeltaSyncError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from deltasync.models import Probe

#: Seconds the first request may take, connecting and answering (a run waits eliza.timeout_s).
CHECK_REACH_TIMEOUT_S = 5.0
#: Seconds any later request may take (the schema can take a while to render).
CHECK_READ_TIMEOUT_S = 20.0

LABELS: dict[Resource, str] = {
    Resource.USER: "users",
    Resource.PERSON: "persons",
    Resource.ORGUNIT: "org units",
    Resource.MEMBERSHIP: "memberships",
    Resource.CUSTOMGROUP: "custom groups",
}
# What a run needs → the method DRF's OPTIONS lists when the token may do it.
_METHOD = {"create": "POST", "update": "PUT"}


@dataclass(frozen=True)
class ElizaNeeds:
    """What a run will do in ELIZA, so what check must prove.

    ``writes``: per resource the writes a run makes (``create``, ``update``); a resource with
    none is only read. ``fields``: per resource the fields a run writes. ``orgunits``: the
    org unit ids by the config key naming them; ``groups``: group ids by config key.
    """

    writes: Mapping[Resource, Sequence[str]]
    fields: Mapping[Resource, set[str]] = field(default_factory=dict)
    orgunits: Mapping[str, int] = field(default_factory=dict)
    groups: Mapping[str, int] = field(default_factory=dict)


async def check_eliza(
    cfg: ElizaConfigLike,
    needs: ElizaNeeds,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    reach_timeout_s: float = CHECK_REACH_TIMEOUT_S,
) -> list[Probe]:
    """Lines ``eliza host``, ``eliza token``, one per resource, ``orgunit_mapping``,
    ``eliza group ids`` and ``eliza schema <resource>``; after a failed host or token,
    nothing else is tried."""
    client = ElizaClient(
        cfg.base_url,
        cfg.api_token,
        trailing_slash=cfg.trailing_slash,
        timeout_s=min(cfg.timeout_s, CHECK_READ_TIMEOUT_S),
        connect_timeout_s=reach_timeout_s,
        max_concurrency=1,
        ca_bundle=cfg.ca_bundle,
        paths=cfg.paths,
        transport=transport,
        max_retries=0,
    )
    try:
        return await _checks(client, needs, reach_timeout_s)
    finally:
        await client.aclose()


async def _checks(client: ElizaClient, needs: ElizaNeeds, reach_timeout_s: float) -> list[Probe]:
    started = time.monotonic()
    first: tuple[int | None, int | None] | Probe
    try:
        first = await client.sample(Resource.USER, timeout_s=reach_timeout_s)
    except ServiceUnavailableError as error:
        return [Probe("eliza host", False, str(error), _NETWORK_FIX)]
    except AuthError as error:
        return [_host_ok(client, started), Probe("eliza token", False, str(error), _TOKEN_FIX)]
    except PermissionDeniedError:
        first = _denied(client, Resource.USER, "read")
    except DeltaSyncError as error:  # a 404 or HTML: the URL does not lead to ELIZA's API
        return [Probe("eliza host", False, str(error), "correct eliza.base_url (and eliza.paths)")]
    lines = [_host_ok(client, started), Probe("eliza token", True, "ELIZA accepted the API token")]
    for resource, writes in needs.writes.items():
        if resource is Resource.USER:
            lines.append(
                first
                if isinstance(first, Probe)
                else await _permissions(client, resource, writes, first)
            )
        else:
            lines.append(await _permissions(client, resource, writes, None))
    if needs.orgunits:
        lines.append(await _orgunits(client, needs.orgunits))
    if needs.groups:
        lines.append(await _groups(client, needs.groups))
    lines += await _schema(client, needs.fields)
    return lines


_NETWORK_FIX = (
    "check eliza.base_url, DNS, the firewall and HTTPS_PROXY (eliza.ca_bundle for a "
    "TLS-inspecting proxy)"
)
_TOKEN_FIX = "create a new API token in ELIZA and set eliza.api_token to it"


def _host_ok(client: ElizaClient, started: float) -> Probe:
    took = time.monotonic() - started
    return Probe("eliza host", True, f"{client.host} answered in {took:.2f} s")


def _denied(client: ElizaClient, resource: Resource, what: str) -> Probe:
    path = client.path(resource)
    return Probe(
        f"eliza {LABELS[resource]}",
        False,
        f"the API token may not {what} {path} (403)",
        f"grant the API token permission to {what} {resource.value} in ELIZA",
    )


async def _permissions(
    client: ElizaClient,
    resource: Resource,
    writes: Sequence[str],
    sampled: tuple[int | None, int | None] | None,
) -> Probe:
    name = f"eliza {LABELS[resource]}"
    path = client.path(resource)
    try:
        count, first_id = sampled or await client.sample(resource)
    except PermissionDeniedError:
        return _denied(client, resource, "read")
    except DeltaSyncError as error:
        return Probe(name, False, str(error))
    held = f", {count} in ELIZA" if count is not None else ""
    read = f"read {path} (GET ?limit=1{held})"
    verified, denied, unknown = [], [], []
    for write in writes:
        target = None if write == "create" else first_id
        if write == "update" and first_id is None:
            unknown.append(f"{write} (there is no object to ask about yet)")
            continue
        try:
            actions = await client.write_actions(resource, target)
        except DeltaSyncError:
            actions = None
        if actions is None:
            unknown.append(f"{write} (ELIZA's OPTIONS does not say)")
        elif _METHOD[write] in actions:
            verified.append(write)
        else:
            denied.append(write)
    if denied:
        return Probe(
            name,
            False,
            f"the API token may {read}, but not {' or '.join(denied)} {resource.value} "
            "(ELIZA's OPTIONS lists no such action for it)",
            f"grant the API token permission to {' and '.join(denied)} {resource.value} in ELIZA",
        )
    parts = [f"may {read}"]
    if verified:
        parts.append(f"{' and '.join(verified)} (ELIZA's OPTIONS lists it)")
    if unknown:
        parts.append(
            "not verified: "
            + ", ".join(unknown)
            + "; ELIZA offers no way to test a write without writing, the first sync will show"
        )
    return Probe(name, None if unknown else True, "; ".join(parts))


async def _orgunits(client: ElizaClient, mapping: Mapping[str, int]) -> Probe:
    try:
        known = {int(o["id"]) for o in await client.list_all(Resource.ORGUNIT)}
    except DeltaSyncError as error:
        return Probe("orgunit_mapping", False, str(error))
    missing = {k: v for k, v in mapping.items() if v not in known}
    if missing:
        return Probe(
            "orgunit_mapping",
            False,
            "ELIZA has no org unit "
            + ", ".join(f"{v} (for {k!r})" for k, v in sorted(missing.items())),
            "correct the ids in orgunit_mapping (ELIZA → Organisation → the unit's id)",
        )
    return Probe(
        "orgunit_mapping", True, f"all {len(set(mapping.values()))} mapped org units exist"
    )


async def _groups(client: ElizaClient, groups: Mapping[str, int]) -> Probe:
    """Group ids exist when ELIZA lists them as custom groups or some user is in them
    (system and automatic groups have no list of their own)."""
    known: set[int] = set()
    with contextlib.suppress(DeltaSyncError):  # unreadable: the users' groups still tell
        known |= {int(g["id"]) for g in await client.list_all(Resource.CUSTOMGROUP)}
    try:
        for user in await client.list_all(Resource.USER):
            known |= {int(g) for g in user.get("groups") or () if isinstance(g, int)}
    except DeltaSyncError as error:
        return Probe("eliza group ids", False, str(error))
    missing = {k: v for k, v in groups.items() if v not in known}
    if missing:
        return Probe(
            "eliza group ids",
            False,
            "ELIZA has no group "
            + ", ".join(f"{v} ({k})" for k, v in sorted(missing.items()))
            + ": it is no custom group and no user is in it",
            "correct the id (" + ", ".join(sorted(missing)) + ")",
        )
    shown = ", ".join(f"{v} ({k})" for k, v in sorted(groups.items()))
    return Probe("eliza group ids", True, f"ELIZA has every group named: {shown}")


async def _schema(client: ElizaClient, fields: Mapping[Resource, set[str]]) -> list[Probe]:
    try:
        schema: dict[str, Any] | None = await client.schema()
    except DeltaSyncError as error:
        return [Probe("eliza schema", None, f"/api/schema/ could not be read: {error}")]
    if schema is None:
        return [
            Probe(
                "eliza schema",
                None,
                "/api/schema/ is not served: the mapped field names were not verified",
            )
        ]
    lines = []
    for resource, names in fields.items():
        name = f"eliza schema {resource.value.rsplit('/', 1)[-1]}"
        known = schema_fields(schema, client.path(resource))
        if known is None:
            lines.append(Probe(name, None, f"{client.path(resource)} is not in the schema"))
            continue
        unknown = sorted(names - known)
        if unknown:
            lines.append(
                Probe(
                    name,
                    False,
                    f"ELIZA's {resource.value} has no field {', '.join(unknown)}",
                    "correct or remove it in field_mapping (ELIZA knows: "
                    + ", ".join(sorted(known))
                    + ")",
                )
            )
        else:
            lines.append(Probe(name, True, f"all {len(names)} written fields exist"))
    return lines
