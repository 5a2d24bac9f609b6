"""Credit: the advantage of every generated token, from the rewards and their `Credit`.

GRPO as published gives every token of an episode one advantage, its total reward normalised
within the group. Two things are lost that way (issue 53): a term whose spread inflates the
group's std dilutes the outcome's advantage where it has nothing to teach, and a signal about one
decision (which row to call) reaches that decision's token as -A/N_tokens like every other token.
Here each reward's `Credit` (`iapo.rewards.contract`) decides:

    A[i, t] = A_pooled[i]                                  every pooled reward, one group normalisation
            + sum_own   w_r * norm_g(r)[i]      * route_r[i, t]   episode level, its own normalisation
            + sum_own   w_r * norm_g(v_r)[i, t] * route_r[i, t]   turn/token level (baseline: group mean of episode means)
            + sum_raw   w_r * v_r[i, t]         * route_r[i, t]   no baseline (per-token distillation)

over the L_i generated tokens of episode i (`turn_lengths`, the order of the update's completion
mask). With only pooled rewards it is the published scalar broadcast to every token, exactly.
Hand-written: TRL's trainers take one advantage per sequence.
"""

from __future__ import annotations

import re

import torch

from iapo.rewards.contract import WeightedReward, turn_lengths, weights
from iapo.rollout.loop import Episode
from iapo.tools.session import CallClass


def fill_dropped(per_func: torch.Tensor, dropped: torch.Tensor, group_size: int) -> torch.Tensor:
    """(N, F) reward values and (N, F) True where a reward left an episode out -> the values with
    each dropped one replaced by the mean of its group's scored values of that reward (0 if the
    group has none):
    the episode then gets no advantage from that reward, and the group's mean and spread of
    the others stay as they were. Filling 0 instead would hand a dropped penalty term the best
    value in its group."""
    r = per_func.view(-1, group_size, per_func.shape[1])  # (Q, G, F)
    d = dropped.view_as(r)
    kept = (~d).sum(1, keepdim=True)
    mean = torch.where(d, 0.0, r).sum(1, keepdim=True) / kept.clamp(min=1)  # (Q, 1, F); 0 with none kept
    return torch.where(d, mean.expand_as(r), r).view_as(per_func)


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """(Q*G,) rewards, grouped consecutively -> (Q*G,) advantages r - mean_g [/ (std_g + eps)].
    A group whose rewards are all equal gets zero advantage (no division by zero)."""
    r = rewards.view(-1, group_size)
    adv = r - r.mean(1, keepdim=True)
    if scale:
        adv = adv / (r.std(1, keepdim=True) + eps)  # unbiased std, as TRL
    return adv.flatten()


def route(ep: Episode, tokens: str) -> torch.Tensor:
    """(L,) 1.0 on the generated tokens a routed advantage reaches: all, the turns that made a tool
    call (parsed or not), or the answer turn."""
    keep = {
        "all": lambda t: True,
        "calls": lambda t: t.call_class is not None,
        "answer": lambda t: t.turn.kind == "answer",
    }[tokens]
    return torch.cat(
        [torch.full((n,), float(keep(t))) for t, n in zip(ep.turns, turn_lengths(ep), strict=True)] or [torch.zeros(0)]
    ).double()


def token_advantages(
    episodes: list[Episode],
    rewards: list[WeightedReward],
    values: torch.Tensor,
    dropped: torch.Tensor,
    dense: dict[int, list[torch.Tensor | None]],
    group_size: int,
    scale: bool = True,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per episode (L_i,) float64 advantages of its generated tokens (module docstring), and the
    (N,) weighted total of every reward (dense ones by their episode mean), the logged reward.
    values, dropped: (N, F) from `score`; dense: its turn- and token-level values."""
    w = weights(rewards)  # (F,)
    filled = fill_dropped(values, dropped, group_size)  # (N, F)
    pooled = torch.tensor([r.pooled for r in rewards])
    a_pool = group_advantages(filled[:, pooled] @ w[pooled], group_size, scale) if pooled.any() else None
    advs = [torch.zeros(sum(turn_lengths(e)), dtype=torch.float64) for e in episodes]
    if a_pool is not None:
        advs = [a + a_pool[i] for i, a in enumerate(advs)]
    for f, r in enumerate(rewards):
        if r.pooled or r.weight == 0:
            continue
        if f not in dense:  # one value per episode
            col = filled[:, f] if r.credit.advantage == "raw" else group_advantages(filled[:, f], group_size, scale)
            col = torch.where(dropped[:, f], 0.0, col) if r.credit.advantage == "raw" else col
            per_ep = [torch.full_like(a, float(col[i])) for i, a in enumerate(advs)]
        elif r.credit.advantage == "raw":
            per_ep = [torch.zeros_like(a) if v is None else v for a, v in zip(advs, dense[f], strict=True)]
        else:  # own: baseline and scale from the group's episode means
            m = filled[:, f].view(-1, group_size)  # (Q, G)
            base, std = m.mean(1).repeat_interleave(group_size), m.std(1).repeat_interleave(group_size)
            per_ep = [
                torch.zeros_like(a) if v is None else (v - base[i]) / ((std[i] + 1e-4) if scale else 1.0)
                for i, (a, v) in enumerate(zip(advs, dense[f], strict=True))
            ]
        advs = [a + r.weight * v * route(e, r.credit.tokens) for a, v, e in zip(advs, per_ep, episodes, strict=True)]
    return advs, filled @ w


def token_grid(advs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Per-row (L_i,) advantages -> (B, T) on the positions where `mask` (B, T) is 1, in order."""
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    for i, a in enumerate(advs):
        m = mask[i].bool()
        if int(m.sum()) != len(a):
            raise ValueError(f"row {i}: {len(a)} token advantages for {int(m.sum())} masked positions")
        out[i, m] = a.to(out)
    return out


ROWS = re.compile(r'"rows"\s*:\s*\[\s*"')


def decision_token(ep: Episode, turn: int, tokenizer) -> int | None:
    """Index, among the episode's generated tokens, of the first token of the first row name in
    `turn`'s call (the token that decides where the call looks); None if the call names no row."""
    t = ep.turns[turn]
    hit = ROWS.search(t.text)
    if hit is None:
        return None
    at, k = hit.end(), 0
    while k < len(t.ids) and len(tokenizer.decode(t.ids[: k + 1], skip_special_tokens=False)) <= at:
        k += 1
    return sum(turn_lengths(ep)[:turn]) + k if k < len(t.ids) else None


def decision_stats(
    episodes: list[Episode], advs: list[torch.Tensor], values: torch.Tensor, rewards: list[WeightedReward], tokenizer
) -> dict[str, float]:
    """Which way each method pushes the decision of where to look, on questions that name a
    distractor: the mean advantage on the row token of the first valid call, for calls on the
    evidence row (useful) and on the decoy row (`credit/row_token_adv/{useful,decoy}`), and the
    mean value of each reward for episodes whose first valid call is useful or a decoy
    (`credit/<reward>/{useful,decoy}`). Nothing where no question names a distractor."""
    by: dict[str, list[tuple[int, float]]] = {"useful": [], "decoy": []}
    for i, e in enumerate(episodes):
        if "decoy" not in e.example.meta:
            continue
        valid = [k for k, t in enumerate(e.turns) if t.call_class in (CallClass.VALID_USEFUL, CallClass.VALID_USELESS)]
        if not valid:
            continue
        t = e.turns[valid[0]]
        kind = "useful" if t.call_class == CallClass.VALID_USEFUL else "decoy" if t.decoy else None
        pos = decision_token(e, valid[0], tokenizer)
        if kind is not None and pos is not None:
            by[kind].append((i, float(advs[i][pos])))
    if not any("decoy" in e.example.meta for e in episodes):
        return {}
    out = {}
    for kind, hits in by.items():
        out[f"credit/row_token_adv/{kind}"] = sum(a for _, a in hits) / len(hits) if hits else float("nan")
        out[f"credit/calls/{kind}"] = float(len(hits))
        rows = [i for i, _ in hits]
        for f, r in enumerate(rewards):
            col = values[rows, f]
            col = col[~col.isnan()]
            out[f"credit/{r.name}/{kind}"] = float(col.mean()) if len(col) else float("nan")
    return out
