"""Rewards: rule-based (`basic`), a learned tool-call reward model (`trm`), and the IAPO
attribution term (`attribution`), all in TRL's reward-function convention."""

from iapo.rewards.basic import ToolBonus, exact_match, format_reward, match_score, outcome, reference_path

__all__ = ["ToolBonus", "exact_match", "format_reward", "match_score", "outcome", "reference_path"]
