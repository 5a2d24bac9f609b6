"""Where do student and teachers put their attribution on the student's own rollouts?

Rolls the student out greedily on val questions (tools on, as in GRPO), then computes each
model's per-component Integrated-Gradients shares of the final turn (the IAPO target, each
teacher with its own tokenizer) and the L1 divergence to the student's, split by whether the
student answered correctly. Also each teacher on its own rollouts.

python research/iapo_targets/teacher_shares.py STUDENT_DIR WORLD_DIR TEACHER_DIR [TEACHER_DIR ...] [--n 48]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from iapo.attribution import AttributionSettings, attribute_episodes, mean_shares
from iapo.models.build import load
from iapo.rollout.episode import COMPONENTS
from iapo.rollout.loop import RolloutConfig, rollout
from iapo.world import World


def shares(model, proc, episodes, keep_ids: bool, n_steps: int) -> list[torch.Tensor | None]:
    ig = AttributionSettings(estimator="ig", n_steps=n_steps)
    turns = attribute_episodes(model, proc, [e.segments for e in episodes], "final", ig, keep_ids=keep_ids)
    return [mean_shares(t) for t in turns]


def fmt(p: torch.Tensor) -> str:
    return " ".join(f"{c}={float(v):.2f}" for c, v in zip(COMPONENTS, p, strict=True) if float(v) > 0.005)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("student", type=Path)
    ap.add_argument("world", type=Path)
    ap.add_argument("teachers", type=Path, nargs="+")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--n-steps", type=int, default=16)
    a = ap.parse_args()
    torch.manual_seed(0)
    val = World(a.world).load("val")[: a.n]
    cfg = RolloutConfig(greedy=True, max_calls=2, max_new_tokens=40)
    student = load(a.student)
    eps = rollout(*student, val, cfg)
    right = torch.tensor([e.correct > 0 for e in eps])
    p_s = shares(*student, eps, True, a.n_steps)
    print(f"student: {int(right.sum())}/{len(eps)} correct")
    ok = [i for i, p in enumerate(p_s) if p is not None]
    print(f"  student shares          {fmt(torch.stack([p_s[i] for i in ok]).mean(0))}")
    for tdir in a.teachers:
        teacher = load(tdir)
        p_t = shares(*teacher, eps, False, a.n_steps)
        both = [i for i in ok if p_t[i] is not None]
        d = torch.tensor([float((p_s[i] - p_t[i]).abs().sum()) for i in both])
        r = right[both]
        print(f"{tdir.name}: on the student's rollouts")
        print(f"  teacher shares          {fmt(torch.stack([p_t[i] for i in both]).mean(0))}")
        print(f"  L1 to the student: all {d.mean():.3f}, student right {d[r].mean():.3f}, wrong {d[~r].mean():.3f}")
        own = rollout(*teacher, val, cfg)
        p_o = [p for p in shares(*teacher, own, True, a.n_steps) if p is not None]
        acc = sum(e.correct > 0 for e in own)
        print(f"  on its own rollouts ({acc}/{len(own)} correct) {fmt(torch.stack(p_o).mean(0))}")


if __name__ == "__main__":
    main()
