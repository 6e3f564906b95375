"""The Graph writes the simulated tenant accepts, and its recycle bin.

``POST /users``, ``PATCH /users/{id|upn}``, ``DELETE /users/{id|upn}`` (a soft delete),
``GET /directory/deletedItems/microsoft.graph.user[/{id}]``,
``POST /directory/deletedItems/{id}/restore``, ``POST /groups/{id}/members/$ref`` and
``DELETE /groups/{id}/members/{member}/$ref``. Each one calls the tenant's own mutation
method, so a write made over HTTP shows up in the next delta round exactly as a scripted
change does. The caller has checked the bearer token already; the sandbox's app may write
(in Entra that would take ``User.ReadWrite.All`` and ``GroupMember.ReadWrite.All``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import httpx

from deltasync.sandbox.graph.query import list_filter, options
from deltasync.sandbox.graph.schema import GROUPS, USERS, Schema
from deltasync.sandbox.graph.tenant import Obj, Tenant
from deltasync.sandbox.graph.wire import GraphError, json_response

# What POST /users must contain (Graph's "create user" required properties).
REQUIRED_ON_CREATE: Final = (
    "accountEnabled",
    "displayName",
    "mailNickname",
    "userPrincipalName",
    "passwordProfile",
)
READ_ONLY: Final = frozenset({"id", "createdDateTime", "proxyAddresses"})
_BOOLEANS: Final = frozenset({"accountEnabled", "onPremisesSyncEnabled"})
_DIRECTORY_OBJECT: Final = re.compile(r"/directoryObjects/([^/?#]+)/?$", re.IGNORECASE)
_NO_CONTENT: Final = 204


def not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def find_user(tenant: Tenant, key: str, *, deleted: bool = False) -> Obj:
    """A user by id or (case-insensitively) UPN, live or (``deleted``) soft-deleted; else 404."""
    obj = tenant._objs.get(key)
    if obj is None:
        wanted = key.lower()
        obj = next(
            (
                o
                for o in tenant._objs.values()
                if o.schema is USERS
                and str(o.props.get("userPrincipalName") or "").lower() == wanted
                and (o.deleted_at is not None) is deleted
            ),
            None,
        )
    if obj is None or obj.schema is not USERS or (obj.deleted_at is not None) is not deleted:
        raise not_found(key)
    return obj


def _group(tenant: Tenant, key: str) -> Obj:
    obj = tenant._objs.get(key)
    if obj is None or obj.schema is not GROUPS or obj.deleted_at is not None:
        raise not_found(key)
    return obj


def _body(request: httpx.Request, *, required: bool = True) -> dict[str, Any]:
    raw = request.read()
    if not raw.strip() and not required:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
    return body


def _user_props(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The body's user properties in their own spelling, type-checked; a 400 names a bad one."""
    props: dict[str, Any] = {}
    for name, value in body.items():
        if name == "passwordProfile":
            if not isinstance(value, dict) or (creating and not value.get("password")):
                raise _invalid(name)
            continue  # kept by Entra, never returned, so not kept here
        if name.startswith("@odata."):
            continue
        known = USERS.canonical(name)
        if known is None or known == USERS.relation:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"The property '{name}' does not exist on type 'microsoft.graph.user'. Make sure "
                "to only use property names that are defined by the type.",
            )
        if known in READ_ONLY:
            raise GraphError(
                400, "Request_BadRequest", f"Property '{known}' is read-only and cannot be set."
            )
        _check_type(known, value)
        props[known] = value
    return props


def _check_type(name: str, value: Any) -> None:
    if name in USERS.collections:
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise _invalid(name)
    elif name in _BOOLEANS:
        if not isinstance(value, bool):
            raise _invalid(name)
    elif value is not None and not isinstance(value, str):
        raise _invalid(name)


def _invalid(name: str) -> GraphError:
    return GraphError(
        400,
        "Request_BadRequest",
        f"Invalid value specified for property '{name}' of resource 'User'.",
    )


def _check_upn_free(tenant: Tenant, upn: Any, own_id: str | None = None) -> None:
    wanted = str(upn).lower()
    for obj in tenant._objs.values():
        theirs = str(obj.props.get("userPrincipalName") or "").lower()
        if obj.schema is USERS and obj.id != own_id and theirs == wanted:
            raise GraphError(
                400,
                "Request_BadRequest",
                "Another object with the same value for property userPrincipalName already exists.",
            )


def render_user(tenant: Tenant, obj: Obj, base_url: str, context: str) -> dict[str, Any]:
    """A user as Graph returns it from a write or the recycle bin (default properties)."""
    out: dict[str, Any] = {"@odata.context": f"{base_url}/$metadata#{context}"}
    if context.startswith("directoryObjects"):
        out["@odata.type"] = USERS.odata_type
    out["id"] = obj.id
    for name in USERS.default_select:
        out[name] = obj.props.get(name)
    if obj.deleted_at is not None:
        out["deletedDateTime"] = obj.deleted_at
    return out


def handle_write(
    tenant: Tenant,
    base_url: str,
    request: httpx.Request,
    segments: list[str],
    headers: dict[str, str],
) -> httpx.Response:
    """Answer one non-GET request below the Graph root (the token is already checked)."""
    method = request.method
    if segments == ["users"] and method == "POST":
        return _create_user(tenant, base_url, request, headers)
    if len(segments) == 2 and segments[0] == "users" and method in ("PATCH", "DELETE"):
        obj = find_user(tenant, segments[1])
        if method == "DELETE":
            tenant.soft_delete(obj.id)
        else:
            props = _user_props(_body(request), creating=False)
            if "userPrincipalName" in props:
                if not props["userPrincipalName"]:
                    raise _invalid("userPrincipalName")
                _check_upn_free(tenant, props["userPrincipalName"], obj.id)
            tenant.update_user(obj.id, **props)
        return httpx.Response(_NO_CONTENT, headers=headers)
    if (
        len(segments) == 4
        and segments[:2] == ["directory", "deletedItems"]
        and segments[3].lower() in ("restore", "microsoft.graph.restore")
        and method == "POST"
    ):
        obj = find_user(tenant, segments[2], deleted=True)
        tenant.restore(obj.id)
        body = render_user(tenant, obj, base_url, "directoryObjects/$entity")
        return json_response(200, body, headers)
    members = segments[2:3] == ["members"] and segments[0] == "groups"
    if members and segments[3:] == ["$ref"] and method == "POST":
        return _add_member(tenant, request, segments[1], headers)
    if members and len(segments) == 5 and segments[4] == "$ref" and method == "DELETE":
        group = _group(tenant, segments[1])
        if segments[3] not in group.members:
            raise not_found(segments[3])
        tenant.remove_member(group.id, segments[3])
        return httpx.Response(_NO_CONTENT, headers=headers)
    if segments and segments[0] in ("users", "groups", "directory", "organization"):
        raise GraphError(405, "Request_BadRequest", "The HTTP method is not allowed.")
    shown = "/".join(segments) or "/"
    raise GraphError(404, "UnknownResource", f"Resource not found for the segment '{shown}'.")


def _create_user(
    tenant: Tenant, base_url: str, request: httpx.Request, headers: dict[str, str]
) -> httpx.Response:
    body = _body(request)
    for name in REQUIRED_ON_CREATE:
        if body.get(name) in (None, ""):
            raise _invalid(name)
    props = _user_props(body, creating=True)
    _check_upn_free(tenant, props["userPrincipalName"])
    obj_id = tenant.add_user(**props)
    response_headers = {**headers, "Location": f"{base_url}/users/{obj_id}"}
    rendered = render_user(tenant, tenant._objs[obj_id], base_url, "users/$entity")
    return json_response(201, rendered, response_headers)


def _add_member(
    tenant: Tenant, request: httpx.Request, group_id: str, headers: dict[str, str]
) -> httpx.Response:
    group = _group(tenant, group_id)
    ref = _body(request).get("@odata.id")
    match = _DIRECTORY_OBJECT.search(str(ref or ""))
    if match is None:
        raise GraphError(
            400,
            "Request_BadRequest",
            "Invalid object identifier: '@odata.id' must be a URL ending in "
            "/directoryObjects/{id}.",
        )
    member_id = match.group(1)
    member = tenant._objs.get(member_id)
    if member is None or member.deleted_at is not None:
        raise not_found(member_id)
    if member_id in group.members:
        raise GraphError(
            400,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified "
            "properties: 'members'.",
        )
    tenant.add_member(group.id, member_id)
    return httpx.Response(_NO_CONTENT, headers=headers)


def deleted_items(
    tenant: Tenant, base_url: str, request: httpx.Request, segments: list[str]
) -> dict[str, Any]:
    """``GET /directory/deletedItems/microsoft.graph.user`` (``$filter`` by UPN), ``/{id}`` or
    ``/microsoft.graph.user/{id}``."""
    kind = segments[2] if len(segments) > 2 else ""
    if len(segments) == 3 and kind.lower() in ("microsoft.graph.user", "microsoft.graph.group"):
        schema: Schema = USERS if kind.lower().endswith("user") else GROUPS
        terms = list_filter(schema, options(request).get("filter"))
        found = [
            render_user(tenant, o, base_url, "directoryObjects/$entity")
            for o in tenant._objs.values()
            if o.schema is schema and o.deleted_at is not None and matches(o, terms)
        ]
        for entry in found:
            entry.pop("@odata.context")
        return {"@odata.context": f"{base_url}/$metadata#directoryObjects", "value": found}
    if (len(segments) == 4 and kind.lower() == "microsoft.graph.user") or len(segments) == 3:
        obj = find_user(tenant, segments[-1], deleted=True)
        return render_user(tenant, obj, base_url, "directoryObjects/$entity")
    raise GraphError(404, "UnknownResource", f"Resource not found for '{'/'.join(segments)}'.")


def matches(obj: Obj, terms: list[tuple[str, str]] | None) -> bool:
    """Whether an object meets every ``prop eq 'value'`` term (case-insensitive, like Graph)."""
    if terms is None:
        return True
    for name, value in terms:
        actual = obj.id if name == "id" else obj.props.get(name)
        if str(actual or "").lower() != value.lower():
            return False
    return True
