"""A zoo directory of tiny models for `iapo train` runs in subprocesses."""

from __future__ import annotations

import pytest

from iapo.models.build import save

# the metrics one-process, multi-process and TRL runs of the same config must agree on
KEYS = ["reward/total", "reward/attribution", "rollout/accuracy", "losses/policy", "losses/kl", "optim/grad_norm",
        "attr/divergence"]  # fmt: skip


@pytest.fixture()
def tiny_zoo(tiny_models, tmp_path):
    """tmp_path/zoo with `student` and `teacher` (the other-tokenizer tiny teacher)."""
    zoo = tmp_path / "zoo"
    save(*tiny_models["student"], zoo / "student")
    save(*tiny_models["teacher_alt"], zoo / "teacher")
    return zoo
