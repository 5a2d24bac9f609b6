"""What IAPO costs as models grow: Qwen2.5-VL models built from configs at three sizes, side by
side in one run (random weights: time does not depend on them).

    python bench/cost_curve.py [--sizes tiny 10m 100m] [--steps 2] [--trl] [--device cpu|cuda] [--dtype ...]

Per size: one outcome GRPO step and one IAPO step (the default IAPO config, or `--set KEY=VALUE`
overrides: `--set estimator=ig`) split into rollout / reward / update; our IG (m = 4) per episode; the
floor of any IG (m forward + input-gradient backward passes of the same batch, nothing else);
captum's IntegratedGradients on the same inputs, rule and m, with the natural forward function
(the model's full logits -> log-softmax -> the turn's log-probability); and, with --trl, one IAPO
step of the largest size through TRL's GRPOTrainer. With --device cuda, the peak memory of IG
per episode, with and without chunking, is printed too.

`100m` has Qwen2.5-VL's real vocabulary (151,665 rows; the tokenizer uses the first 600): with
it the LM head dominates a forward pass unless it runs on the scored tokens only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import tiny_setup
from grpo_step import side_by_side
from iapo.attribution import baseline_embeddings, describe, embed, integrated_gradients, sequence_logprob
from iapo.models.build import ModelSpec, build_model, load, n_params, save
from iapo.rewards.alignment import AttributionRewardConfig
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rl.grpo import GRPOSettings
from iapo.rollout.episode import collate, encode
from iapo.rollout.loop import RolloutConfig
from iapo.store import RunDir, ZooDir
from iapo.supervised.sft import sft_segments
from iapo.world import World

QWEN_VOCAB = 151_665
SIZES = {
    "tiny": (ModelSpec(layers=2), None),  # the quickstart student
    "10m": (ModelSpec(hidden=320, heads=5, layers=8, intermediate=960), None),
    "100m": (ModelSpec(hidden=512, heads=8, layers=8, intermediate=1536), QWEN_VOCAB),
    "1b": (ModelSpec(hidden=1536, heads=12, layers=16, intermediate=6144, vision_hidden=256), QWEN_VOCAB),
}


def timed(fn, sync) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def make_zoo(root: Path, name: str, proc_dir: Path) -> Path:
    """student = teacher = a model of size `name` (random weights) saved under root/name."""
    spec, vocab = SIZES[name]
    out = root / name
    if not (ZooDir(out).role("student") / "config.json").exists():
        _, proc = load(proc_dir)
        model = build_model(spec, proc, seed=0)
        if vocab:
            model.resize_token_embeddings(vocab)
        for role in ("student", "teacher"):
            save(model, proc, out / role)
    return out


def ig_batch(model, proc, segs):
    encs = [encode(s, proc) for s in segs]
    masks = [e.assistant_mask(only=sum(k == "assistant" for k in e.kinds) - 1) for e in encs]
    batch = collate(encs, proc.pad_token_id, masks).to(model.device)
    eb = embed(model, batch, batch.completion_mask)
    return batch, eb, baseline_embeddings(model, proc, batch, eb, "pad")


def floor(model, eb, base, m: int) -> None:
    """m forward + input-gradient backward passes of the batch: the least any IG can do."""
    x = eb.inputs_embeds
    path = (base + 0.5 * (x - base)).repeat(m, 1, 1).requires_grad_(True)
    f = sequence_logprob(model, eb, path)
    torch.autograd.grad(f.sum(), path)


def captum_ig(model, eb, base, m: int, rule: str) -> torch.Tensor:
    """captum with the forward function a user writes: full logits, log-softmax, gather."""
    from captum.attr import IntegratedGradients

    def f(e: torch.Tensor) -> torch.Tensor:
        reps = e.shape[0] // eb.inputs_embeds.shape[0]
        logits = model(
            inputs_embeds=e,
            attention_mask=eb.attention_mask.repeat(reps, 1),
            position_ids=eb.position_ids.repeat(1, reps, 1),
        ).logits[:, :-1]
        lp = torch.log_softmax(logits.float(), -1).gather(-1, eb.input_ids.repeat(reps, 1)[:, 1:, None])[..., 0]
        return (lp * eb.target.repeat(reps, 1)[:, 1:]).sum(-1)

    n = eb.inputs_embeds.shape[0]  # one interpolation step of the batch per pass: full logits are large
    return IntegratedGradients(f).attribute(
        eb.inputs_embeds, baselines=base, n_steps=m, method=rule, internal_batch_size=n
    )


def ig_timings(model, proc, segs, m: int, rule: str, sync) -> tuple[float, float, float, float]:
    """(ours, floor, captum) seconds for the batch, and max |ours - captum| / max |captum|."""
    _, eb, base = ig_batch(model, proc, segs)
    t_ig = min(
        timed(lambda: integrated_gradients(model, eb, base, m, rule, completeness=False), sync) for _ in range(2)
    )
    t_floor = min(timed(lambda: floor(model, eb, base, m), sync) for _ in range(2))
    t_cap = timed(lambda: captum_ig(model, eb, base, m, rule), sync)
    ours = integrated_gradients(model, eb, base, m, rule, completeness=False).attributions
    ref = captum_ig(model, eb, base, m, rule)
    return t_ig, t_floor, t_cap, float((ours - ref).abs().max() / ref.abs().max())


def steps_side_by_side(
    zoo: Path, world: World, cfg: GRPOSettings, n: int, attr: AttributionRewardConfig, also: list[str]
) -> dict[str, dict[str, float]]:
    methods = {"outcome": MethodConfig(), "iapo": MethodConfig(attribution=attr)}
    for est in also:
        methods[est] = MethodConfig(attribution=attr.model_copy(update={"estimator": est}))
    rows = side_by_side(zoo, world, cfg, methods, n, DEVICE)
    keys = ("time/rollout_s", "time/reward_s", "time/update_s", "time/step_s")
    return {n_: {k: statistics.median(r[k] for r in rs) for k in keys} for n_, rs in rows.items()}


def trl_step(zoo: Path, world: World, cfg: GRPOSettings, out: Path, attr: AttributionRewardConfig) -> float:
    from iapo.rl import trl_engine

    _, proc = load(ZooDir(zoo).role("student"))
    train = world.load("train")[: cfg.questions_per_step]
    rewards = make_rewards(MethodConfig(attribution=attr), zoo, None, 0, rollout_cfg=cfg.rollout)
    one = cfg.model_copy(update={"steps": 1})
    args = trl_engine.grpo_args(one, out, 1, use_cpu=DEVICE == "cpu")
    trainer = trl_engine.IAPOGRPOTrainer(ZooDir(zoo).role("student"), proc, train, rewards, one, args)
    t = time.perf_counter()
    trl_engine.train(trainer)
    return time.perf_counter() - t


DEVICE = "cpu"


def main() -> None:
    global DEVICE
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["tiny", "10m", "100m"], choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=2, help="timed GRPO steps per method (after one warm-up)")
    ap.add_argument("--episodes", type=int, default=8, help="episodes in the IG timing batch")
    ap.add_argument("--trl", action="store_true", help="also one IAPO step of the largest size on TRL")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override the IAPO attribution config")
    ap.add_argument(
        "--no-captum", action="store_true", help="skip the IG columns (captum's full logits need ~15 GB at 100m)"
    )
    ap.add_argument("--also", nargs="*", default=[], metavar="ESTIMATOR", help="IAPO steps under these estimators too")
    a = ap.parse_args()
    DEVICE = a.device
    torch.set_num_threads(a.threads)
    cuda = DEVICE.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    root = Path(tempfile.mkdtemp())
    wdir, tiny = tiny_setup(root)
    world = World(wdir)
    cfg = GRPOSettings(questions_per_step=4, group_size=8, rollout=RolloutConfig(max_new_tokens=40, batch_size=32))
    attr = AttributionRewardConfig(**dict(kv.split("=", 1) for kv in a.set))
    m, rule = 4, "gausslegendre"  # the IG columns: IG at m = 4 against captum, whatever the step's estimator
    rng = random.Random(0)
    segs = [sft_segments(ex, rng, tools=True) for ex in world.load("train")[: a.episodes]]
    print(f"GRPO step Q={cfg.questions_per_step} x G={cfg.group_size}, max_new_tokens {cfg.rollout.max_new_tokens}; "
          f"IAPO: target {attr.target}, {describe(attr)}; IG columns: {rule}, m={m}, pad baseline, "
          f"{a.episodes} demonstration episodes; {DEVICE}")  # fmt: skip
    head = ("size", "params", "outcome step", "IAPO step", "ratio", "IAPO rollout/reward/update",
            "IG/episode", "floor/episode", "captum/episode", "captum/ours", "max |ours - captum| / max |captum|",
            *(f"IAPO {e} / outcome" for e in a.also))  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head), flush=True)
    for name in a.sizes:
        zoo = make_zoo(root, name, ZooDir(tiny).role("student"))
        model, proc = load(ZooDir(zoo).role("student"))
        model.to(DEVICE).eval()
        nan = float("nan")
        t_ig, t_floor, t_cap, agree = (nan,) * 4 if a.no_captum else ig_timings(model, proc, segs, m, rule, sync)
        steps = steps_side_by_side(zoo, world, cfg, a.steps, attr, a.also)
        o, i = steps["outcome"], steps["iapo"]
        split = f"{i['time/rollout_s']:.2f} / {i['time/reward_s']:.2f} / {i['time/update_s']:.2f} s"
        n = a.episodes
        print(f"| {name} | {n_params(model) / 1e6:.1f}M | {o['time/step_s']:.2f} s | {i['time/step_s']:.2f} s | "
              f"{i['time/step_s'] / o['time/step_s']:.2f} | {split} | {1e3 * t_ig / n:.0f} ms | "
              f"{1e3 * t_floor / n:.0f} ms | {1e3 * t_cap / n:.0f} ms | {t_cap / t_ig:.2f}x | {agree:.1e} |"
              + "".join(f" {steps[e]['time/step_s'] / o['time/step_s']:.2f} |" for e in a.also), flush=True)  # fmt: skip
        if cuda:
            _, eb, base = ig_batch(model, proc, segs)
            for chunk in (m * n, 8):
                torch.cuda.reset_peak_memory_stats()
                integrated_gradients(model, eb, base, m, rule, chunk=chunk, completeness=False)
                peak = torch.cuda.max_memory_allocated() / 2**20
                print(f"  {name}: IG peak memory, chunk {chunk} rows: {peak:.0f} MiB ({peak / n:.0f} MiB/episode)")
        del model
    if a.trl:
        t = trl_step(make_zoo(root, a.sizes[-1], ZooDir(tiny).role("student")), world, cfg, RunDir(root).trl, attr)
        print(f"TRL GRPOTrainer, one IAPO step of {a.sizes[-1]} (incl. trainer start-up): {t:.1f} s")


if __name__ == "__main__":
    main()
