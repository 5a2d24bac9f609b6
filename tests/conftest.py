"""Shared fixtures: a small world generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from iapo.world import World, WorldConfig, write_world

SMALL_WORLD = WorldConfig(train=300, val=60, test_per_family=40, ood=40)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("world") / "w"
    write_world(SMALL_WORLD, root, workers=1)
    return World(root)


@pytest.fixture()
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
