"""IAPO and outcome GRPO step time on CPU vs GPU (and bf16 on GPU), tiny models, in one run;
also checks that every stage runs on the accelerator (policy, reference, teacher, IG).

python bench/device_step.py [--steps 3] [--questions 4 --group 8 --max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import tiny_setup
from iapo.models.build import load
from iapo.rewards.alignment import AttributionRewardConfig
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rl.grpo import GRPOSettings, train_grpo
from iapo.rollout.loop import RolloutConfig
from iapo.store import ZooDir
from iapo.world import World


def run(world: Path, zoo: Path, device: str, dtype: torch.dtype, method: MethodConfig, a, out: Path) -> dict:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # the state is a per-process singleton
    acc = Accelerator(cpu=device == "cpu")
    model, proc = load(ZooDir(zoo).role("student"), dtype=dtype)
    ref = copy.deepcopy(model).to(acc.device)
    rewards = make_rewards(method, zoo, None, 0, dtype)
    cfg = GRPOSettings(steps=a.steps, questions_per_step=a.questions, group_size=a.group, lr=2e-4, micro_batch=32,
                     rollout=RolloutConfig(temperature=1.0, max_calls=3, max_new_tokens=a.max_new_tokens))  # fmt: skip
    rows: list[dict] = []
    t0 = time.perf_counter()
    train_grpo(model, ref, proc, World(world).load("train"), rewards, cfg, out, lambda s, n, r: rows.append(r), acc=acc)
    wall = time.perf_counter() - t0
    devices = {str(p.device.type) for p in model.parameters()}
    for r in rewards:
        if getattr(r.fn, "teacher", None) is not None:
            devices |= {str(p.device.type) for p in r.fn.teacher[0].parameters()}
    keys = ("time/step_s", "time/rollout_s", "time/reward_s", "time/update_s")
    mean = {k: sum(r[k] for r in rows[1:]) / max(1, len(rows) - 1) for k in keys}  # step 1 warms up
    return {"wall": wall, "devices": devices, **mean, "reward": rows[-1]["reward/total"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--questions", type=int, default=4, help="Q questions per step")
    ap.add_argument("--group", type=int, default=8, help="G rollouts per question")
    ap.add_argument("--max-new-tokens", type=int, default=48, help="tokens per model turn")
    a = ap.parse_args()
    if a.steps < 2:
        ap.error("--steps must be >= 2: the first step warms up and is not timed")
    methods = {"outcome": MethodConfig(), "iapo": MethodConfig(attribution=AttributionRewardConfig(n_steps=8))}
    settings = [("cpu", torch.float32)]
    if torch.cuda.is_available():
        settings += [("cuda", torch.float32), ("cuda", torch.bfloat16)]
        print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
    print(f"CPU threads: {torch.get_num_threads()}; Q={a.questions} x G={a.group}, m=8; mean over steps 2..{a.steps}")
    with tempfile.TemporaryDirectory() as tmp:
        world, zoo = tiny_setup(Path(tmp))
        res = {}
        for dev, dt in settings:
            for name, m in methods.items():
                r = run(world, zoo, dev, dt, m, a, Path(tmp) / f"{dev}_{dt}_{name}")
                res[(dev, dt, name)] = r
                print(f"{dev:>4} {dt!s:>14} {name:>7}: step {r['time/step_s']:.2f}s = rollout {r['time/rollout_s']:.2f}"
                      f" + reward {r['time/reward_s']:.2f} + update {r['time/update_s']:.2f}; on {sorted(r['devices'])}")  # fmt: skip
        for dev, dt in settings:
            o, i = res[(dev, dt, "outcome")], res[(dev, dt, "iapo")]
            print(f"{dev} {dt}: IAPO/outcome step-time ratio {i['time/step_s'] / o['time/step_s']:.2f}")
        if torch.cuda.is_available():
            c, g = res[("cpu", torch.float32, "iapo")], res[("cuda", torch.float32, "iapo")]
            print(f"IAPO step, cuda fp32 vs this machine's CPU: {c['time/step_s'] / g['time/step_s']:.2f}x")


if __name__ == "__main__":
    main()
