"""Rewards: rule-based (`basic`), a learned tool-call reward model (`trm`), and the IAPO
attribution-alignment term (`alignment`, with its cached teacher targets in `targets`), all in
TRL's reward-function convention (`contract`); a method's weighted set is built in `method`."""

from iapo.rewards.basic import (
    CallPenalty,
    Curiosity,
    ToolBonus,
    exact_match,
    format_reward,
    match_score,
    outcome,
    reference_path,
)

__all__ = [
    "CallPenalty",
    "Curiosity",
    "ToolBonus",
    "exact_match",
    "format_reward",
    "match_score",
    "outcome",
    "reference_path",
]
