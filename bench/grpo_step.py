"""One outcome GRPO step vs one IAPO step with the default IAPO config, side by side in one run,
split into rollout / reward / update.

    python bench/grpo_step.py                              # untrained models of the default sizes
    python bench/grpo_step.py --zoo DIR --world DIR        # e.g. a quickstart's trained models
    python bench/grpo_step.py --config configs/quickstart.yaml --zoo ... --world ...
    python bench/grpo_step.py --also ig grad_x_delta shapley   # other estimators, same run

The IAPO config is `MethodConfig(attribution=AttributionRewardConfig())` (the defaults, what
configs/iapo.yaml sets) unless --config names an experiment whose `iapo`-like method to use.
teacher_own targets are computed before the timed steps, as `train_grpo` does before RL. Both
methods start from the same weights and draw the same questions; the steps alternate (outcome,
IAPO, outcome, ...) so that a slow spell of the machine hits both. Last line:
`IAPO / outcome step time: R`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path

import torch

from _tiny import zoo_and_world
from iapo.attribution import describe
from iapo.models.build import load
from iapo.rewards.alignment import AttributionRewardConfig
from iapo.rewards.contract import prepare
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rl.grpo import GRPOSettings, grpo_step, policy_optimizer
from iapo.store import ZooDir
from iapo.world import World

KEYS = ("time/rollout_s", "time/reward_s", "time/update_s", "time/step_s")


def side_by_side(
    zoo: Path, world: World, cfg: GRPOSettings, methods: dict[str, MethodConfig], n: int, device: str = "cpu"
) -> dict[str, list[dict]]:
    """n GRPO steps of each method from the same student on the same questions, interleaved
    step by step (so machine noise hits every method alike), after one untimed warm-up step."""
    student, proc = load(ZooDir(zoo).role("student"))
    student.to(device)
    train = world.load("train")
    q = cfg.questions_per_step
    batches = [train[q * k : q * k + q] for k in range(n + 1)]
    state = {}
    for name, m in methods.items():
        model = copy.deepcopy(student)
        rewards = make_rewards(m, zoo, None, 0, rollout_cfg=cfg.rollout)
        prepare(rewards, [ex for b in batches for ex in b])
        state[name] = (model, rewards, policy_optimizer(model, cfg), copy.deepcopy(student))
    rows: dict[str, list[dict]] = {name: [] for name in methods}
    for k, batch in enumerate(batches):
        for name, (model, rewards, opt, ref) in state.items():
            torch.manual_seed(k)
            row, _ = grpo_step(model, ref, proc, opt, batch, rewards, cfg, k)
            if k:
                rows[name].append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path)
    ap.add_argument("--world", type=Path)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--config", type=Path, help="an ExperimentConfig YAML: its GRPO settings and its method --method")
    ap.add_argument("--method", default="iapo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override IAPO attribution settings")
    ap.add_argument(
        "--also", nargs="*", default=[], metavar="ESTIMATOR", help="IAPO under these estimators too, in the same run"
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    zoo, world = zoo_and_world(a.zoo, a.world)
    cfg, iapo = GRPOSettings(questions_per_step=4, group_size=8), MethodConfig(attribution=AttributionRewardConfig())
    if a.config:
        from iapo.config import load_yaml
        from iapo.experiment import ExperimentConfig

        ec = load_yaml(a.config, ExperimentConfig)
        cfg, iapo = ec.grpo, ec.methods[a.method]
    if a.set:
        upd = dict(kv.split("=", 1) for kv in a.set)
        iapo = iapo.model_copy(
            update={"attribution": AttributionRewardConfig(**{**iapo.attribution.model_dump(), **upd})}
        )
    q = cfg.questions_per_step
    methods = {"outcome": MethodConfig(), "iapo": iapo}
    for est in a.also:  # e.g. `--also ig shapley`: ig keeps the config's rule and m
        methods[f"iapo {est}"] = iapo.model_copy(
            update={"attribution": iapo.attribution.model_copy(update={"estimator": est})}
        )
    rows = side_by_side(zoo, World(world), cfg, methods, a.steps)
    a_cfg = iapo.attribution
    desc = "no attribution" if a_cfg is None else f"target {a_cfg.target}, {describe(a_cfg)}"
    print(f"Q={q} x G={cfg.group_size}, median of {a.steps} steps after one warm-up; IAPO: {desc}")
    med = {n: {k: statistics.median(r[k] for r in rs) for k in KEYS} for n, rs in rows.items()}
    for name, m in med.items():
        ratio = m["time/step_s"] / med["outcome"]["time/step_s"]
        print(
            f"  {name:18s} " + "  ".join(f"{k.split('/')[1][:-2]} {v:6.2f}s" for k, v in m.items()) + f"  x{ratio:.2f}"
        )
    print(f"IAPO / outcome step time: {med['iapo']['time/step_s'] / med['outcome']['time/step_s']:.2f}")


if __name__ == "__main__":
    main()
