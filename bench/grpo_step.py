"""GRPO step time broken into rollout / reward / update, per method, measured in one run.

python bench/grpo_step.py --zoo DIR --world DIR [--steps 3]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from iapo.experiment import MethodConfig, make_rewards
from iapo.models.build import load
from iapo.rewards.attribution import AttributionRewardConfig
from iapo.rl.grpo import GRPOConfig, grpo_step
from iapo.world import World


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path, required=True)
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--config", type=Path, help="an ExperimentConfig YAML for the GRPO settings")
    a = ap.parse_args()
    torch.set_num_threads(2)
    cfg = GRPOConfig()
    if a.config:
        from iapo.config import load_yaml
        from iapo.experiment import ExperimentConfig

        cfg = load_yaml(a.config, ExperimentConfig).grpo
    student, proc = load(a.zoo / "student")
    train = World(a.world).load("train")
    methods = {"outcome": MethodConfig(), "iapo": MethodConfig(attribution=AttributionRewardConfig())}
    q = cfg.questions_per_step
    print(f"Q={q} x G={cfg.group_size}, mean over {a.steps} steps")
    for name, m in methods.items():
        model = copy.deepcopy(student)
        rewards = make_rewards(m, a.zoo, None, 0)
        for r in rewards:
            if hasattr(r.fn, "bind_policy"):
                r.fn.bind_policy(model, proc)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
        rows = [
            grpo_step(model, copy.deepcopy(student), proc, opt, train[q * k : q * k + q], rewards, cfg)[0]
            for k in range(a.steps)
        ]
        mean = {
            k: sum(r[k] for r in rows) / len(rows)
            for k in ("time/rollout_s", "time/reward_s", "time/update_s", "time/step_s")
        }
        print(f"  {name:8s} " + "  ".join(f"{k.split('/')[1][:-2]} {v:6.2f}s" for k, v in mean.items()))


if __name__ == "__main__":
    main()
