"""Agent evaluation: accuracy with a 95% CI per split and family, and tool-use statistics.

Tool statistics come from `iapo.rollout.summary`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iapo.data.example import Example
from iapo.models.processor import VLProcessor
from iapo.provenance import write_json
from iapo.rollout.loop import Episode, RolloutConfig, rollout
from iapo.rollout.summary import summarize


@dataclass
class EvalResult:
    summary: dict
    episodes: list[dict]

    def to_json(self) -> dict:
        return {"summary": self.summary, "episodes": self.episodes}


Grader = Callable[[Episode], float]  # replaces the example's rule-based metric (e.g. a judge model)


def episode_record(ep: Episode, correct: float) -> dict:
    return {
        "id": ep.example.id,
        "split": ep.example.split,
        "family": ep.example.family,
        "question": ep.example.question,
        "gold": ep.example.answer,
        "answer": ep.answer,
        "correct": correct,
        "turns": [t.text for t in ep.turns],
        "calls": [t.call_class.value for t in ep.calls if t.call_class is not None],
        "well_formed": ep.well_formed,
    }


def evaluate(
    model, processor: VLProcessor, examples: list[Example], cfg: RolloutConfig, grader: Grader | None = None
) -> EvalResult:
    """`grader` (optional) scores each finished episode instead of the example's metric."""
    eps = rollout(model, processor, examples, cfg)
    correct = [grader(e) if grader is not None else e.correct for e in eps]
    return EvalResult(summarize(eps, correct), [episode_record(e, c) for e, c in zip(eps, correct, strict=True)])


def write_result(result: EvalResult, path: Path) -> None:
    write_json(path, result.to_json())
