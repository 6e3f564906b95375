"""deltasync.export.metrics: the node_exporter textfile, parsed back with prometheus_client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deltasync.errors import UsageError
from deltasync.export.metrics import KINDS, OPS, check_metrics_path, write_metrics

SCALARS = [
    "deltasync_last_run_timestamp_seconds",
    "deltasync_last_run_exit_code",
    "deltasync_last_run_duration_seconds",
    "deltasync_last_run_success",
    "deltasync_deactivations_held",
    "deltasync_graph_requests",
    "deltasync_eliza_requests",
    "deltasync_eliza_writes",
    "deltasync_delta_pages",
    "deltasync_objects_seen",
    "deltasync_full_round",
]
LABELLED = ["deltasync_objects_changed", "deltasync_objects_failed"]

REPORT: dict[str, Any] = {
    "run_id": 12,
    "command": "sync",
    "dry_run": False,
    "status": "held",
    "exit_code": 4,
    "started_at": "2025-01-01T02:00:00+00:00",
    "duration_s": 12.345,
    "round": {
        "kind": "full",
        "full_round_reason": "no delta token",
        "complete": True,
        "pages": 7,
        "objects_seen": 1234,
        "objects_changed": 30,
    },
    "requests": {"graph": 9, "eliza": 88, "eliza_writes": 21},
    "planned_objects": 25,
    "deferred_objects": 0,
    "counts": {"user": {"create": 3, "update": 10}, "person": {"update": 5}, "group": {"sync": 1}},
    "actions": [],
    "failures": [
        {"entra_id": "a", "label": "a@x", "kind": "user", "op": "create", "message": "400"},
        {"entra_id": "b", "label": "b@x", "kind": "person", "op": "update", "message": "422"},
        {"entra_id": "c", "label": "c@x", "kind": "user", "op": "plan", "message": "bad"},
    ],
    "conflicts": [
        {"entra_id": "d", "label": "d@x", "kind": "user", "op": "update", "message": "two"},
    ],
    "held": [
        {"entra_id": "e", "label": "e@x", "status": "disabled"},
        {"entra_id": "f", "label": "f@x", "status": "deleted"},
    ],
    "threshold": "2 deactivations exceed 1%",
    "warnings": [],
    "error": None,
    "timings": {"pull": 3.0},
}

FAILED_RUN: dict[str, Any] = {
    "run_id": None,
    "command": "sync",
    "dry_run": False,
    "status": "failed",
    "exit_code": 1,
    "started_at": "2025-01-01T02:00:00+00:00",
    "duration_s": 0.5,
    "round": {"kind": None, "pages": 0, "objects_seen": 0},
    "requests": {"graph": 1, "eliza": 0, "eliza_writes": 0},
    "counts": {},
    "failures": [],
    "conflicts": [],
    "held": [],
    "error": "Graph rejected the credential",
}


def parse(path: Path) -> dict[str, Any]:
    """The metric families in the file, by name."""
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    return families


def samples(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def scalar(families: dict[str, Any], name: str) -> float:
    (value,) = samples(families[name]).values()
    return value


def test_every_metric_present_with_help_and_gauge_type(tmp_path: Path) -> None:
    path = tmp_path / "deltasync.prom"
    write_metrics(path, REPORT, now=1_700_000_000.5)
    families = parse(path)
    assert set(families) == {*SCALARS, *LABELLED}
    for family in families.values():
        assert family.type == "gauge"
        assert len(family.documentation) > 10
    assert "# HELP deltasync_last_run_success" in path.read_text()


def test_scalar_values(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, REPORT, now=1_700_000_000.5)
    families = parse(path)
    assert {name: scalar(families, name) for name in SCALARS} == {
        "deltasync_last_run_timestamp_seconds": 1_700_000_000.5,
        "deltasync_last_run_exit_code": 4,
        "deltasync_last_run_duration_seconds": 12.345,
        "deltasync_last_run_success": 0,
        "deltasync_deactivations_held": 2,
        "deltasync_graph_requests": 9,
        "deltasync_eliza_requests": 88,
        "deltasync_eliza_writes": 21,
        "deltasync_delta_pages": 7,
        "deltasync_objects_seen": 1234,
        "deltasync_full_round": 1,
    }


def test_objects_changed_by_kind_and_op_with_zeros(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, REPORT, now=0)
    changed = samples(parse(path)["deltasync_objects_changed"])
    assert changed[(("kind", "user"), ("op", "create"))] == 3
    assert changed[(("kind", "user"), ("op", "update"))] == 10
    assert changed[(("kind", "person"), ("op", "update"))] == 5
    assert changed[(("kind", "group"), ("op", "sync"))] == 1  # unknown kinds/ops pass through
    assert changed[(("kind", "membership"), ("op", "end"))] == 0  # present as zero
    assert sum(changed.values()) == 19
    for kind in KINDS:
        for op in OPS:
            assert (("kind", kind), ("op", op)) in changed


def test_objects_failed_by_kind_and_category(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, REPORT, now=0)
    failed = samples(parse(path)["deltasync_objects_failed"])
    assert failed == {
        (("category", "error"), ("kind", "user")): 2,
        (("category", "conflict"), ("kind", "user")): 1,
        (("category", "error"), ("kind", "person")): 1,
        (("category", "conflict"), ("kind", "person")): 0,
        (("category", "error"), ("kind", "membership")): 0,
        (("category", "conflict"), ("kind", "membership")): 0,
    }


def test_success_only_for_exit_code_zero(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    ok = {**REPORT, "exit_code": 0, "failures": [], "conflicts": [], "held": []}
    ok["round"] = {**REPORT["round"], "kind": "incremental"}
    write_metrics(path, ok, now=0)
    families = parse(path)
    assert scalar(families, "deltasync_last_run_success") == 1
    assert scalar(families, "deltasync_last_run_exit_code") == 0
    assert scalar(families, "deltasync_full_round") == 0
    write_metrics(path, {**REPORT, "exit_code": 3}, now=0)
    assert scalar(parse(path), "deltasync_last_run_success") == 0


def test_failed_run_still_writes_every_metric(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, FAILED_RUN, now=42)
    families = parse(path)
    assert set(families) == {*SCALARS, *LABELLED}
    assert scalar(families, "deltasync_last_run_exit_code") == 1
    assert scalar(families, "deltasync_last_run_success") == 0
    assert scalar(families, "deltasync_last_run_timestamp_seconds") == 42
    assert scalar(families, "deltasync_graph_requests") == 1
    assert scalar(families, "deltasync_full_round") == 0
    assert set(samples(families["deltasync_objects_changed"]).values()) == {0}
    assert set(samples(families["deltasync_objects_failed"]).values()) == {0}


def test_bare_error_report_means_exit_one_and_zeros(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    write_metrics(path, {"error": "boom"}, now=1)
    families = parse(path)
    assert set(families) == {*SCALARS, *LABELLED}
    assert scalar(families, "deltasync_last_run_exit_code") == 1
    assert scalar(families, "deltasync_deactivations_held") == 0
    assert scalar(families, "deltasync_last_run_duration_seconds") == 0


def test_timestamp_defaults_to_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deltasync.export.metrics.time.time", lambda: 1234.0)
    path = tmp_path / "m.prom"
    write_metrics(path, REPORT)
    assert scalar(parse(path), "deltasync_last_run_timestamp_seconds") == 1234.0


def test_rewrite_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "deltasync.prom"
    path.write_text("stale")
    write_metrics(path, REPORT, now=0)
    write_metrics(path, FAILED_RUN, now=1)
    assert scalar(parse(path), "deltasync_last_run_exit_code") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["deltasync.prom"]


def test_write_error_becomes_usage_error_without_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.prom"

    def refuse(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", refuse)
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(UsageError, match=r"m\.prom: No space left"):
        write_metrics(path, REPORT, now=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("folder", "is a folder"),
        ("missing/m.prom", "folder .*missing does not exist"),
        ("afile/m.prom", "afile is not a folder"),
    ],
)
def test_bad_paths_name_the_path(tmp_path: Path, name: str, problem: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    path = tmp_path / name
    with pytest.raises(UsageError, match=problem) as err:
        check_metrics_path(path)
    assert str(path) in str(err.value)
    with pytest.raises(UsageError, match=problem):
        write_metrics(path, REPORT, now=0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="not writable"):
        check_metrics_path(locked / "m.prom")
