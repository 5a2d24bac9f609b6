"""Tool-use statistics of a set of episodes, from the world's call classifier.

Calls per episode, share of episodes that call a tool, and the rate of every call class (the
misuse ground truth of the paper's Fig. 3). Training logs and evaluation both use them.
"""

from __future__ import annotations

from collections import Counter

from iapo.rollout.loop import Episode
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
    return out
