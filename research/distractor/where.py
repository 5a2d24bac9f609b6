"""Where each model looks, per question template: greedy episodes on a world split, and for each
template the accuracy, the episodes with a call, and how the world classes the calls (useful,
valid-useless, other). The useless share of valid calls is the number the distractor designs
turn on (research/distractor/README.md).

    python research/distractor/where.py runs/distractor_decoy/world \
        teacher=runs/distractor_decoy/zoos/seed0/teacher outcome=runs/distractor_decoy/runs/outcome/zoo0/seed0/policy
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

from iapo.models.build import load
from iapo.rollout.loop import RolloutConfig, rollout
from iapo.rollout.summary import tool_stats, useless_share
from iapo.world.dataset import World


def where(episodes) -> dict[str, dict[str, float]]:
    """Per template: n, accuracy %, episodes with a call %, calls by class (% of calls, from
    `iapo.rollout.summary.tool_stats`), the useless share of valid calls % (`useless_share`)."""
    by: dict[str, list] = defaultdict(list)
    for e in episodes:
        by[e.example.meta.get("template", "?")].append(e)
    out = {}
    for t, eps in sorted(by.items()):
        s = tool_stats(eps)
        useful, useless = s["tools/class/valid_useful"], s["tools/class/valid_useless"]
        called = s["tools/calls_per_episode"] > 0
        out[t] = {
            "n": len(eps),
            "accuracy %": 100 * sum(e.correct for e in eps) / len(eps),
            "with a call %": 100 * s["tools/episodes_with_call"],
            "useful % of calls": 100 * useful if called else math.nan,
            "useless % of calls": 100 * useless if called else math.nan,
            "useless % of valid calls": 100 * useless_share(s),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("world")
    ap.add_argument("models", nargs="+", help="name=model_dir")
    ap.add_argument("--split", default="val")
    ap.add_argument("--max-calls", type=int, default=2)
    a = ap.parse_args()
    examples = World(a.world).load(a.split)
    for spec in a.models:
        name, path = spec.split("=", 1)
        model, processor = load(path)
        eps = rollout(model, processor, examples, RolloutConfig(greedy=True, max_calls=a.max_calls))
        for t, row in where(eps).items():
            print(f"{name:20s} {t:18s} " + "  ".join(f"{k} {v:.1f}" for k, v in row.items()))


if __name__ == "__main__":
    main()
