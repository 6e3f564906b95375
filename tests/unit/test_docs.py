"""The engineer's and the user's documents cite only files that are in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/architecture.md", "README.md")
# a repository path: rooted in one of its folders, or a source/doc file name
CITED = re.compile(
    r"(?<![\w/.:@-])((?:deltasync|tests|docs|migrations|\.ci)/[\w./-]*[\w/]"
    r"|(?:[\w-]+/)*[\w-]+\.(?:py|md|toml|ini|cfg|example))(?![\w/(-])"
)
BASES = ("", "deltasync/", "tests/", "tests/integration/", "tests/unit/", "tests/benchmarks/")


def repository_files() -> set[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not listed:
        pytest.skip("not a git checkout")
    return set(listed)


def missing_citations(text: str, files: set[str]) -> list[str]:
    """The paths ``text`` names that are neither a file nor a folder of ``files``."""
    known = files | {str(p) for f in files for p in Path(f).parents}
    names = {Path(f).name for f in files}
    missing = []
    for match in CITED.finditer(text):
        path = match.group(1).rstrip("/")
        if any(base + path in known for base in BASES):
            continue
        if "/" not in path and path in names:  # a module named in its package's row
            continue
        missing.append(f"line {text[: match.start()].count(chr(10)) + 1}: {path}")
    return missing


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_document_cites_is_in_the_repository(doc: str) -> None:
    assert missing_citations((ROOT / doc).read_text(encoding="utf-8"), repository_files()) == []


def test_a_path_that_is_not_there_is_found() -> None:
    files = {"deltasync/cli/app.py", "tests/unit/test_docs.py"}
    text = "see `cli/app.py`, app.py and deltasync/cli/, not DESIGN.md or tests/unit/gone.py"
    assert missing_citations(text, files) == ["line 1: DESIGN.md", "line 1: tests/unit/gone.py"]
