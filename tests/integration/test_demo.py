"""``deltasync demo``: exit 0 at every size (its deletion threshold lets its own scripted changes
through) and no folder left behind in the temp directory, also when it fails or is interrupted."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from deltasync.cli import run_cli
from deltasync.service import demo


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp directory the demo sees (``tempfile.gettempdir()``), empty at the start."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("deltasync-demo-*"))


@pytest.mark.parametrize("users", [10, 20, 200])
def test_demo_exits_0_and_removes_its_temporary_folder(
    users: int, temp_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["demo"] if users == 200 else ["demo", "--users", str(users)]
    code = run_cli(argv)
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "held" not in out.split("2. changes in Entra")[1]
    assert "deactivate" in out  # the disabled and the deleted user were deprovisioned
    assert leftovers(temp_dir) == []
    assert "temporary folder is removed" in out


def test_small_demo_says_which_threshold_it_needs(
    temp_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["demo", "--users", "20"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "2 scripted deactivations of 17 linked users need max_deactivation_percent 12" in text


def test_demo_with_a_folder_keeps_it(
    tmp_path: Path, temp_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["demo", "--users", "12", "--dir", str(tmp_path / "kept")]) == 0
    assert (tmp_path / "kept" / "state" / "deltasync.db").exists()
    assert "max_deactivation_percent" in (tmp_path / "kept" / "entra_sync.yaml").read_text()
    assert leftovers(temp_dir) == []


@pytest.mark.parametrize(("error", "code"), [(RuntimeError("boom"), 1), (KeyboardInterrupt(), 130)])
def test_a_failed_or_interrupted_demo_removes_its_folder_too(
    error: BaseException,
    code: int,
    temp_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(demo, "apply_demo_changes", fail)
    assert run_cli(["demo", "--users", "10"]) == code
    capsys.readouterr()
    assert leftovers(temp_dir) == []


def test_the_demo_history_spells_values_as_json(
    temp_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["demo", "--users", "10"]) == 0
    history = capsys.readouterr().out.split("final state")[1]
    assert "is_active → true" in history
    assert re.search(r"\b(True|False|None)\b", history) is None, history
