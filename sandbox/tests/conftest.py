"""Fixtures for the sandbox tests: running servers and a Graph client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from meta_sandbox.testing import SandboxServer
from sandbox_support import Graph, small_world


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A shared server (tests that change faults or the clock must restore them)."""
    with SandboxServer(world=small_world(), time_scale=0.001) as sb:
        yield sb


@pytest.fixture
def fresh() -> Iterator[SandboxServer]:
    """A private server for tests that change state."""
    with SandboxServer(world=small_world(), time_scale=0.001) as sb:
        yield sb


@pytest.fixture
def graph(sandbox: SandboxServer) -> Graph:
    return Graph(sandbox)
