"""Rule-based rewards, in TRL's reward-function convention.

Every reward is `fn(prompts, completions, **kwargs) -> list[float]`, one value per completion,
as `trl.GRPOTrainer` calls its `reward_funcs`; ours read the full multi-turn `episodes` (passed
as a keyword, like a dataset column) because tool calls, their classes and the answer live
there. So the same functions plug into our GRPO loop and into TRL.

The examples stand in for episodes with the few attributes a reward reads:

>>> from types import SimpleNamespace as Ep
>>> eps = [Ep(correct=1.0, well_formed=True, has_useful_call=True), Ep(correct=0.0, well_formed=False,
...        has_useful_call=True), Ep(correct=1.0, well_formed=True, has_useful_call=False)]
>>> outcome([], [], episodes=eps), format_reward([], [], episodes=eps)
([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
>>> ToolBonus()([], [], episodes=eps), ToolBonus(conditional=False)([], [], episodes=eps)
([1.0, 0.0, 0.0], [1.0, 1.0, 0.0])
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
    the longer of the two trajectories, so extra or missing calls cost too.

    >>> ref = [{"name": "mask_rows", "arguments": {"rows": ["a"]}}]
    >>> match_score(ref, ref), match_score([], ref)
    (1.0, 0.0)
    >>> match_score([{"name": "mask_rows", "arguments": {"rows": ["b"]}}], ref)  # (1 + 1 + 0) / 3
    0.6666666666666666
    >>> match_score(ref + ref, ref)  # an extra call halves it
    0.5
    """
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
    baseline that tells whether the attribution term is more than a costly tool bonus.

    `useful=False` pays any call that runs and changes the view: the world's usefulness labels
    carry where the evidence is, which a benchmark without evidence annotations cannot tell
    (its calls are all `valid`, and a useful-only bonus pays nothing there).

    >>> from types import SimpleNamespace as Ep
    >>> eps = [Ep(has_useful_call=True, has_valid_call=True, correct=0.0),
    ...        Ep(has_useful_call=False, has_valid_call=True, correct=1.0)]
    >>> ToolBonus(conditional=False)([], [], episodes=eps), ToolBonus(False, useful=False)([], [], episodes=eps)
    ([1.0, 0.0], [1.0, 1.0])
    """

    __name__ = "tool_bonus"

    def __init__(self, conditional: bool = True, useful: bool = True):
        self.conditional, self.useful = conditional, useful

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
        return [
            float((e.has_useful_call if self.useful else e.has_valid_call) and (e.correct > 0 or not self.conditional))
            for e in episodes
        ]


class Curiosity:
    """Pixel Reasoner's curiosity bonus (Wang et al., 2025): an episode that calls a tool earns
    max(H - RaPR(q), 0), where RaPR(q), the rate of pixel-space reasoning, is the share of the
    episodes of its question in this batch (its GRPO group) that call one. Calls pay while they
    are rare for a question and stop paying once the rate reaches H. Its weight is alpha; the
    paper pairs it with `CallPenalty`.

    >>> from types import SimpleNamespace as Ep
    >>> q, r = Ep(id="q"), Ep(id="r")
    >>> eps = [Ep(example=q, calls=[1]), Ep(example=q, calls=[]), Ep(example=q, calls=[]), Ep(example=q, calls=[]),
    ...        Ep(example=r, calls=[1]), Ep(example=r, calls=[1])]
    >>> [round(x, 2) for x in Curiosity(rate=0.5)([], [], episodes=eps)]  # q: RaPR 0.25, r: 1.0
    [0.25, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    __name__ = "curiosity"

    def __init__(self, rate: float = 0.3):
        self.rate = rate

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
        calls: dict[str, list[bool]] = {}
        for e in episodes:
            calls.setdefault(e.example.id, []).append(bool(e.calls))
        rapr = {q: sum(v) / len(v) for q, v in calls.items()}
        return [max(self.rate - rapr[e.example.id], 0.0) * bool(e.calls) for e in episodes]


class CallPenalty:
    """min(N - calls, 0): each call beyond `max_calls` (N) costs one unit of its weight (beta),
    Pixel Reasoner's guard against the curiosity bonus buying long call chains.

    >>> from types import SimpleNamespace as Ep
    >>> CallPenalty(max_calls=1)([], [], episodes=[Ep(calls=[]), Ep(calls=[1]), Ep(calls=[1, 2, 3])])
    [0.0, 0.0, -2.0]
    """

    __name__ = "call_penalty"

    def __init__(self, max_calls: int = 1):
        self.max_calls = max_calls

    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
        return [float(min(self.max_calls - len(e.calls), 0)) for e in episodes]
