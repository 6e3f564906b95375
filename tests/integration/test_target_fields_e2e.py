"""A mapped ELIZA field the instance does not know: a configuration error when ELIZA serves
its schema, a failed object (never a silent success) when it does not."""

from __future__ import annotations

import dataclasses

import pytest
from e2e_helpers import eliza_person_of, in_scope, sync, writes

from deltasync import service
from deltasync.config import Config
from deltasync.errors import ConfigError, exit_code_for
from deltasync.mapping import compile_expr
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=12, seed=5, page_size=50)

SCHEMA = "/api/schema/"


def with_unknown_field(config: Config) -> Config:
    mapping = {**config.field_mapping.person, "unbekanntesfeld": compile_expr("jobTitle")}
    return dataclasses.replace(
        config, field_mapping=dataclasses.replace(config.field_mapping, person=mapping)
    )


def schema_reads(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.eliza.requests if r.path == SCHEMA)


def test_an_unknown_field_is_a_configuration_error_naming_it_before_any_write(
    sandbox: Sandbox, config: Config
) -> None:
    with pytest.raises(ConfigError) as caught:
        sync(with_unknown_field(config))
    assert exit_code_for(caught.value) == 2
    assert "field_mapping.mitarbeitende.unbekanntesfeld" in str(caught.value)
    assert writes(sandbox) == []
    assert service.state_summary(config)["links"]["person"]["active"] == 0


def test_the_schema_is_read_once_per_mapping_and_never_by_an_idle_run(
    sandbox: Sandbox, config: Config
) -> None:
    assert sync(config).exit_code == 0
    assert schema_reads(sandbox) == 1
    (entra,) = [u for u in in_scope(sandbox) if u.get("jobTitle")][:1]
    sandbox.graph.update_user(entra["id"], jobTitle="Neu")
    sandbox.eliza.reset_log()
    assert sync(config).exit_code == 0
    assert schema_reads(sandbox) == 0  # same mapping: remembered in the state database
    sandbox.eliza.reset_log()
    sync(config)
    assert sandbox.eliza.request_count == 0
    with pytest.raises(ConfigError):  # a new mapping is checked again
        sync(with_unknown_field(config))


def test_without_a_schema_a_dropped_field_fails_the_object_naming_it(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.eliza.serve_schema = False
    bad = with_unknown_field(config)
    report = sync(bad)
    assert report.exit_code == 3
    persons = [f for f in report.failures if f["kind"] == "person"]
    assert len(persons) == len(in_scope(sandbox))
    assert all("'unbekanntesfeld'" in f["message"] for f in persons)
    assert report.counts().get("person", {}) == {}  # not counted as done
    failing = {f["entra_id"] for f in service.state_failures(config)}
    assert failing == {u["id"] for u in in_scope(sandbox)}
    again = sync(bad, retry_failed=True)  # still failing, and never duplicated
    assert again.exit_code == 3
    for u in in_scope(sandbox):
        assert len(eliza_person_of(sandbox, u["id"])) == 1
    fixed = sync(config, retry_failed=True)
    assert fixed.exit_code == 0, fixed.as_dict()
    assert service.state_failures(config) == []
