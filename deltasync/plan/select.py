"""The Graph ``$select`` set of the users resource."""

from __future__ import annotations

from collections.abc import Iterable

from deltasync.plan.context import PlanContext


def selected_properties(ctx: PlanContext, *, extra: Iterable[str] = ()) -> list[str]:
    """The Graph $select set: what mapping, scope and matching read, plus the always-needed ones."""
    props = {"id", "userPrincipalName", "mail", "proxyAddresses", "accountEnabled", "displayName"}
    for expr in (*ctx.user_mapping.values(), *ctx.person_mapping.values()):
        props |= expr.properties
    if ctx.scope.user_filter is not None:
        props |= ctx.scope.user_filter.properties
    props.add("companyName")  # always: toggling --enable-orgunit-sync must not force a full round
    props.update(extra)
    return ["id", *sorted(props - {"id"})]
