"""Tool-use statistics of a set of episodes, from the world's call classifier.

Calls per episode, share of episodes that call a tool, and the rate of every call class (the
misuse ground truth of the paper's Fig. 3); accuracy overall, per family and question type.
Training logs, the model zoo's validation and evaluation all use them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from iapo.rollout.loop import Episode
from iapo.stats import wilson
from iapo.tools.session import MISUSE_CLASSES, CallClass


def tool_stats(episodes: list[Episode]) -> dict[str, float]:
    """calls per episode, share with a call, rate of each call class and overall misuse."""
    n = max(1, len(episodes))
    calls = [t.call_class for e in episodes for t in e.calls]
    counts = Counter(calls)
    n_calls = max(1, len(calls))
    out = {
        "tools/calls_per_episode": len(calls) / n,
        "tools/episodes_with_call": sum(bool(e.calls) for e in episodes) / n,
        "tools/misuse_rate": sum(counts[c] for c in MISUSE_CLASSES) / n_calls if calls else 0.0,
        "tools/useful_rate": counts[CallClass.VALID_USEFUL] / n_calls if calls else 0.0,
        "format/well_formed": sum(e.well_formed for e in episodes) / n,
        "format/answered": sum(e.answer is not None for e in episodes) / n,
    }
    for c in CallClass:
        out[f"tools/class/{c.value}"] = counts[c] / n_calls if calls else 0.0
    return out | decoy_stats(episodes)


def decoy_stats(episodes: list[Episode]) -> dict[str, float]:
    """Where the valid calls on questions that name a distractor go (only where some do): the
    share naming the distractor (`tools/decoy_rate`, the distractor grid's primary measure; lower
    is better), the evidence (`tools/distractor_useful_rate`) or neither (`tools/distractor_other_rate`).
    Invalid and unparseable calls stay out: they say nothing about where the policy looks."""
    valid = [t for e in episodes if "decoy" in e.example.meta for t in e.calls
             if t.call_class in (CallClass.VALID_USEFUL, CallClass.VALID_USELESS)]  # fmt: skip
    if not any("decoy" in e.example.meta for e in episodes):
        return {}
    n = len(valid)
    useful = sum(t.call_class == CallClass.VALID_USEFUL for t in valid)
    decoy = sum(t.decoy for t in valid)
    return {
        "tools/distractor_valid_calls": float(n),
        "tools/decoy_rate": decoy / n if n else math.nan,
        "tools/distractor_useful_rate": useful / n if n else math.nan,
        "tools/distractor_other_rate": (n - useful - decoy) / n if n else math.nan,
    }


def useless_share(stats: dict) -> float:
    """The share of valid calls (they ran and changed the view) that the world labels useless, from
    `tool_stats`' call-class rates; nan without a valid call. Few useless valid calls: "where to
    look" cannot matter, and any call bonus is as good as a teacher's target."""
    useful, useless = stats.get("tools/class/valid_useful", 0.0), stats.get("tools/class/valid_useless", 0.0)
    return useless / (useful + useless) if useful + useless else math.nan


def summarize(episodes: list[Episode], correct: list[float] | None = None) -> dict:
    """Accuracy overall, per family and per question type (a world template: where a model fails),
    and the tool statistics overall and per question type (which kind of question gets useless
    calls: a distractor template's share of valid-useless calls)."""
    correct = [e.correct for e in episodes] if correct is None else correct
    by_family: dict[str, list[float]] = defaultdict(list)
    by_type: dict[str, list[tuple[Episode, float]]] = defaultdict(list)
    for e, c in zip(episodes, correct, strict=True):
        by_family[e.example.family].append(c)
        if "template" in e.example.meta:
            by_type[f"{e.example.family}/{e.example.meta['template']}"].append((e, c))

    def acc(groups: dict[str, list[float]]) -> dict:
        return {k: {"accuracy": wilson(sum(cs), len(cs)).to_json(), "n": len(cs)} for k, cs in sorted(groups.items())}

    typed = acc({k: [c for _, c in v] for k, v in by_type.items()})
    types = {k: d | tool_stats([e for e, _ in by_type[k]]) for k, d in typed.items()}
    return {
        "n": len(episodes),
        "accuracy": wilson(sum(correct), len(correct)).to_json(),
        "families": acc(by_family),
        "question_types": types,
        **tool_stats(episodes),
    }
