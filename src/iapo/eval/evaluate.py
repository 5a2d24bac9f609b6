"""Agent evaluation: accuracy with a 95% CI per split and family, and tool-use statistics.

Tool statistics come from `iapo.rollout.stats`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from iapo.data.example import Example
from iapo.eval.stats import wilson
from iapo.models.processor import VLProcessor
from iapo.rollout.loop import Episode, RolloutConfig, rollout
from iapo.rollout.stats import tool_stats


@dataclass
class EvalResult:
    summary: dict
    episodes: list[dict]

    def to_json(self) -> dict:
        return {"summary": self.summary, "episodes": self.episodes}


def episode_record(ep: Episode) -> dict:
    return {
        "id": ep.example.id,
        "split": ep.example.split,
        "family": ep.example.family,
        "question": ep.example.question,
        "gold": ep.example.answer,
        "answer": ep.answer,
        "correct": ep.correct,
        "turns": [t.text for t in ep.turns],
        "calls": [t.call_class.value for t in ep.calls if t.call_class is not None],
        "well_formed": ep.well_formed,
    }


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
