"""Multi-turn rollout throughput (episodes/s) with and without the KV cache, in one run.

python bench/rollout_speed.py [--zoo DIR --world DIR] [--episodes 32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from _tiny import zoo_and_world
from iapo.models.build import load
from iapo.rollout.loop import RolloutConfig, rollout
from iapo.store import ZooDir
from iapo.world import World


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path)
    ap.add_argument("--world", type=Path)
    ap.add_argument("--episodes", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(2)
    zoo, wdir = zoo_and_world(a.zoo, a.world)
    exs = World(wdir).load("train")[: a.episodes]
    model, proc = load(ZooDir(zoo).role("student"))
    cfg = RolloutConfig(max_calls=2, max_new_tokens=40, temperature=1.0, batch_size=a.episodes)
    rates = {}
    for cache in (True, False):
        model.generation_config.use_cache = cache
        torch.manual_seed(0)
        t = time.perf_counter()
        eps = rollout(model, proc, exs, cfg)
        dt = time.perf_counter() - t
        toks = sum(len(tt.ids) for e in eps for tt in e.turns)
        rates[cache] = len(eps) / dt
        print(
            f"use_cache={cache!s:5}: {len(eps)} episodes, {toks} generated tokens in {dt:6.2f}s = {rates[cache]:6.2f} episodes/s"
        )
    print(f"KV cache speed-up: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
