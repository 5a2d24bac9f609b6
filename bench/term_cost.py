"""Where a GRPO step's time goes with the attribution term, and how far each part is from the
machine's limit: seconds and FLOPs per step of the rollout, the update and the term's parts.

    python bench/term_cost.py [--work bench_runs/run_speed] [--steps 4] [--threads 1] [--set KEY=VALUE ...]
    python bench/term_cost.py --tiny       # untrained tiny models: seconds, for tests

The workload is run_speed's: the sparse regime's world and the trained `teacher` of its zoo recipe
as the policy (it calls tools in most episodes; built once in --work, ~10 min), Q = 4 x G = 8, the
term with the library's default settings (`--set` changes them, e.g. estimator=ig). The term's
parts: the component game's passes (occlusion), the token-level pass behind region shares
(grad_x_delta), the batching around them (collating, the vision tower, baselines), the targets
(the teacher side: teacher_own looks its cache up) and the rest (encoding the episodes, region
maps, divergences, the other rewards).

FLOPs are the profiler's count of the matrix products (`torch.profiler`, with_flops), measured on
a repetition of each part (the profiler slows what it watches); attention's softmax and the
elementwise work are not in it. The peak is a 1024^3 float32 matrix product at the same thread
count: "% of peak" says how far each part is from what these cores can do. Last line:
`term / (rollout + update): R` (the term's overhead is 1 + R).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
import iapo.attribution.episodes as episodes
from _tiny import zoo_and_world
from iapo.models.build import load
from iapo.rewards.alignment import AttributionRewardConfig
from iapo.rewards.contract import bind_policy, prepare, score
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rl.credit import token_advantages
from iapo.rl.grpo import GRPOSettings, _update, policy_optimizer, rollout_groups
from iapo.store import ZooDir
from iapo.world import World
from run_speed import build, read_grid

PARTS = ("rollout", "update", "term: game passes", "term: token pass", "term: batching", "term: targets", "term: rest")


class Parts:
    """Seconds per named part, with the term's estimators and batching wrapped to time themselves."""

    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)
        for name, spec in list(episodes.ESTIMATORS.items()):
            part = "term: game passes" if spec.game else "term: token pass"
            episodes.ESTIMATORS[name] = spec.__class__(**{**spec.__dict__, "score": self._timed(spec.score, part)})
        episodes._score_batch = self._timed(episodes._score_batch, "batch")

    def _timed(self, fn, part: str):
        def run(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            self.s[part] += time.perf_counter() - t
            return out

        return run


def peak_gflops() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    t, n = time.perf_counter(), 10
    for _ in range(n):
        a @ b
    return 2 * 1024**3 * n / (time.perf_counter() - t) / 1e9


def gflop(fn) -> float:
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as p:
        fn()
    return sum(e.flops or 0 for e in p.events()) / 1e9


def step_flops(policy, opt_state, ref, proc, batch, eps, advs, rewards, cfg: GRPOSettings, k: int) -> dict:
    """GFLOP of one step's rollout, term and update, on repetitions (the same questions, episodes
    and advantages; `policy` and `opt_state`: copies from before the step's update)."""
    torch.manual_seed(k)
    out = {"rollout": gflop(lambda: rollout_groups(policy, proc, batch, cfg, k, None))}
    out["term"] = gflop(lambda: score(rewards, eps))
    opt = policy_optimizer(policy, cfg)
    opt.load_state_dict(opt_state)
    out["update"] = gflop(lambda: _update(policy, ref, proc, opt, eps, advs, cfg, {}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parents[1] / "bench_runs" / "run_speed")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="1: as a grid's worker runs (two on two cores)")
    ap.add_argument("--tiny", action="store_true", help="untrained tiny models on a small world (seconds)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override the term's settings")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    zoo, world = zoo_and_world(None, None) if a.tiny else build(a.work)[::-1]
    cfg = GRPOSettings(**read_grid()["grpo"])
    if a.tiny:  # an untrained model's turns run to the token limit: a small step, for tests
        cfg = cfg.model_copy(update={"questions_per_step": 2, "group_size": 2,
                                     "rollout": cfg.rollout.model_copy(update={"max_new_tokens": 12})})  # fmt: skip
    policy, proc = load(ZooDir(zoo).role("teacher"))
    ref = copy.deepcopy(policy)
    method = MethodConfig(attribution=AttributionRewardConfig(**dict(kv.split("=", 1) for kv in a.set)))
    rewards = make_rewards(method, zoo, None, 0, rollout_cfg=cfg.rollout)
    q = cfg.questions_per_step
    train = World(world).load("train")
    batches = [train[q * k : q * k + q] for k in range(a.steps + 1)]
    prepare(rewards, [ex for b in batches for ex in b])  # teacher_own targets, before RL as train_grpo does
    opt = policy_optimizer(policy, cfg)
    parts, rows, flops = Parts(), [], {}
    for k, batch in enumerate(batches):
        parts.s.clear()
        torch.manual_seed(k)
        t0 = time.perf_counter()
        eps = rollout_groups(policy, proc, batch, cfg, k, None)
        t1 = time.perf_counter()
        bind_policy(rewards, policy, proc)
        values, dropped, row, dense = score(rewards, eps)
        advs, _ = token_advantages(eps, rewards, values, dropped, dense, cfg.group_size)
        t2 = time.perf_counter()
        frozen = (copy.deepcopy(policy), copy.deepcopy(opt.state_dict()))
        _update(policy, ref, proc, opt, eps, [a.float() for a in advs], cfg, {})
        t3 = time.perf_counter()
        if not k:
            continue  # warm-up
        term = {p: parts.s[p] for p in ("term: game passes", "term: token pass")}
        term["term: batching"] = parts.s["batch"] - sum(term.values())
        term["term: targets"] = sum(v for n, v in row.items() if n.endswith("_targets_s"))
        term["term: rest"] = (t2 - t1) - sum(term.values())
        rows.append({"rollout": t1 - t0, "update": t3 - t2, **term})
        if k == 1:
            flops = step_flops(*frozen, ref, proc, batch, eps, [a.float() for a in advs], rewards, cfg, k)
    peak = peak_gflops()
    med = {p: statistics.median(r[p] for r in rows) for p in PARTS}
    print(f"Q={q} x G={cfg.group_size}, median of {len(rows)} steps after a warm-up, {a.threads} thread(s), "
          f"term {' '.join(a.set) or 'defaults'}; peak {peak:.0f} GFLOP/s (1024^3 matmul)")  # fmt: skip
    print(f"{'part':20s} {'s/step':>7s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'% of peak':>9s}")
    term_s = sum(med[p] for p in PARTS if p.startswith("term"))
    for p in PARTS:
        print(f"{p:20s} {med[p]:7.3f}" + (f" {flops[p]:7.2f} {flops[p] / med[p]:8.1f} {100 * flops[p] / med[p] / peak:8.1f}%"
                                          if p in flops else ""))  # fmt: skip
    print(f"{'term (all parts)':20s} {term_s:7.3f} {flops['term']:7.2f} {flops['term'] / term_s:8.1f} "
          f"{100 * flops['term'] / term_s / peak:8.1f}%")  # fmt: skip
    print(f"term / (rollout + update): {term_s / (med['rollout'] + med['update']):.2f}")


if __name__ == "__main__":
    main()
