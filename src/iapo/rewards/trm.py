"""A learned tool-call reward model (the TRM baseline).

TRM-style baselines train a model to score each tool call of a trajectory. Ours scores a call
from what a text reward model sees: the question, the image kind and the names it shows (its
layout), earlier calls, and the call text. A small MLP over features of that text is trained on
calls of the world labelled good (`valid_useful`) or bad (every other class) by the world's
call classifier; candidates are the calls of valid paths plus perturbed calls (other names,
other tools, broken JSON). The reward of an episode is the mean score of its calls.

Why features and not a transformer judge: a judge must learn to copy-compare names, which tiny
models learn slowly (see `iapo.supervised.sft`); a real judge model directory is the scale-out path.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from iapo.data.example import Example
from iapo.errors import DataError
from iapo.rollout.loop import Episode
from iapo.store import TRM_REPORT, TRM_WEIGHTS
from iapo.tools.registry import TOOLS
from iapo.tools.session import CallClass, ToolSession
from iapo.tools.syntax import Turn, format_tool_call, parse_turn

FAMILIES = ("mask", "draw", "highlight", "draw_box", "crop")
QUOTED = re.compile(r'"([^"]+)"')


def _family(name: str) -> str:
    for f in ("draw_box", "crop"):
        if name == f:
            return f
    return name.rsplit("_", 1)[-1]


def _names(ex: Example) -> set[str]:
    lay = ex.layout
    return {*lay.rows_bbox, *lay.columns_bbox, *lay.x_values_bbox, *lay.y_values_bbox}


def call_key(name: str, arguments: object) -> tuple[str, str]:
    return name, json.dumps(arguments, sort_keys=True)


def features(ex: Example, turn: Turn, earlier: list[tuple[str, str]]) -> list[float]:
    """What a text reward model can judge a call by. `earlier` = (name, canonical args) pairs."""
    if turn.kind != "tool_call" or turn.name is None:
        return [0.0] * (9 + len(FAMILIES))
    tool = TOOLS.get(turn.name)
    args = turn.arguments if isinstance(turn.arguments, dict) else {}
    values = [v for vs in args.values() if isinstance(vs, list) for v in vs if isinstance(v, str)]
    asked = set(QUOTED.findall(ex.question))
    present = _names(ex)
    key = call_key(turn.name, args)
    fam = _family(turn.name) if tool else ""
    return [
        1.0,
        float(tool is not None),
        float(tool is not None and ex.layout.kind in tool.kinds),
        float(tool is not None and set(args) <= set(tool.params)),
        sum(v in present for v in values) / max(1, len(values)),
        sum(v in asked for v in values) / max(1, len(values)),
        len(asked & set(values)) / max(1, len(asked)),
        min(len(values), 8) / 8,
        float(key in earlier),
        *[float(fam == f) for f in FAMILIES],
    ]


N_FEATURES = 9 + len(FAMILIES)


class TRM(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, F) -> (N,) logits
        return self.net(x).squeeze(-1)


# --- data ------------------------------------------------------------------------------------------


def _perturb(ex: Example, call: dict, rng: random.Random) -> str:
    """A plausible wrong call (or broken text) near a good one."""
    names = sorted(_names(ex))
    kind = rng.randrange(4)
    if kind == 0:  # other names
        args = {k: rng.sample(names, min(len(v), len(names))) for k, v in call["arguments"].items()}
        return format_tool_call(call["name"], args)
    if kind == 1:  # another tool, same arguments
        return format_tool_call(rng.choice(sorted(TOOLS)), call["arguments"])
    if kind == 2:  # a name that is not in the image
        args = {k: [*v[:-1], rng.choice("0123456789") + "x"] for k, v in call["arguments"].items()}
        return format_tool_call(call["name"], args)
    return format_tool_call(call["name"], call["arguments"])[:-12]  # truncated JSON


def labelled_calls(examples: list[Example], seed: int = 0, negatives: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, F), labels (N,)) from valid-path calls and their perturbations, labelled by
    replaying them in a pixel-free tool session."""
    rng = random.Random(seed)
    xs, ys = [], []
    for ex in examples:
        if not ex.valid_paths or ex.evidence is None:
            continue
        path = rng.choice(ex.valid_paths)
        prefix_len = rng.randrange(len(path))  # judge a call after a valid prefix
        sess = ToolSession(None, ex.layout, frozenset(ex.evidence), frozenset(ex.context), max_calls=8)
        earlier = []
        for c in path[:prefix_len]:
            sess.step(parse_turn(format_tool_call(c["name"], c["arguments"])))
            earlier.append(call_key(c["name"], c["arguments"]))
        call = path[prefix_len]
        texts = [format_tool_call(call["name"], call["arguments"])] + [
            _perturb(ex, call, rng) for _ in range(negatives)
        ]
        for text in texts:
            trial = ToolSession(None, sess.layout, sess.evidence, sess.context, max_calls=8)
            trial.units, trial.history = sess.units, list(sess.history)
            turn = parse_turn(text)
            xs.append(features(ex, turn, earlier))
            ys.append(float(turn.kind == "tool_call" and trial.step(turn).cls == CallClass.VALID_USEFUL))
    return torch.tensor(xs), torch.tensor(ys)


# --- training --------------------------------------------------------------------------------------


@dataclass
class TRMReport:
    train_accuracy: float
    heldout_accuracy: float
    heldout_positive_rate: float
    n_train: int
    n_heldout: int


TRM_STEPS = 600  # full-batch optimisation steps of the tool-call reward model: the one default


def train_trm(
    train: list[Example], heldout: list[Example], steps: int = TRM_STEPS, seed: int = 0
) -> tuple[TRM, TRMReport]:
    torch.manual_seed(seed)
    x, y = labelled_calls(train, seed)
    xv, yv = labelled_calls(heldout, seed + 1)
    model = TRM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = ((model(x) > 0).float() == y).float().mean().item()
        vacc = ((model(xv) > 0).float() == yv).float().mean().item()
    return model, TRMReport(acc, vacc, yv.mean().item(), len(y), len(yv))


def save_trm(model: TRM, report: TRMReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / TRM_WEIGHTS)
    (out / TRM_REPORT).write_text(json.dumps(report.__dict__, indent=1))


def load_trm(path: Path) -> TRM:
    f = path / TRM_WEIGHTS if path.is_dir() else path
    if not f.exists():
        raise DataError(f"{f}: no tool-call reward model here (train one with `iapo trm train`)")
    model = TRM()
    model.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
    return model.eval()


class TRMReward:
    """Mean TRM score of an episode's calls; `no_call` for episodes without a call."""

    __name__ = "trm"

    def __init__(self, model: TRM, no_call: float = 0.0):
        self.model, self.no_call = model, no_call

    @torch.no_grad()
    def __call__(self, prompts: list[str], completions: list[str], episodes: list[Episode], **_) -> list[float]:
        out = []
        for ep in episodes:
            earlier: list[tuple[str, str]] = []
            feats = []
            for t in ep.turns:
                if t.call_class is None:
                    continue
                feats.append(features(ep.example, t.turn, earlier))
                if t.turn.kind == "tool_call" and t.turn.name is not None:
                    earlier.append(call_key(t.turn.name, t.turn.arguments))
            if not feats:
                out.append(self.no_call)
            else:
                out.append(torch.sigmoid(self.model(torch.tensor(feats))).mean().item())
        return out
