"""Integrated Gradients cost, measured side by side in one run.

    python bench/attribution_speed.py [--zoo DIR] [--episodes 16] [--steps 8]

1. Our batched IG vs captum's IntegratedGradients on the same model, inputs, steps and rule
   (goal: ours >= 2x faster).
2. Completeness error of IG for m = 4 ... 64.
3. One IAPO GRPO step vs one outcome GRPO step with the same rollouts budget, m = 8, student
   and teacher IG included (goal: ratio <= 1.5), with where the time goes.

Without --zoo, untrained tiny models of the default student / teacher sizes are used (timing
does not depend on the weights).
"""

from __future__ import annotations

import argparse
import copy
import random
import tempfile
import time
from pathlib import Path

import torch
from captum.attr import IntegratedGradients

from iapo.attribution import attribute, embed, sequence_logprob
from iapo.models.build import ModelSpec, build_model, load, make_processor
from iapo.models.corpus import world_texts
from iapo.models.tokenizer import train_tokenizer
from iapo.rewards import format_reward, outcome
from iapo.rewards.attribution import AttributionReward, AttributionRewardConfig
from iapo.rl.grpo import GRPOConfig, WeightedReward, grpo_step
from iapo.rollout.episode import collate, encode
from iapo.rollout.loop import RolloutConfig
from iapo.train.sft import sft_segments
from iapo.world import World, WorldConfig, write_world


def models(zoo: Path | None, train):
    if zoo is not None:
        return load(zoo / "student"), load(zoo / "teacher")
    tok = train_tokenizer(world_texts(train), 600)
    out = []
    for spec in (ModelSpec(layers=2), ModelSpec(layers=4, intermediate=512)):
        proc = make_processor(tok, spec)
        out.append((build_model(spec, proc), proc))
    return out


def best_of(fn, n: int = 3) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path)
    ap.add_argument("--world", type=Path)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(2)
    wdir = a.world
    if wdir is None:
        wdir = Path(tempfile.mkdtemp()) / "w"
        write_world(WorldConfig(train=400, val=0, test_per_family=0, ood=0), wdir, workers=1)
    train = World(wdir).load("train")
    (student, sproc), (teacher, tproc) = models(a.zoo, train)
    student.eval()
    rng = random.Random(0)
    segs = [sft_segments(ex, rng, tools=True) for ex in train[: a.episodes]]
    encs = [encode(s, sproc) for s in segs]
    batch = collate(
        encs, sproc.pad_token_id, [e.assistant_mask(only=sum(k == "assistant" for k in e.kinds) - 1) for e in encs]
    )
    eb = embed(student, batch, batch.completion_mask)
    ig = IntegratedGradients(lambda e: sequence_logprob(student, eb, e))
    t_ours = best_of(lambda: attribute(student, eb, n_steps=a.steps, chunk=a.steps * a.episodes))
    t_captum = best_of(
        lambda: ig.attribute(
            eb.inputs_embeds, baselines=torch.zeros_like(eb.inputs_embeds), n_steps=a.steps, method="riemann_trapezoid"
        )
    )
    t_captum_b = best_of(
        lambda: ig.attribute(
            eb.inputs_embeds,
            baselines=torch.zeros_like(eb.inputs_embeds),
            n_steps=a.steps,
            method="riemann_trapezoid",
            internal_batch_size=a.episodes,
        )
    )
    print(f"IG, {a.episodes} episodes x m={a.steps}, {batch.input_ids.shape[1]} tokens:")
    print(f"  ours (batched, one forward+backward)   {t_ours * 1e3:8.1f} ms")
    print(f"  captum (default)                       {t_captum * 1e3:8.1f} ms   ratio {t_captum / t_ours:.2f}x")
    print(f"  captum (internal_batch_size=episodes)  {t_captum_b * 1e3:8.1f} ms   ratio {t_captum_b / t_ours:.2f}x")
    print(f"  goal ours >= 2x faster than captum default: {'met' if t_captum / t_ours >= 2 else 'MISSED'}")
    print("\ncompleteness |sum IG - (f(x) - f(x'))| / |f(x) - f(x')|, median over episodes:")
    pad = student.get_input_embeddings().weight[sproc.pad_token_id].detach().view(1, 1, -1)
    for name, base in (("pad", pad.expand_as(eb.inputs_embeds)), ("zero", None)):
        errs = [attribute(student, eb, base, m, chunk=8 * a.episodes).relative_error for m in (4, 8, 16, 32, 64)]
        print(
            f"  baseline {name:4s}: "
            + "  ".join(f"m={m}: {e.median().item():.3f}" for m, e in zip((4, 8, 16, 32, 64), errs, strict=True))
        )

    # GRPO step: outcome vs IAPO, same seed, same rollouts budget
    cfg = GRPOConfig(
        questions_per_step=4, group_size=8, beta=0.02, rollout=RolloutConfig(temperature=1.0, batch_size=32)
    )
    base = [WeightedReward("outcome", outcome), WeightedReward("format", format_reward, 0.2)]
    rows = {}
    for name in ("outcome", "iapo"):
        torch.manual_seed(0)
        model = copy.deepcopy(student)
        rewards = list(base)
        if name == "iapo":
            r = AttributionReward(AttributionRewardConfig(n_steps=a.steps), (teacher, tproc))  # pad baseline
            r.bind_policy(model, sproc)
            rewards.append(WeightedReward("attribution", r))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for k in range(3):
            row, _ = grpo_step(model, copy.deepcopy(student), sproc, opt, train[4 * k : 4 * k + 4], rewards, cfg)
            times.append(row)
        rows[name] = {
            key: sum(t[key] for t in times) / len(times)
            for key in ("time/rollout_s", "time/reward_s", "time/update_s", "time/step_s")
        }
    print("\nGRPO step (Q=4 x G=8, mean of 3 steps):")
    for name, r in rows.items():
        print(
            f"  {name:8s} rollout {r['time/rollout_s']:6.2f}s  reward {r['time/reward_s']:6.2f}s  update {r['time/update_s']:6.2f}s  total {r['time/step_s']:6.2f}s"
        )
    ratio = rows["iapo"]["time/step_s"] / rows["outcome"]["time/step_s"]
    print(
        f"  IAPO / outcome step time at m={a.steps}: {ratio:.2f}  (goal <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
