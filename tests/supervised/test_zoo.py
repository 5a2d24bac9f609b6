from __future__ import annotations

import pytest
import torch

from iapo.supervised import zoo
from iapo.world import World


class _Stop(Exception):
    pass


def test_zoo_threads_setting_reaches_torch(monkeypatch, small_world: World, tmp_path):
    """`threads` in a zoo config was once read and never applied: two zoos built side by side
    then each ran 2 threads on a 2-core machine, 2.5x slower per step than with 1 each."""
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(zoo, "train_tokenizers", stop)  # stop before any training
    with pytest.raises(_Stop):
        zoo.build_zoo(small_world, zoo.ZooConfig(threads=1), tmp_path)
    assert calls == [1]
    calls.clear()
    with pytest.raises(_Stop):
        zoo.build_zoo(small_world, zoo.ZooConfig(), tmp_path)
    assert calls == []  # unset: torch's own choice


def test_models_yaml_is_the_default_zoo():
    """The tiny zoo is described once: configs/models.yaml writes out ZooConfig's defaults."""
    from pathlib import Path

    from iapo.config import load_yaml

    path = Path(__file__).parents[2] / "configs" / "models.yaml"
    assert load_yaml(path, zoo.ZooConfig) == zoo.ZooConfig()
