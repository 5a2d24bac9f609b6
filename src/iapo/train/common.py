"""What every training loop shares: seeding, metric logs (JSONL + TensorBoard), and checkpoints
that make a killed run resume where it stopped."""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT = "checkpoint.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def cosine_lr(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """1) linear warmup, 2) cosine decay to `floor * peak`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


class MetricLog:
    """Namespaced scalars to `metrics.jsonl` and TensorBoard. On resume, rows past the resumed
    step are dropped so the file holds one row per step."""

    def __init__(self, run_dir: Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            rows = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
            keep = [r for r in rows if r.get("step", 0) < resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step or None)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if v is not None and math.isfinite(float(v)):
                    self.tb.add_scalar(k, float(v), step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Atomic: write to a temp file then rename, so a kill mid-write keeps the last good one."""
    tmp = run_dir / (CKPT + ".tmp")
    torch.save({**state, "rng": rng_state(), "saved_at": time.time()}, tmp)
    os.replace(tmp, run_dir / CKPT)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    p = run_dir / CKPT
    if not p.exists():
        return None
    state = torch.load(p, map_location="cpu", weights_only=False)
    set_rng_state(state["rng"])
    return state
