"""The Graph side of ``deltasync check``: the credential, the token's permissions, and one
read with the full ``$select`` a run will use, each as a :class:`Probe` with its fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from deltasync.errors import (
    AuthError,
    DeltaSyncError,
    PermissionDeniedError,
    RunFailedError,
    ServiceUnavailableError,
)
from deltasync.fields import unknown_properties
from deltasync.graph.client import GraphSource
from deltasync.graph.transport import EntraSettings
from deltasync.models import Probe

__all__ = ["CHECK_CONNECT_TIMEOUT_S", "NEEDED", "Probe", "check_graph", "missing_permissions"]

#: Seconds a check may spend opening a connection (a run waits 30).
CHECK_CONNECT_TIMEOUT_S = 5.0
#: Seconds a check may wait for an answer.
CHECK_READ_TIMEOUT_S = 20.0

_CONSENT = (
    "Entra admin center → App registrations → the app → API permissions → Add a permission → "
    "Microsoft Graph → Application permissions → {permission}, then Grant admin consent"
)
#: What a run needs → the application permissions that grant it (least privileged first).
NEEDED: dict[str, tuple[str, ...]] = {
    "User.Read.All": (
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "GroupMember.Read.All": (
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
}
GROUP_SELECT: tuple[str, ...] = ("id", "displayName")


def missing_permissions(roles: Sequence[str], *, sync_groups: bool) -> list[str]:
    """The permissions a run needs that ``roles`` (a token's ``roles`` claim) does not grant,
    each by its least-privileged name."""
    held = {role.casefold() for role in roles}
    wanted = ["User.Read.All"] + (["GroupMember.Read.All"] if sync_groups else [])
    return [need for need in wanted if not any(grant.casefold() in held for grant in NEEDED[need])]


async def check_graph(
    cfg: EntraSettings,
    *,
    select: Sequence[str],
    sync_groups: bool,
    transport: httpx.AsyncBaseTransport | None = None,
    credential: AsyncTokenCredential | None = None,
    connect_timeout_s: float = CHECK_CONNECT_TIMEOUT_S,
) -> list[Probe]:
    """Everything a run needs from Entra and Graph, without retries and with short timeouts.

    Lines: ``credential`` (a token is issued; AADSTS codes translated), ``token permissions``
    (its ``roles`` claim against what the run needs), ``graph users`` (``GET /users`` with
    the full ``$select`` and ``$top=1``, so Graph names an unknown property) and, when
    groups are synced, ``graph groups``. After a failed credential nothing else is tried.
    """
    options: dict[str, Any] = {
        "transport": transport,
        "credential": credential,
        "max_retries": 0,
        "timeout_s": CHECK_READ_TIMEOUT_S,
        "connect_timeout_s": connect_timeout_s,
        "low_priority": False,
    }
    source = GraphSource(cfg, **options)
    try:
        return await _probes(source, select=select, sync_groups=sync_groups)
    finally:
        await source.aclose()


async def _probes(source: GraphSource, *, select: Sequence[str], sync_groups: bool) -> list[Probe]:
    try:
        roles = await source.token_roles()
    except AuthError as error:
        text, _, fix = str(error).partition("; fix: ")
        return [Probe("credential", False, text, fix or "check the entra: credential keys")]
    except DeltaSyncError as error:
        return [Probe("credential", False, str(error), _network_fix(error))]
    probes = [Probe("credential", True, "Entra issued an access token for Microsoft Graph")]
    missing = missing_permissions(roles, sync_groups=sync_groups)
    shown = ", ".join(roles) if roles else "none"
    if missing:
        probes.append(
            Probe(
                "token permissions",
                False,
                f"the token lacks {' and '.join(missing)} (it holds: {shown})",
                "; ".join(_CONSENT.format(permission=p) for p in missing),
            )
        )
    else:
        probes.append(Probe("token permissions", True, f"the token holds {shown}"))
    probes.append(await _read(source, "users", select))
    if sync_groups:
        probes.append(await _read(source, "groups", GROUP_SELECT))
    return probes


async def _read(source: GraphSource, resource: str, select: Sequence[str]) -> Probe:
    name = f"graph {resource}"
    what = f"GET /{resource} with $select of {len(select)} properties"
    try:
        await source.read_sample(resource, select)
    except PermissionDeniedError as error:
        permission = "GroupMember.Read.All" if resource == "groups" else "User.Read.All"
        return Probe(name, False, str(error), _CONSENT.format(permission=permission))
    except ServiceUnavailableError as error:
        return Probe(name, False, str(error), _network_fix(error))
    except RunFailedError as error:
        fix = ""
        if "Could not find a property" in str(error):
            unknown = unknown_properties(select) if resource == "users" else []
            named = f" (of the selected ones: {', '.join(unknown)})" if unknown else ""
            fix = f"correct the property names in field_mapping or advanced.user_filter{named}"
        return Probe(name, False, str(error), fix)
    except DeltaSyncError as error:
        return Probe(name, False, str(error))
    return Probe(name, True, f"{what}: Graph knows every property ({', '.join(select)})")


def _network_fix(error: DeltaSyncError) -> str:
    return (
        "check the host name, DNS, the firewall and HTTPS_PROXY (entra.ca_bundle for a "
        "TLS-inspecting proxy)"
        if isinstance(error, ServiceUnavailableError)
        else ""
    )
