"""Our outcome + format reward as a veRL custom reward function
(`custom_reward_function.path=<this file> custom_reward_function.name=compute_score`).

veRL hands the decoded response of the whole multi-turn trajectory (`solution_str`, tool
responses included); the answer is the last `<answer>...</answer>` in it.
"""

from __future__ import annotations

import re

from iapo.metrics import score

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
FORMAT_WEIGHT = 0.2  # as configs/outcome.yaml


def final_answer(solution_str: str) -> str | None:
    found = _ANSWER.findall(solution_str)
    return " ".join(found[-1].split()) if found else None


def compute_score(
    data_source: str, solution_str: str, ground_truth: str | list[str], extra_info: dict | None = None, **_
) -> dict:
    """{"score": outcome + 0.2 * format, "acc": outcome, "answered": format}: veRL logs every key."""
    answer = final_answer(solution_str)
    metric = (extra_info or {}).get("metric", "exact")
    gold = ground_truth if isinstance(ground_truth, str) else [str(g) for g in ground_truth]  # parquet: arrays
    acc = score(answer, gold, metric)
    answered = float(answer is not None)
    return {"score": acc + FORMAT_WEIGHT * answered, "acc": acc, "answered": answered}
