"""Every YAML under configs/ (top level) and research/ parses into the typed config it is written for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from iapo.config import load_yaml
from iapo.experiment import ExperimentConfig
from iapo.run import TrainConfig
from iapo.train.finetune import FinetuneConfig
from iapo.train.zoo import ZooConfig
from iapo.world import WorldConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    *sorted((ROOT / "configs").glob("*.yaml")),
    *sorted((ROOT / "configs" / "qwen2_5_vl_3b").glob("*.yaml")),
    *sorted((ROOT / "research").rglob("*.yaml")),
]


def kind(data: dict) -> type:
    if "methods" in data:
        return ExperimentConfig
    if "method" in data or "grpo" in data:
        return TrainConfig
    if "roles" in data:
        return ZooConfig
    if "student" in data and "sft" in data:
        return FinetuneConfig
    return WorldConfig


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_parses(path):
    model = kind(yaml.safe_load(path.read_text()))
    cfg = load_yaml(path, model)
    assert isinstance(cfg, model)


@pytest.mark.parametrize(
    ("base", "grid"),
    [("research/six_family/config.yaml", "research/six_family/grid.yaml"),
     ("configs/quickstart.yaml", "research/quickstart_grid/config.yaml")],
)  # fmt: skip
def test_grid_reuses_a_finished_base_run(base, grid):
    """A grid config says pointing --out at a finished run of its base reuses the world, zoo and
    runs: that holds only while the settings that name those directories agree."""
    six = load_yaml(ROOT / base, ExperimentConfig)
    grid = load_yaml(ROOT / grid, ExperimentConfig)
    assert grid.world == six.world and grid.grpo == six.grpo and grid.eval == six.eval
    assert grid.zoo.pretrain == six.zoo.pretrain
    assert {r: grid.zoo.roles[r] for r in six.zoo.roles} == six.zoo.roles
    assert {m: grid.methods[m] for m in six.methods} == six.methods
