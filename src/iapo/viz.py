"""Episodes as pictures: `iapo attribute` (one episode's attribution as a heat map over every
image's vision tokens, the component shares and the text tokens that matter most) and the
report's episode gallery (the SFT student, every method and the teacher's own episode on the
same test questions, with the component shares and the region shares of each)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from iapo.attribution import OTHER, AttributionSettings, TurnAttribution, attribute_episodes, describe, regions_of
from iapo.attribution.regions import turn_regions
from iapo.data.example import Example
from iapo.errors import DataError
from iapo.eval.evaluate import episode_record
from iapo.models.build import load
from iapo.report.load import method_configs
from iapo.rewards.method import MethodConfig
from iapo.rollout.episode import COMPONENTS, Segment, assistant_segment, prompt_segments, tool_output_segment
from iapo.rollout.loop import RolloutConfig, rollout
from iapo.store import ExperimentDir, read_json
from iapo.tools.session import ToolSession
from iapo.tools.syntax import parse_turn
from iapo.world.dataset import World, example_image


def replay(ex: Example, turns: list[str]) -> list[Segment]:
    """Rebuild an episode's segments from its turn texts, re-running its tool calls."""
    segs = prompt_segments(ex)
    sess = ToolSession(segs[2].images[0], ex.layout, frozenset(ex.evidence or []), frozenset(ex.context))
    for k, text in enumerate(turns):
        segs.append(assistant_segment(text))
        turn = parse_turn(text)
        if turn.kind == "answer" or k == len(turns) - 1:
            break
        r = sess.step(turn)
        segs.append(tool_output_segment(r.image, r.message, r.view))
    return segs


def _read_record(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: episode file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not JSON ({e})") from None
    if isinstance(data, dict) and "episodes" in data:  # a whole `iapo eval --out` result: its first episode
        data = data["episodes"][0] if data["episodes"] else None
    if not isinstance(data, dict) or not {"id", "turns"} <= set(data):
        raise DataError(f"{path}: an episode needs keys 'id' and 'turns' (and 'split', default val)")
    return data


HEATMAP_STEPS = 32
"""Heat maps need per-token attribution: IG (trapezoid rule, this many nodes by default) whatever
the run's reward estimator; `iapo attribute` and the report's gallery both use it."""


def token_ig(n_steps: int = HEATMAP_STEPS) -> AttributionSettings:
    return AttributionSettings(estimator="ig", n_steps=n_steps, rule="trapezoid")


def attribute_episode_file(
    model_dir: Path, episode: Path, world_dir: Path | None, out: Path, n_steps: int = HEATMAP_STEPS, turn: int = -1
) -> dict[str, float]:
    rec = _read_record(episode)
    if world_dir is None:
        raise DataError("--world is needed to rebuild the episode's images")
    split = rec.get("split", "val")
    ex = next((e for e in World(world_dir).load(split) if e.id == rec["id"]), None)
    if ex is None:
        raise DataError(f"{episode}: example {rec['id']!r} is not in split {split!r} of {world_dir}")
    model, proc = load(model_dir)
    segs = replay(ex, rec["turns"])
    (turns,) = attribute_episodes(model, proc, [segs], "all", token_ig(n_steps))
    ta = turns[turn]
    plot(ta, proc, segs, ex.question, out, ex if ex.grid is not None else None)
    return {c: float(p) for c, p in zip(COMPONENTS, ta.p, strict=True)}


def image_heat(ta: TurnAttribution, proc) -> list[np.ndarray]:
    """The scored turn's IG summed per vision token, one (h, w) map per image of the episode."""
    attr = ta.token_attr.numpy()
    grid = ta.encoded.image_grid_thw
    pos = np.nonzero((ta.encoded.input_ids == proc.image_token_id).numpy())[0]
    maps, k = [], 0
    for g in grid if grid is not None else []:
        h, w = int(g[1]) // 2, int(g[2]) // 2  # merged 2x2 patches
        maps.append(attr[pos[k : k + h * w]].reshape(h, w))
        k += h * w
    return maps


def _show(ax, im, heat: np.ndarray, scale: float, title: str) -> None:
    h, w = heat.shape
    ax.imshow(im.resize((w * 28, h * 28)))
    ax.imshow(np.kron(heat, np.ones((28, 28))), cmap="coolwarm", vmin=-scale, vmax=scale, alpha=0.55)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def plot(ta, proc, segs: list[Segment], question: str, out: Path, ex: Example | None = None) -> None:
    """Heat maps of every image, the component shares, the top text tokens and, for a world
    example, the region shares on the original image."""
    enc, attr = ta.encoded, ta.token_attr.numpy()
    images = [im for s in segs for im in s.images]
    img_pos = set(np.nonzero((enc.input_ids == proc.image_token_id).numpy())[0].tolist())
    n_img = len(images)
    extra = 1 if ex is not None else 0
    fig, axes = plt.subplots(1, n_img + 2 + extra, figsize=(3.2 * (n_img + 2 + extra), 3.6))
    if ex is not None:
        region_map(axes[-1], ex, turn_regions(ta, segs, ex.layout, int(proc.merge)))
    scale = np.abs(attr).max() or 1.0
    for i, (im, heat) in enumerate(zip(images, image_heat(ta, proc), strict=True)):
        _show(axes[i], im, heat, scale, "image" if i == 0 else f"tool output {i}")
    ax = axes[n_img]
    ax.barh(COMPONENTS[::-1], ta.p.numpy()[::-1])
    ax.set_xlim(0, 1)
    ax.set_title(f"p_c, turn {ta.turn} (completeness err {ta.relative_error:.2f})", fontsize=9)
    text_pos = [j for j in range(len(enc)) if j not in img_pos and j < len(attr)]
    top = sorted(text_pos, key=lambda j: -abs(attr[j]))[:12]
    ax = axes[n_img + 1]
    labels = [repr(proc.tokenizer.decode([int(enc.input_ids[j])]))[:18] for j in top]
    ax.barh(labels[::-1], [attr[j] for j in top][::-1], color="gray")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("top text tokens (IG)", fontsize=9)
    fig.suptitle(question[:120], fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


# --- the report's episode gallery -------------------------------------------------------------


def pick_questions(records: dict[str, dict[str, dict]], n: int) -> list[str]:
    """Test questions where the policies disagree most (some right, some wrong), then by id.
    records: policy -> question id -> episode record."""
    common = sorted(set.intersection(*(set(r) for r in records.values())))

    def spread(q: str) -> tuple:
        right = [recs[q]["correct"] > 0 for recs in records.values()]
        return (-min(sum(right), len(right) - sum(right)), q)

    return sorted(common, key=spread)[:n]


def region_map(ax, ex: Example, shares: dict[str, float] | None, title: str = "region shares") -> None:
    """The original image with each region's share painted over its box (the regions of
    `iapo.attribution.regions`: where in the original the turn's image attribution falls,
    tool outputs mapped back through their geometry)."""
    im = example_image(ex)
    ax.imshow(im)
    ax.axis("off")
    ax.set_title(title, fontsize=8)
    if not shares:
        return
    w, h = im.size
    top = max(shares.values()) or 1.0
    for name, (x0, y0, x1, y1) in regions_of(ex.layout).items():
        v = shares.get(name, 0.0)
        if v > 0:
            ax.add_patch(plt.Rectangle((x0 * w, y0 * h), (x1 - x0) * w, (y1 - y0) * h, color="red",
                                       alpha=0.7 * v / top, lw=0))  # fmt: skip
    ax.text(1, -0.02, f"other {shares.get(OTHER, 0.0):.2f}", transform=ax.transAxes, fontsize=6, ha="right", va="top")


def gallery_figure(
    question: str, rows: list[tuple[str, dict, list[Segment], TurnAttribution | None]], proc_of, out: Path,
    ex: Example | None = None, bars: dict[str, tuple[torch.Tensor, str]] | None = None,
):  # fmt: skip
    """One question: a row per policy with each image of its episode (attribution heat map of the
    final turn), its turns, answer and right / wrong, its component shares and, for a world
    example, its region shares on the original image (the teacher's row is what its own
    target says)."""
    n_img = max(sum(len(s.images) for s in segs) for _, _, segs, _ in rows)
    n_extra = 3 if ex is not None else 2
    fig, axes = plt.subplots(
        len(rows), n_img + n_extra, figsize=(2.2 * n_img + 7.5 + 2.2 * (n_extra - 2), 2.3 * len(rows)), squeeze=False,
        gridspec_kw={"width_ratios": [1] * n_img + [3.2, 1.6] + [1] * (n_extra - 2)},
    )  # fmt: skip
    for r, (name, rec, segs, ta) in enumerate(rows):
        images = [im for s in segs for im in s.images]
        heats = image_heat(ta, proc_of(name)) if ta is not None else [np.zeros((1, 1))] * len(images)
        scale = max((float(np.abs(h).max()) for h in heats), default=1.0) or 1.0
        for i in range(n_img):
            if i < len(images):
                _show(axes[r, i], images[i], heats[i], scale, "image" if i == 0 else f"tool output {i}")
            else:
                axes[r, i].axis("off")
        ax = axes[r, n_img]
        ax.axis("off")
        right = rec["correct"] > 0
        turns = [textwrap.shorten(t, 70) for t in rec["turns"]]
        verdict = f"answer {rec['answer']!r}: {'right' if right else 'wrong'} (gold {rec['gold']!r})"
        ax.text(0, 0.5, "\n".join([name, *turns, verdict]), fontsize=7, va="center", family="monospace",
                color="darkgreen" if right else "darkred", wrap=True)  # fmt: skip
        ax = axes[r, n_img + 1]
        p, label = (bars or {}).get(name) or ((ta.p, "token IG") if ta is not None else (None, ""))
        if p is not None:
            ax.barh(COMPONENTS[::-1], p.numpy()[::-1])
            ax.set_xlim(0, 1)
            ax.tick_params(labelsize=7)
            ax.set_title(f"final-turn shares ({label})", fontsize=8)
        else:
            ax.axis("off")
        if ex is not None:
            merge = int(proc_of(name).merge)
            shares = turn_regions(ta, segs, ex.layout, merge) if ta is not None else None
            region_map(axes[r, n_img + 2], ex, shares)
    fig.suptitle(question[:140], fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def gallery_roles(exp: ExperimentDir, methods: list[str]) -> tuple[str, list[str]]:
    """(the student role RL started from, the teacher roles the methods name) of an experiment,
    from its record and its runs' own (a run names its teacher; the zoo holds the roles)."""
    meta = exp.read_record()
    student = (meta.get("config") or {}).get("student", "student")
    configs = method_configs(exp.path, meta)
    teachers = [MethodConfig.model_validate(configs.get(m) or {}) for m in methods]
    return student, list(dict.fromkeys(t.teacher for t in teachers if t.needs_teacher))


def episode_gallery(
    exp_dir: Path, methods: list[str], n_questions: int = 3, n_steps: int = HEATMAP_STEPS, out: Path | None = None
) -> list[Path]:
    """`gallery_<k>.png` in `out` (default `exp_dir`): the SFT student and seed 0 of each method on
    the same test questions (where they disagree most), and each teacher the methods name on its
    own episode; the student and teachers are the experiment's own roles. Heat maps are token IG
    (`token_ig`); the component bars use one estimator for every row (the library default, so
    they compare). Needs the world, zoo and saved policies of the run; returns [] when they are
    missing."""
    exp = ExperimentDir(exp_dir)
    zoo = exp.first_zoo()  # a grid over several zoos: its first zoo
    student, teachers = gallery_roles(exp, methods)
    runs = {"sft": exp.run("sft", zoo.seed, None), **{m: exp.run(m, zoo.seed, 0) for m in methods}}
    policies = {"sft": zoo.role(student), **{m: runs[m].policy for m in methods}}
    if not exp.world.is_dir() or not all(p.is_dir() for p in policies.values()) or \
            not all(runs[m].result.exists() for m in policies):  # fmt: skip
        return []
    records = {}
    for m in policies:
        eps = read_json(runs[m].result).get("episodes", {})
        split = sorted(k for k in eps if k.startswith("test"))[:1]
        records[m] = {e["id"]: e for k in split for e in eps[k]}
    if not all(records.values()):
        return []
    qs = pick_questions(records, n_questions)
    examples = {e.id: e for split in {records["sft"][q]["split"] for q in qs} for e in World(exp.world).load(split)}
    models = {m: load(p) for m, p in policies.items()}
    for t in reversed(teachers):  # each teacher answers itself: what its teacher_own targets are of
        if (zoo.role(t) / "config.json").exists():
            models = {f"{t} (own episode)": load(zoo.role(t)), **models}
    bars_by = AttributionSettings()
    (out or exp_dir).mkdir(parents=True, exist_ok=True)
    outs = []
    for k, q in enumerate(qs):
        ex = examples[q]
        rows, bars = [], {}
        for m, (model, proc) in models.items():
            if m in records:
                rec = records[m][q]
                segs = replay(ex, rec["turns"])
            else:
                (ep,) = rollout(model, proc, [ex], RolloutConfig(greedy=True))
                rec = episode_record(ep, ep.correct)
                segs = ep.segments
            (turns,) = attribute_episodes(model, proc, [segs], "final", token_ig(n_steps))
            rows.append((m, rec, segs, turns[-1] if turns else None))
            (own,) = attribute_episodes(model, proc, [segs], "final", bars_by)  # one estimator for every row
            if own:
                bars[m] = (own[-1].p, describe(bars_by))
        path = (out or exp_dir) / f"gallery_{k}.png"
        gallery_figure(ex.question, rows, lambda m: models[m][1], path, ex if ex.grid is not None else None, bars)
        outs.append(path)
    return outs
