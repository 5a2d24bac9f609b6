"""A PNG gallery of world examples: the image, then the output of each call of a valid path."""

from __future__ import annotations

import json
import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from iapo.data.example import Example
from iapo.tools.registry import run_tool
from iapo.world.dataset import example_image


def _call_text(call: dict) -> str:
    args = ", ".join(f"{k}={json.dumps(v)}" for k, v in call["arguments"].items())
    return f"{call['name']}({args})"


def write_gallery(examples: list[Example], out: Path, seed: int = 0, max_steps: int = 2) -> Path:
    """One row per example: image, then each tool output along one valid path (drawn at random)."""
    rng = random.Random(seed)
    cols = 1 + max_steps
    fig, axes = plt.subplots(len(examples), cols, figsize=(3.3 * cols, 3.0 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples, strict=True):
        image, layout = example_image(ex), ex.layout
        path = rng.choice(ex.valid_paths) if ex.valid_paths else []
        row[0].imshow(image)
        row[0].set_title(
            f"[{ex.family}] {ex.question}\nanswer: {ex.answer}   ({len(ex.valid_paths)} valid paths)",
            fontsize=7,
            loc="left",
        )
        for j in range(1, cols):
            ax = row[j]
            if j <= len(path):
                image, layout = run_tool(image, layout, path[j - 1]["name"], path[j - 1]["arguments"])
                ax.imshow(image)
                ax.set_title(f"{j}. {_call_text(path[j - 1])}", fontsize=6, loc="left")
            ax.axis("off")
        row[0].axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
