"""1-process vs 2-process (`accelerate launch`, gloo, CPU) IAPO training, measured in one run:
throughput (episodes/s over the GRPO steps) and the largest per-step metric difference.

python bench/scale_out.py [--engine own|trl] [--zoo DIR --world DIR] [--steps 4] [--questions 4] [--group 4]

--engine trl runs TRL's GRPOTrainer (iapo.rl.trl_engine) instead of the compact loop.

DIR: a zoo with `student` and `teacher` (iapo sft / iapo quickstart) and its world; without
them, a small world and untrained tiny models are built (speed does not depend on training).
On a 2-core machine the two processes share the cores: the ratio shows overhead, not speed-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _tiny import zoo_and_world
from iapo.store import read_metrics

# both engines log these names (iapo.rl.trl_engine.our_row maps TRL's own)
KEYS = ["reward/total", "reward/attribution", "rollout/accuracy", "losses/policy", "losses/kl", "optim/grad_norm"]
STEP_TIME = "time/step_s"


def run(cmd: list[str], out: Path, env: dict, engine: str) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    r = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(r.stderr[-3000:])
    return time.perf_counter() - t0, read_metrics(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["own", "trl"], default="own")
    ap.add_argument("--zoo", type=Path)
    ap.add_argument("--world", type=Path)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    a = ap.parse_args()
    cfg = {
        "engine": a.engine,
        "method": {"teacher": "teacher", "attribution": {"n_steps": 4}},
        "grpo": {"steps": a.steps, "questions_per_step": a.questions, "group_size": a.group, "rollout_shards": 2,
                 "lr": 2e-4, "rollout": {"max_calls": 3, "max_new_tokens": 48}},
        "eval": {"val_examples": 4, "eval_every": 0, "test_limit": 1, "attribution_episodes": 0},
        "model": {"device": "cpu"},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        a.zoo, a.world = zoo_and_world(a.zoo, a.world, tmp)
        (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
        args = [
            "-m",
            "iapo.cli",
            "train",
            "--config",
            str(tmp / "c.yaml"),
            "--world",
            str(a.world),
            "--zoo",
            str(a.zoo),
        ]
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
                  "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu"]  # fmt: skip
        results = {}
        for name, cmd, threads in (("1 process", [sys.executable, *args], "2"), ("2 processes", [*launch, *args], "1")):
            env = {**os.environ, "OMP_NUM_THREADS": threads, "TRL_EXPERIMENTAL_SILENCE": "1"}
            wall, rows = run(cmd, tmp / name.replace(" ", "_"), env, a.engine)
            step_s = sum(r[STEP_TIME] for r in rows)
            results[name] = (wall, step_s, rows)
            eps = a.steps * a.questions * a.group
            print(f"{name:>12}: {eps / step_s:6.2f} episodes/s in GRPO steps ({step_s:.1f} s), wall {wall:.1f} s")
        r1, r2 = results["1 process"][2], results["2 processes"][2]
        diff = max(abs(x[k] - y[k]) for x, y in zip(r1, r2, strict=True) for k in KEYS)
        print(f"engine {a.engine}: throughput ratio 2p/1p: {results['1 process'][1] / results['2 processes'][1]:.2f}x; "
              f"max |metric difference| over {len(r1)} steps: {diff:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
