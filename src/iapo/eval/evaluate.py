"""Agent evaluation: accuracy with a 95% CI per split and family, and tool-use statistics.

Tool statistics use the world's call classifier: calls per episode, share of episodes that call
a tool, and the rate of every call class (the misuse ground truth of the paper's Fig. 3).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from iapo.data.example import Example
from iapo.eval.stats import wilson
from iapo.models.processor import VLProcessor
from iapo.rollout.loop import Episode, RolloutConfig, rollout
from iapo.tools.session import MISUSE_CLASSES, CallClass


@dataclass
class EvalResult:
    summary: dict
    episodes: list[dict]

    def to_json(self) -> dict:
        return {"summary": self.summary, "episodes": self.episodes}


def episode_record(ep: Episode) -> dict:
    return {
        "id": ep.example.id,
        "family": ep.example.family,
        "question": ep.example.question,
        "gold": ep.example.answer,
        "answer": ep.answer,
        "correct": ep.correct,
        "turns": [t.text for t in ep.turns],
        "calls": [t.call_class.value for t in ep.calls if t.call_class is not None],
        "well_formed": ep.well_formed,
    }


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


def summarize(episodes: list[Episode]) -> dict:
    acc = wilson(sum(e.correct for e in episodes), len(episodes))
    by_family: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        by_family[e.example.family].append(e)
    return {
        "n": len(episodes),
        "accuracy": acc.to_json(),
        "families": {
            f: {"accuracy": wilson(sum(e.correct for e in eps), len(eps)).to_json(), "n": len(eps)}
            for f, eps in sorted(by_family.items())
        },
        **tool_stats(episodes),
    }


def evaluate(model, processor: VLProcessor, examples: list[Example], cfg: RolloutConfig) -> EvalResult:
    eps = rollout(model, processor, examples, cfg)
    return EvalResult(summarize(eps), [episode_record(e) for e in eps])


def write_result(result: EvalResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1))
    tmp.replace(path)
