"""The Graph ``$select`` set of the users resource."""

from __future__ import annotations

from collections.abc import Iterable

from deltasync.fields import ALWAYS_SELECTED
from deltasync.plan.context import PlanContext


def selected_properties(ctx: PlanContext, *, extra: Iterable[str] = ()) -> list[str]:
    """The Graph $select set: what mapping, scope and matching read, plus the always-needed ones."""
    props = set(ALWAYS_SELECTED)  # companyName too: org unit sync never forces a full round
    for expr in (*ctx.user_mapping.values(), *ctx.person_mapping.values()):
        props |= expr.properties
    if ctx.scope.user_filter is not None:
        props |= ctx.scope.user_filter.properties
    props.update(extra)
    return ["id", *sorted(props - {"id"})]
