"""Every YAML under configs/ (top level) parses into the typed config it is written for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from iapo.config import load_yaml
from iapo.experiment import ExperimentConfig, TrainConfig
from iapo.train.zoo import ZooConfig
from iapo.world import WorldConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def kind(data: dict) -> type:
    if "methods" in data:
        return ExperimentConfig
    if "method" in data or "grpo" in data:
        return TrainConfig
    if "roles" in data:
        return ZooConfig
    return WorldConfig


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_parses(path):
    model = kind(yaml.safe_load(path.read_text()))
    cfg = load_yaml(path, model)
    assert isinstance(cfg, model)


@pytest.mark.parametrize(("base", "grid"), [("six_family", "grid"), ("quickstart", "quickstart_grid")])
def test_grid_reuses_a_finished_base_run(base, grid):
    """A grid config says pointing --out at a finished run of its base reuses the world, zoo and
    runs: that holds only while the settings that name those directories agree."""
    root = Path(__file__).resolve().parents[1] / "configs"
    six = load_yaml(root / f"{base}.yaml", ExperimentConfig)
    grid = load_yaml(root / f"{grid}.yaml", ExperimentConfig)
    assert grid.world == six.world and grid.grpo == six.grpo and grid.eval == six.eval
    assert grid.zoo.pretrain == six.zoo.pretrain
    assert {r: grid.zoo.roles[r] for r in six.zoo.roles} == six.zoo.roles
    assert {m: grid.methods[m] for m in six.methods} == six.methods
