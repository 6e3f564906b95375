"""Before a run's first write: every ELIZA field the sync writes must exist on the instance.

ELIZA drops a field it does not know without a word, so a mapping to a misspelt field would
be "pushed" to every person and reported as a success. When the instance serves its schema
(``GET /api/schema/``), a field it does not list is a configuration error naming the field,
found before anything is written. The check costs one request per mapping (plan fingerprint)
and is remembered in the state meta table, so an idle run never pays for it. Without a
schema, :func:`dropped_fields` catches the same mistake in each write's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltasync import fields as f
from deltasync.engine.context import Run
from deltasync.engine.ledger import FIELDS_CHECKED
from deltasync.engine.ports import collection
from deltasync.errors import ConfigError
from deltasync.models import Kind
from deltasync.plan.actions import Plan


def written_fields(run: Run, kind: Kind) -> frozenset[str]:
    """Every field the sync may write on objects of ``kind``: mapped and planner-owned."""
    ctx = run.settings.ctx
    mapped = ctx.user_mapping if kind == Kind.USER else ctx.person_mapping
    owned = {name for name, spec in f.ELIZA_FIELDS[kind].items() if spec.planner}
    return frozenset(mapped) | frozenset(owned)


async def check_target_fields(run: Run, plan: Plan) -> None:
    """Raise ConfigError naming each written field ELIZA's schema does not know."""
    if not plan.actions:
        return
    fingerprint = run.settings.plan_fingerprint
    if run.store.get_meta(FIELDS_CHECKED) == fingerprint:
        return
    problems: list[str] = []
    for kind, section in f.MAPPING_SECTIONS.items():
        resource = collection(run.names, kind)
        known = await run.target.known_fields(resource)
        if known is None:
            continue  # no schema, or the resource is not in it: each answer is checked
        for name in sorted(written_fields(run, kind) - known):
            problems.append(
                f"field_mapping.{section}.{name}: ELIZA has no field {name!r} on {resource} "
                "(its schema, GET /api/schema/, does not list it); fix or remove the mapping"
            )
    if problems:
        raise ConfigError(problems)
    run.ledger.fields_checked(fingerprint)


def dropped_fields(body: Mapping[str, Any], answer: Any) -> list[str]:
    """Fields a write sent that ELIZA's answer does not hold: ELIZA does not know them."""
    if not isinstance(answer, Mapping):
        return []
    return sorted(k for k in body if k not in answer)
