"""Rule-based rewards, in TRL's reward-function convention.

Every reward is `fn(prompts, completions, **kwargs) -> list[float]`, one value per completion,
as `trl.GRPOTrainer` calls its `reward_funcs`; ours read the full multi-turn `episodes` (passed
as a keyword, like a dataset column) because tool calls, their classes and the answer live
there. So the same functions plug into our GRPO loop and into TRL.
"""

from __future__ import annotations

from iapo.rollout.loop import Episode


def outcome(prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
    """1 if the final answer is right under the example's metric (VTool-R1's outcome reward)."""
    return [float(e.correct) for e in episodes]


def format_reward(prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
    """1 if every turn parsed, none was cut off, and the episode ended with an answer."""
    return [float(e.well_formed) for e in episodes]


def reference_path(ep: Episode) -> list[dict]:
    """The ONE reference trajectory a ToolRL-style reward compares with: the example's
    annotated path, else the first of its shortest valid paths (the world knows all of them;
    ToolRL's data knows one)."""
    if ep.example.reference_path:
        return ep.example.reference_path
    paths = ep.example.valid_paths
    if not paths:
        return []
    n = min(len(p) for p in paths)
    return next(p for p in paths if len(p) == n)


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def match_score(calls: list[dict], ref: list[dict]) -> float:
    """ToolRL-style exact match in [0, 1]: position by position, the mean of tool name equal,
    argument-name Jaccard and the share of reference arguments with equal values; divided by
    the longer of the two trajectories, so extra or missing calls cost too."""
    if not calls and not ref:
        return 1.0
    total = 0.0
    for c, r in zip(calls, ref, strict=False):
        ca, ra = c.get("arguments") or {}, r["arguments"]
        name = float(c.get("name") == r["name"])
        keys = _jaccard(set(ca), set(ra))
        values = sum(ca.get(k) == v for k, v in ra.items()) / max(1, len(ra))
        total += (name + keys + values) / 3
    return total / max(len(calls), len(ref))


def exact_match(prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
    """Tool calls compared with one reference path; another valid path scores lower (by design
    of the baseline, the brittleness docs/method.md describes)."""
    return [match_score(e.calls_as_dicts(), reference_path(e)) for e in episodes]


class ToolBonus:
    """+1 for an episode with at least one valid, useful tool call; `conditional` (DeepEyes'
    rule): only when the answer is also right, so a call that does not help earns nothing. The
    baseline that tells whether the attribution term is more than a costly tool bonus."""

    __name__ = "tool_bonus"

    def __init__(self, conditional: bool = True):
        self.conditional = conditional

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
        return [
            float(any(t.call_class == "valid_useful" for t in e.calls) and (e.correct > 0 or not self.conditional))
            for e in episodes
        ]
