"""Component shares of episodes' turns under one estimator: what IAPO's reward, its cached
targets, evaluation and the gallery all call, with one settings object (`AttributionSettings`).

For a scored turn, A_c is the attribution summed over the tokens of component c (system prompt,
tool spec, question, image, tool outputs, history) and p_c = |A_c| / sum |A_c| its share.
Estimators (docs/method.md section 2 has the measured fidelity and cost of each):

- `ig`: Integrated Gradients (`iapo.attribution.ig`), the method's definition; `n_steps` nodes
  of the quadrature `rule`;
- `shapley`, `occlusion`: exact component games from forward passes (`iapo.attribution.games`);
- `grad_x_delta`: (x - x') * gradient at x, one backward.

`ESTIMATORS` is the registry every place dispatches through (scoring, batching, labels, the
grid's cost model, region shares, cached targets' keys): adding an estimator is one scoring
function and one `register` call (docs/guide.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator

from iapo.attribution.games import component_game
from iapo.attribution.ig import (
    N_STEPS,
    RULES,
    Baseline,
    EmbeddedBatch,
    baseline_embeddings,
    embed,
    gradient_times_delta,
    integrated_gradients,
)
from iapo.config import StrictModel
from iapo.rollout.episode import COMPONENTS, Encoded, Segment, collate, encode

Scores = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
"""An estimator's answer for a batch: component scores (B, C) float64, the completeness relative
error (B,) (NaN where not computed) and the per-token attribution (B, T) (None for a game)."""


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator, as the registry holds it.

    score(model, eb, base, comp, s): the batch's `Scores`; eb: the embedded batch (its `target`
    marks the scored turn's tokens), base: x' (B, T, D), comp: (B, T) component ids (-1: not an
    input of the scored turn). game: a component game (forward passes over coalitions of whole
    components; batched by prompt), else token-level (region shares can use it). complete: f(x')
    and the completeness error computed by default. rows: forward rows per scored turn (batching);
    cost: measured cost per episode in units of one IG node at the quickstart's sizes (the grid's
    scheduling). reads: the settings it reads besides baseline and chunk (its label, cache keys)."""

    score: Callable[..., Scores]
    game: bool
    complete: bool
    rows: Callable[[AttributionSettings], int]
    cost: Callable[[AttributionSettings], float]
    reads: tuple[str, ...] = ()


ESTIMATORS: dict[str, EstimatorSpec] = {}


def register(name: str, spec: EstimatorSpec) -> None:
    """Make `name` an estimator every config, reward and report accepts."""
    ESTIMATORS[name] = spec


def token_level() -> list[str]:
    """The registered estimators with per-token attributions (what region shares need)."""
    return [n for n, e in ESTIMATORS.items() if not e.game]


class AttributionSettings(StrictModel):
    """How a turn's component attribution is computed: the one home of every default."""

    estimator: str = Field(
        "occlusion",
        description="a registered estimator (`ESTIMATORS`): ig: the method's definition, approximated by "
        "quadrature; shapley: exact Shapley values of the components (2^n forwards, no backward); occlusion: "
        "leave one component out; grad_x_delta: one backward. Default: the exact estimator best on val in the "
        "sparse regime (docs/method.md section 2)",
    )
    n_steps: int = Field(N_STEPS, ge=2, description="ig: quadrature nodes m")
    rule: Literal[RULES] = Field("gausslegendre", description="ig: quadrature rule")  # type: ignore[valid-type]
    baseline: Baseline = Field(
        "pad",
        description="x': the pad embedding on every row (pad), or a blank image's features on image rows (blank), "
        "or zero (fails completeness on trained models: RMSNorm's gradient at 0 is ~1/sqrt(eps))",
    )
    chunk: int = Field(64, ge=1, description="rows per forward pass (memory)")
    tokens: Literal["all", "images"] = Field(
        "all",
        description="token-level estimators: whose attribution is computed. all; or images (what region shares "
        "read): the image and tool-output tokens and what follows them, the tokens before run once per prompt "
        "without gradient and get 0 (grad_x_delta)",
    )
    completeness: bool | None = Field(
        None,
        description="also compute f(x') and the completeness error |sum A_c - (f(x) - f(x'))|. Default (None): "
        "where it checks the estimator or is free (ig; shapley, whose empty coalition is a player anyway), not "
        "for occlusion and grad_x_delta (one more pass, and neither need add up)",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data):
        return _rename_method(data)

    @field_validator("estimator")
    @classmethod
    def _registered(cls, v: str) -> str:
        return registered(v)

    @property
    def checks_completeness(self) -> bool:
        """`completeness`, resolved for the estimator."""
        return self.completeness if self.completeness is not None else ESTIMATORS[self.estimator].complete


def _rename_method(data):
    """`method` was the quadrature rule's key up to 0.1; it still reads, with a warning."""
    if isinstance(data, dict) and "method" in data:
        import warnings

        data = dict(data)
        warnings.warn("attribution key 'method' is deprecated: use 'rule'", DeprecationWarning, stacklevel=4)
        data.setdefault("rule", data.pop("method"))
    return data


def registered(name: str, token: bool = False) -> str:
    """`name` if it is a registered (`token`: token-level) estimator, else a ValueError naming them."""
    names = token_level() if token else list(ESTIMATORS)
    if name not in names:
        raise ValueError(f"{name!r} is not a registered {'token-level ' * token}estimator ({', '.join(names)})")
    return name


def _token_scores(res, comp: torch.Tensor, eb: EmbeddedBatch) -> Scores:
    if torch.isfinite(res.f_x).all():
        eb.f_x = res.f_x.detach()  # f(x) of every row, for the games that follow on this batch
    tok = res.attributions.sum(-1).cpu()  # (B, T)
    return component_scores(tok.double(), comp), res.relative_error.cpu(), tok


def _ig(model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, s: AttributionSettings) -> Scores:
    res = integrated_gradients(model, eb, base, s.n_steps, s.rule, s.chunk, s.checks_completeness)
    return _token_scores(res, comp, eb)


def _grad_x_delta(model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, s: AttributionSettings) -> Scores:
    return _token_scores(gradient_times_delta(model, eb, base, s.checks_completeness, _first(eb, comp, s)), comp, eb)


def _first(eb: EmbeddedBatch, comp: torch.Tensor, s: AttributionSettings) -> int:
    """The first position whose attribution `s.tokens` asks for (0: all; images: the first token
    of the image or a tool output in any row, never after the first scored token's prediction)."""
    if s.tokens == "all":
        return 0
    img = torch.isin(comp, torch.tensor([COMPONENTS.index("image"), COMPONENTS.index("tool_output")])).any(0)
    scored = eb.target.bool().any(0).nonzero()
    first_target = int(scored[0]) if len(scored) else comp.shape[1]
    return max(0, min(int(img.nonzero()[0]) if img.any() else comp.shape[1], first_target - 1))


def _game(kind: str) -> Callable[..., Scores]:
    def score(model, eb: EmbeddedBatch, base: torch.Tensor, comp: torch.Tensor, s: AttributionSettings) -> Scores:
        res = component_game(model, eb, base, comp, kind, s.chunk, s.checks_completeness)
        return res.scores, res.relative_error.cpu(), None

    return score


register("ig", EstimatorSpec(_ig, game=False, complete=True, rows=lambda s: s.n_steps, cost=lambda s: s.n_steps,
                             reads=("rule", "n_steps")))  # fmt: skip
register("shapley", EstimatorSpec(_game("shapley"), game=True, complete=True, rows=lambda s: 64, cost=lambda s: 4.5))
register(
    "occlusion", EstimatorSpec(_game("occlusion"), game=True, complete=False, rows=lambda s: 8, cost=lambda s: 0.7)
)
register("grad_x_delta", EstimatorSpec(_grad_x_delta, game=False, complete=False, rows=lambda s: 1, cost=lambda s: 0.4))


IG_REFERENCE = AttributionSettings(estimator="ig", n_steps=512, rule="trapezoid")
"""Converged IG, what fidelity is measured against: on the quickstart's student, the trapezoid
rule's median completeness error is 4.2% at m = 128, 0.39% at 256 and 0.07% at 512 (max 2%)."""


def component_scores(token_attr: torch.Tensor, comp_ids: torch.Tensor) -> torch.Tensor:
    """A_c: token attributions (B, T) summed over each component's positions -> (B, C).
    comp_ids (B, T) index COMPONENTS, -1 = not an input of the target turn."""
    valid = comp_ids >= 0
    out = torch.zeros(token_attr.shape[0], len(COMPONENTS), dtype=token_attr.dtype)
    return out.scatter_add(1, comp_ids.clamp(min=0), token_attr * valid)


def shares(scores: torch.Tensor) -> torch.Tensor:
    """p_c = |A_c| / sum |A_c|, rows (B, C); an all-zero row stays zero."""
    a = scores.abs()
    return a / a.sum(-1, keepdim=True).clamp(min=1e-12)


@dataclass
class TurnAttribution:
    """One scored turn: p (C,) component shares, A (C,), the completeness relative error, and
    the per-token attribution (T,) (None for the component games) with the episode's encoding."""

    p: torch.Tensor
    scores: torch.Tensor
    relative_error: float
    token_attr: torch.Tensor | None
    encoded: Encoded
    turn: int
    finite: bool


def target_turns(n_turns: int, which: Literal["final", "all"]) -> list[int]:
    return [n_turns - 1] if which == "final" else list(range(n_turns))


def _score_batch(model, processor, encs: list[Encoded], turns: list[int], passes: list[AttributionSettings]):
    """Per pass: (scores (B, C) float64, relative error (B,), token attribution (B, T) or None).
    The batch is collated and lifted to embeddings once for every pass; the token-level passes
    run first and leave f(x) on the batch (`EmbeddedBatch.f_x`) for the games."""
    masks = [e.assistant_mask(only=t) for e, t in zip(encs, turns, strict=True)]
    batch = collate(encs, processor.pad_token_id, masks).to(model.device)
    eb = embed(model, batch, batch.completion_mask)
    bases = {b: baseline_embeddings(model, processor, batch, eb, b) for b in dict.fromkeys(s.baseline for s in passes)}
    comp = torch.full(batch.input_ids.shape, -1, dtype=torch.long)
    for j, (e, t) in enumerate(zip(encs, turns, strict=True)):
        comp[j, : len(e)] = e.component_ids(t)
    out: dict[int, Scores] = {}
    # token-level first, the cheapest first: each leaves f(x) for what follows
    specs = [ESTIMATORS[s.estimator] for s in passes]
    for i in sorted(range(len(passes)), key=lambda i: (specs[i].game, specs[i].rows(passes[i]))):
        out[i] = specs[i].score(model, eb, bases[passes[i].baseline], comp, passes[i])
    return [out[i] for i in range(len(passes))]


def rows_per_call(s: AttributionSettings) -> int:
    """Episodes per batch so that one call's forward rows stay near `chunk`."""
    per_row = ESTIMATORS[s.estimator].rows(s)
    return max(1, s.chunk // per_row)


def attribute_episodes(
    model,
    processor,
    episodes: list[list[Segment]],
    which: Literal["final", "all"] = "final",
    settings: AttributionSettings | None = None,
    keep_ids: bool = True,
) -> list[list[TurnAttribution]]:
    """Per-component attribution of the chosen turns of each episode (a list of segments).

    `keep_ids=False` re-tokenizes the generated text with this model's own tokenizer: a teacher
    scores a student's rollout that way, and components line up whatever the vocabularies."""
    return attribute_passes(model, processor, episodes, which, [settings or AttributionSettings()], keep_ids)[0]


def attribute_passes(
    model,
    processor,
    episodes: list[list[Segment]],
    which: Literal["final", "all"],
    passes: list[AttributionSettings],
    keep_ids: bool = True,
) -> list[list[list[TurnAttribution]]]:
    """`attribute_episodes` under several settings at once, one result per pass (IAPO's term:
    occlusion's component shares and the region shares' token attribution). Each episode is
    encoded, batched and lifted to embeddings once for all passes, and a token-level pass's
    f(x) spares a component game its full coalition: the same values as separate calls, up to
    float rounding (tests/attribution/test_passes.py), for about half the passes' tokens."""
    if not passes:
        return []
    rows: list[tuple[int, int, Encoded]] = []
    prompts = [prompt_key(segs) for segs in episodes]
    for i, segs in enumerate(episodes):
        enc = encode(segs, processor, keep_ids=keep_ids)
        n_turns = sum(k == "assistant" for k in enc.kinds)
        rows.extend((i, t, enc) for t in target_turns(n_turns, which))
    out: list[list[list[TurnAttribution]]] = [[[] for _ in episodes] for _ in passes]
    # episodes of one prompt (a GRPO group) share a batch, so the component games run their common
    # prompt once per coalition (`games.shared_prefix`); within a prompt, similar lengths: less padding
    rows.sort(key=lambda r: (prompts[r[0]], len(r[2])))
    by_prompt = any(ESTIMATORS[s.estimator].game for s in passes)
    was_training = model.training
    model.eval()
    for part in _batches(rows, prompts, min(rows_per_call(s) for s in passes), by_prompt):
        scored = _score_batch(model, processor, [e for _, _, e in part], [t for _, t, _ in part], passes)
        for s, (sc, rel, tok), res in zip(passes, scored, out, strict=True):
            p = shares(sc)
            for j, (i, t, e) in enumerate(part):
                finite = bool(torch.isfinite(sc[j]).all() and (torch.isfinite(rel[j]) or not s.checks_completeness))
                token = None if tok is None else tok[j, : len(e)]
                res[i].append(TurnAttribution(p[j].float(), sc[j].float(), float(rel[j]), token, e, t, finite))
    model.train(was_training)
    return out


def _batches(rows: list, prompts: list[str], size: int, by_prompt: bool) -> list[list]:
    """Consecutive rows in batches of at most `size`; `by_prompt`: a batch never spans two prompts,
    so the component games run each prompt once per coalition and only the rows' own turns after
    it (a batch of two groups shares only the system prompt and tool spec: twice the tokens)."""
    out: list[list] = []
    for r in rows:
        if not out or len(out[-1]) == size or (by_prompt and prompts[r[0]] != prompts[out[-1][-1][0]]):
            out.append([])
        out[-1].append(r)
    return out


def prompt_key(segments: list[Segment]) -> str:
    """What identifies an episode's prompt: the text before its first model turn (the image is
    the question's; `games.shared_prefix` checks the embeddings themselves)."""
    out = []
    for seg in segments:
        if seg.kind == "assistant":
            break
        out.append(seg.text)
    return "".join(out)


def mean_shares(turns: list[TurnAttribution]) -> torch.Tensor | None:
    """Average p over an episode's finite scored turns (None if none is finite)."""
    ps = [t.p for t in turns if t.finite and math.isfinite(float(t.p.sum()))]
    return torch.stack(ps).mean(0) if ps else None


def describe(s: AttributionSettings) -> str:
    """A short label: `shapley`, `ig gausslegendre m=4`, ... (the estimator and the settings it reads)."""
    shown = (f"m={s.n_steps}" if k == "n_steps" else str(getattr(s, k)) for k in ESTIMATORS[s.estimator].reads)
    return " ".join([s.estimator, *shown])
