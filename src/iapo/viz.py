"""`iapo attribute`: one episode's attribution, as a heat map over every image's vision tokens,
the component shares, and the text tokens that matter most."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from iapo.attribution import attribute_episodes
from iapo.data.example import Example
from iapo.errors import DataError
from iapo.models.build import load
from iapo.rollout.episode import COMPONENTS, Segment, assistant_segment, prompt_segments, tool_output_segment
from iapo.tools.protocol import parse_turn
from iapo.tools.session import ToolSession
from iapo.world.dataset import World


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
        segs.append(tool_output_segment(r.image, r.message))
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


def attribute_episode_file(
    model_dir: Path, episode: Path, world_dir: Path | None, out: Path, n_steps: int = 32, turn: int = -1
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
    (turns,) = attribute_episodes(model, proc, [segs], "all", n_steps)
    ta = turns[turn]
    plot(ta, proc, segs, ex.question, out)
    return {c: float(p) for c, p in zip(COMPONENTS, ta.p, strict=True)}


def plot(ta, proc, segs: list[Segment], question: str, out: Path) -> None:
    enc, attr = ta.encoded, ta.token_attr.numpy()
    images = [im for s in segs for im in s.images]
    grid = enc.image_grid_thw
    img_pos = np.nonzero((enc.input_ids == proc.image_token_id).numpy())[0]
    n_img = len(images)
    fig, axes = plt.subplots(1, n_img + 2, figsize=(3.2 * (n_img + 2), 3.6))
    k = 0
    scale = np.abs(attr).max() or 1.0
    for i, im in enumerate(images):
        h, w = int(grid[i, 1]) // 2, int(grid[i, 2]) // 2
        a = attr[img_pos[k : k + h * w]].reshape(h, w)
        k += h * w
        ax = axes[i]
        ax.imshow(im.resize((w * 28, h * 28)))
        ax.imshow(np.kron(a, np.ones((28, 28))), cmap="coolwarm", vmin=-scale, vmax=scale, alpha=0.55)
        ax.set_title("image" if i == 0 else f"tool output {i}", fontsize=9)
        ax.axis("off")
    ax = axes[n_img]
    ax.barh(COMPONENTS[::-1], ta.p.numpy()[::-1])
    ax.set_xlim(0, 1)
    ax.set_title(f"p_c, turn {ta.turn} (completeness err {ta.relative_error:.2f})", fontsize=9)
    text_pos = [j for j in range(len(enc)) if j not in set(img_pos.tolist()) and j < len(attr)]
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
