"""A dry run shows exactly what the real run then does: the same actions, the same old and
new values (the austrittsdatum of a leaver included), the same reasons, and its progress
log never says "pushed"."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from e2e_helpers import eliza_person_of, hand_patch, pick, sync

from deltasync import service
from deltasync.config import Config
from deltasync.engine import RunOptions
from deltasync.engine.report import RunReport
from deltasync.mapping import compile_expr
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=24, seed=11, page_size=50)


def shown(report: RunReport) -> list[tuple[Any, ...]]:
    """What people read: every action with its changes and reason (not its result)."""
    return sorted(
        (a["entra_id"], a["kind"], a["op"], a["reason"], sorted(a["changes"].items()))
        for a in report.actions
    )


def dry_then_real(config: Config, **opts: Any) -> tuple[RunReport, RunReport]:
    dry = sync(config, dry_run=True, **opts)
    real = sync(config, **opts)
    assert shown(dry) == shown(real)
    return dry, real


class Phases:
    """A progress receiver that notes the phases' names."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def begin(self, run_id: int | None) -> None:
        pass

    def phase(self, name: str, total: int | None = None) -> None:
        self.names.append(name)

    def advance(self, objects: int = 1, *, pages: int = 0) -> None:
        pass

    def done(self) -> None:
        pass


def test_the_dry_run_progress_never_calls_its_work_a_push(sandbox: Sandbox, config: Config) -> None:
    dry, real = Phases(), Phases()
    service.run_sync(config, RunOptions(dry_run=True), progress=dry)
    assert "push" not in dry.names and any("dry run" in n for n in dry.names)
    service.run_sync(config, RunOptions(), progress=real)
    assert "push" in real.names


def test_a_leaver_shows_the_real_old_value_and_the_austrittsdatum_it_sets(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    a, b = pick(sandbox, 2)
    (person,) = eliza_person_of(sandbox, a["id"])
    hand_patch(sandbox, "organisation/mitarbeitende", person["id"], {"anstellungsart": "extern"})
    (hand_dated,) = eliza_person_of(sandbox, b["id"])
    hand_patch(
        sandbox, "organisation/mitarbeitende", hand_dated["id"], {"austrittsdatum": "2026-12-31"}
    )
    sandbox.graph.disable_user(a["id"])
    sandbox.graph.disable_user(b["id"])
    dry, _ = dry_then_real(config)
    person_actions = {a_["entra_id"]: a_["changes"] for a_ in dry.actions if a_["kind"] == "person"}
    assert person_actions[a["id"]]["anstellungsart"] == ["extern", "ehemalig"]
    assert person_actions[a["id"]]["austrittsdatum"][0] is None
    assert "austrittsdatum" not in person_actions[b["id"]]  # a hand-set date stays


def test_held_deactivations_show_the_austrittsdatum_too(sandbox: Sandbox, config: Config) -> None:
    sync(config)
    strict = dataclasses.replace(
        config, deprovisioning=dataclasses.replace(config.deprovisioning, max_deactivations=1)
    )
    for u in pick(sandbox, 3):
        sandbox.graph.disable_user(u["id"])
    dry, _ = dry_then_real(strict)
    held = [a for a in dry.actions if a["result"] == "held" and a["kind"] == "person"]
    assert len(held) == 3
    assert all(a["changes"]["anstellungsart"] == ["intern", "ehemalig"] for a in held)
    assert all(a["changes"]["austrittsdatum"][1] for a in held)
    _, released = dry_then_real(strict, allow_deletes=True)
    assert {a["entra_id"] for a in released.actions if a["result"] == "ok"} == {
        a["entra_id"] for a in held
    }


def test_reasons_say_entra_change_mapping_change_or_drift_repair(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    entra, drifted = pick(sandbox, 2)
    sandbox.graph.update_user(entra["id"], jobTitle="Neu")
    _, real = dry_then_real(config)
    assert {a["reason"] for a in real.actions} == {"changed in Entra"}

    (person,) = eliza_person_of(sandbox, drifted["id"])
    hand_patch(sandbox, "organisation/mitarbeitende", person["id"], {"position": "von Hand"})
    opts: dict[str, Any] = {"command": "resync", "full": True, "verify_target": True}
    _, real = dry_then_real(config, **opts)
    assert [(a["entra_id"], a["reason"]) for a in real.actions] == [(drifted["id"], "drift repair")]

    mapping = {**config.field_mapping.person, "position": compile_expr("jobTitle | upper")}
    upper = dataclasses.replace(
        config, field_mapping=dataclasses.replace(config.field_mapping, person=mapping)
    )
    _, real = dry_then_real(upper)
    assert real.actions and {a["reason"] for a in real.actions} == {"mapping changed"}
