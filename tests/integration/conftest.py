"""Sandbox fixtures shared by the integration tests.

A module says which sandbox its tests get with a marker, e.g.
``pytestmark = pytest.mark.sandbox(users=40, seed=3, page_size=15)``; a test may override it
with its own ``@pytest.mark.sandbox(...)``. ``sandbox`` is that sandbox, ``config`` deltasync's
config loaded from it, ``make_sandbox`` starts further ones and ``make_graph_world`` just
Graph and the token endpoint with the caller's app identity. Everything started here is
stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import GraphWorld, GraphWorldFactory, SandboxFactory, start_graph_world

from deltasync.config import Config, load_config
from deltasync.sandbox.server import Sandbox, start_sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sandbox(users=200, seed=7, page_size=100): the size and options of the `sandbox` "
        "fixture (start_sandbox's keywords)",
    )


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[SandboxFactory]:
    """``make_sandbox(users=…, seed=…, page_size=…, workdir=…)``; the workdir is tmp_path."""
    started: list[Sandbox] = []

    def make(*, workdir: Path | None = None, **options: Any) -> Sandbox:
        running = start_sandbox(workdir or tmp_path, **options)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, make_sandbox: SandboxFactory) -> Sandbox:
    """The sandbox the closest ``sandbox`` marker asks for."""
    marker = request.node.get_closest_marker("sandbox")
    if marker is None:
        pytest.fail("the sandbox fixture needs a pytest.mark.sandbox(...) with its size")
    return make_sandbox(**marker.kwargs)


@pytest.fixture
def config(sandbox: Sandbox) -> Config:
    """deltasync's config for ``sandbox``, secrets taken from the sandbox's environment."""
    return load_config(sandbox.config_path, env=sandbox.env)


@pytest.fixture
def make_graph_world(tmp_path: Path) -> Iterator[GraphWorldFactory]:
    """``make_graph_world(tenant_id, client_id, secret, users=…, page_size=…)``."""
    started: list[GraphWorld] = []

    def make(tenant_id: str, client_id: str, secret: str, **options: Any) -> GraphWorld:
        world = start_graph_world(tmp_path, tenant_id, client_id, secret, **options)
        started.append(world)
        return world

    yield make
    for world in started:
        world.stop()
