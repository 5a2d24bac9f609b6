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
