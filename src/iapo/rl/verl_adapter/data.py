"""The world in veRL's RL dataset format (parquet rows read by `verl.utils.dataset.RLHFDataset`)
and the tool config its `ToolAgentLoop` loads (`actor_rollout_ref.rollout.multi_turn.tool_config_path`).

A row carries the prompt as chat messages with an `<image>` placeholder, the image as PNG
bytes, the gold answer, and `tools_kwargs`: per tool, the `create_kwargs` that let our veRL
tool open this example's tool session (its layout, evidence and boxes come from the world).
"""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from iapo.data.example import Example
from iapo.provenance import atomic
from iapo.rollout.episode import SYSTEM_PROMPT, ex_image
from iapo.tools.registry import TOOLS

TOOL_CLASS = "iapo.rl.verl_adapter.tool.IAPOVisualTool"


def _png(ex: Example) -> bytes:
    buf = io.BytesIO()
    ex_image(ex).save(buf, format="PNG")
    return buf.getvalue()


def verl_row(ex: Example, split: str, index: int) -> dict:
    """One example as a veRL row. Every tool gets create_kwargs (parquet needs one struct for all
    rows); a tool that does not fit the image kind is refused by the session as in our rollout."""
    tools = list(TOOLS)
    create = {"split": split, "example_id": ex.id}
    return {
        "data_source": f"iapo_world/{ex.family}",
        "agent_name": "tool_agent",
        "prompt": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"<image>{ex.question}"},
        ],
        "images": [{"bytes": _png(ex)}],
        "ability": "visual_tool_use",
        "reward_model": {"style": "rule", "ground_truth": ex.gold},
        "extra_info": {
            "split": split,
            "index": index,
            "metric": ex.metric,
            "need_tools_kwargs": True,
            "tools_kwargs": {name: {"create_kwargs": create} for name in tools},
        },
    }


def tool_config(world: Path, max_calls: int = 3) -> dict:
    """veRL's tool config: every tool of the registry as a native tool backed by our session."""
    return {
        "tools": [
            {
                "class_name": TOOL_CLASS,
                "config": {"type": "native", "world": str(world), "max_calls": max_calls},
                "tool_schema": t.schema(),
            }
            for t in TOOLS.values()
        ]
    }


def export(world, out: Path, splits: tuple[str, ...] = ("train", "val"), limit: int | None = None) -> list[Path]:
    """`out/<split>.parquet` for each split and `out/tool_config.yaml`; files appear whole
    (written to a temporary name, then renamed)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        rows = [verl_row(ex, split, i) for i, ex in enumerate(world.load(split)[:limit])]
        path = out / f"{split}.parquet"
        with atomic(path) as tmp:
            pd.DataFrame(rows).to_parquet(tmp)
        written.append(path)
    cfg = out / "tool_config.yaml"
    cfg.write_text(yaml.safe_dump(tool_config(Path(world.root).resolve()), sort_keys=False))
    return [*written, cfg]
