"""Start-up cost: each command imports only what it uses.

Every case runs the command in a fresh interpreter and looks at ``sys.modules`` afterwards, so
an eager import added anywhere on the way (``deltasync.cli``, ``deltasync.service``, the config)
fails here. ``tests/benchmarks/bench_startup.py`` times the same commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deltasync import service
from deltasync.sandbox.server import Sandbox

# what a command that talks to no one needs none of
NETWORK = {"msgraph", "msgraph_core", "azure", "kiota_abstractions", "kiota_http", "httpx"}
STORAGE = {"sqlalchemy", "alembic", "psycopg", "openpyxl"}
CLIENTS = {"deltasync.graph", "deltasync.eliza", "deltasync.sandbox", "deltasync.engine"}

PROBE = """
import json, sys
from deltasync.cli import run_cli
code = run_cli(json.loads(sys.argv[1]))
loaded = sorted({name for name in sys.modules if not name.startswith("_")})
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump({"code": code, "modules": loaded}, f)
"""

CONFIG = """\
entra:
  tenant_id: tenant
  client_id: client
  client_secret: ${DELTASYNC_TEST_UNSET_SECRET}
eliza:
  base_url: https://eliza.example
  api_token: ${DELTASYNC_TEST_UNSET_TOKEN}
state:
  url: sqlite:///state/deltasync.db
"""


def loaded_after(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, set[str]]:
    """Run ``deltasync ARGS`` in a new interpreter; its exit code and the modules it loaded."""
    result = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args)), str(result)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )
    assert result.exists(), done.stderr
    data = json.loads(result.read_text(encoding="utf-8"))
    return data["code"], set(data["modules"])


def present(modules: set[str], roots: set[str]) -> list[str]:
    """The packages of ``roots`` (or any of their submodules) that were imported."""
    return sorted(r for r in roots if any(m == r or m.startswith(r + ".") for m in modules))


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "entra_sync.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "args",
    [("--version",), ("--help",), ("sync", "--help"), ("state", "--help"), ("demo", "--help")],
)
def test_version_and_help_import_no_database_network_or_yaml(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    code, modules = loaded_after(tmp_path, *args)
    assert code == 0
    assert present(modules, NETWORK | STORAGE | CLIENTS | {"yaml", "deltasync.state"}) == []


@pytest.mark.parametrize(
    "args", [("state",), ("state", "--json"), ("state", "user", "niemand@firma.ch")]
)
def test_state_commands_import_no_graph_eliza_or_engine(
    tmp_path: Path, config: str, args: tuple[str, ...]
) -> None:
    code, modules = loaded_after(tmp_path, *args, "-c", config)
    assert code == (1 if "user" in args else 0)  # nobody is in the new, empty mirror
    assert "deltasync.state" in modules  # the probe really reached the state database
    assert present(modules, NETWORK | CLIENTS | {"openpyxl"}) == []


def test_state_on_a_database_at_the_head_revision_imports_no_alembic(
    tmp_path: Path, config: str
) -> None:
    code, modules = loaded_after(tmp_path, "db", "upgrade", "-c", config)
    assert code == 0 and present(modules, {"alembic"}) == ["alembic"]  # the probe sees it
    for args in (("state",), ("state", "runs"), ("state", "user", "niemand@firma.ch")):
        code, modules = loaded_after(tmp_path, *args, "-c", config)
        assert code == (1 if "user" in args else 0), args
        assert "sqlalchemy" in modules, args
        assert present(modules, {"alembic"}) == [], args


@pytest.mark.sandbox(users=12, seed=5, page_size=50)
def test_an_hourly_sync_imports_no_export_writer_it_was_not_asked_for(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """openpyxl and prometheus_client cost ~0.1 s each; the cron run asks for neither (nor
    for pydantic, which typer 0.29 imports on every command: 0.2 s)."""
    cfg = str(sandbox.config_path)
    code, modules = loaded_after(tmp_path, "sync", "-q", "-c", cfg, env=sandbox.env)
    assert code == 0 and "deltasync.engine" in modules  # the probe really ran a sync
    assert present(modules, {"openpyxl", "prometheus_client", "pydantic", "aiohttp"}) == []
    metrics = str(tmp_path / "deltasync.prom")
    code, modules = loaded_after(
        tmp_path, "sync", "-q", "-c", cfg, "--metrics-file", metrics, env=sandbox.env
    )
    assert code == 0 and present(modules, {"openpyxl", "prometheus_client"}) == [
        "prometheus_client"
    ]


def test_every_lazy_service_name_resolves() -> None:
    for name in service.__all__:
        assert getattr(service, name) is not None, name
    with pytest.raises(AttributeError):
        _ = service.no_such_command
