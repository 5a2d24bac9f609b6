"""`accelerate launch --num_processes 2` (gloo, CPU) of IAPO on the world with tiny models: it
completes its steps, and its per-step metrics match a 1-process run with the same global batch
and seed (seeded rollout shards make the episodes independent of the process count)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.rl.conftest import KEYS

CONFIG = {
    "method": {"teacher": "teacher", "attribution": {"n_steps": 2, "lam": 0.5}},
    "grpo": {
        "steps": 2, "questions_per_step": 2, "group_size": 2, "rollout_shards": 2, "lr": 1e-3, "micro_batch": 2,
        "rollout": {"max_calls": 1, "max_new_tokens": 6, "batch_size": 8},
    },
    "eval": {"val_examples": 2, "eval_every": 0, "test_limit": 2, "attribution_episodes": 0},
    "model": {"device": "cpu"},
}  # fmt: skip


def rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_process_iapo_matches_one_process(tiny_zoo, small_world, tmp_path):
    pytest.importorskip("accelerate")
    zoo = tiny_zoo
    cfg = tmp_path / "iapo_tiny.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    args = ["-m", "iapo.cli", "train", "--config", str(cfg), "--world", str(small_world.root), "--zoo", str(zoo)]
    env_threads = {"OMP_NUM_THREADS": "1"}
    import os

    env = {**os.environ, **env_threads}
    one = subprocess.run(
        [sys.executable, *args, "--out", str(tmp_path / "one")], capture_output=True, text=True, env=env
    )
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu"]  # fmt: skip
    two = subprocess.run([*launch, *args, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = rows(tmp_path / "one"), rows(tmp_path / "two")
    assert [r["step"] for r in r1] == [r["step"] for r in r2] == [1, 2]
    for a, b in zip(r1, r2, strict=True):
        for k in KEYS:
            assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-4), (a["step"], k, a[k], b[k])
    assert (tmp_path / "two" / "result.json").exists() and (tmp_path / "two" / "policy" / "config.json").exists()
