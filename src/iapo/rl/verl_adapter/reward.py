"""Our outcome + format reward as a veRL custom reward function
(`custom_reward_function.path=<this file> custom_reward_function.name=compute_score`).

veRL hands the decoded response of the whole multi-turn trajectory (`solution_str`, tool calls
and responses included). Its final turn (what follows the last tool call or tool response) is
parsed by the rollout's own parser (`iapo.tools.syntax.parse_turn`) and scored by the same
functions and weights as in our engine and TRL's (`iapo.rewards.basic`, `MethodConfig`'s
outcome and format weights): one rule for three engines.
"""

from __future__ import annotations

from dataclasses import dataclass

from iapo.answers import grade
from iapo.rewards.basic import format_reward, outcome
from iapo.rewards.method import MethodConfig
from iapo.tools.syntax import TOOL_CALL_CLOSE, Turn, parse_turn

TOOL_RESPONSE_CLOSE = "</tool_response>"  # Qwen's chat template wraps a tool message in it


@dataclass
class Trajectory:
    """What `iapo.rewards.basic` reads from an episode, for a veRL trajectory: its final turn."""

    final: Turn
    gold: str | list[str]
    metric: str

    @property
    def answer(self) -> str | None:
        return self.final.answer if self.final.kind == "answer" else None

    @property
    def correct(self) -> float:
        return grade(self.answer, self.gold, self.metric)

    @property
    def well_formed(self) -> bool:
        return self.answer is not None and self.final.well_formed


def final_turn(solution_str: str) -> str:
    """The text after the trajectory's last tool call or tool response (its answer turn), with
    the role line veRL's decoding leaves at a turn's start removed."""
    cut = max(
        solution_str.rfind(m) + len(m) if m in solution_str else 0 for m in (TOOL_CALL_CLOSE, TOOL_RESPONSE_CLOSE)
    )
    text = solution_str[cut:].strip()
    return text.removeprefix("assistant").strip() if cut else text


def compute_score(
    data_source: str, solution_str: str, ground_truth: str | list[str], extra_info: dict | None = None, **_
) -> dict:
    """{"score": outcome + w * format, "acc": outcome, "answered": format}: veRL logs every key."""
    gold = ground_truth if isinstance(ground_truth, str) else [str(g) for g in ground_truth]  # parquet: arrays
    traj = Trajectory(parse_turn(final_turn(solution_str)), gold, (extra_info or {}).get("metric", "exact"))
    (acc,), (fmt,) = outcome([], [], [traj]), format_reward([], [], [traj])
    w = MethodConfig()
    return {"score": w.outcome * acc + w.format * fmt, "acc": acc, "answered": fmt}
