"""What every training loop shares: seeding, metric logs (JSONL + TensorBoard), checkpoints
that make a killed run resume where it stopped, and the step loop itself (`resume`, `run_steps`),
used by vision pretraining, SFT and GRPO alike."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iapo.provenance import atomic
from iapo.store import CKPT, METRICS, keep_metrics

OnProgress = Callable[[str, int, int, dict], None]
"""progress(task, done, total, metrics row): how long jobs (zoo, grids) report to a progress bar."""
log = logging.getLogger(__name__)


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
        self.path = run_dir / METRICS
        run_dir.mkdir(parents=True, exist_ok=True)
        keep_metrics(self.path, lambda r: r.get("step", 0) < resume_step)
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
    """Atomic (`provenance.atomic`): a kill mid-write keeps the last good one."""
    with atomic(run_dir / CKPT) as tmp:
        torch.save({**state, "rng": rng_state(), "saved_at": time.time()}, tmp)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    p = run_dir / CKPT
    if not p.exists():
        return None
    state = torch.load(p, map_location="cpu", weights_only=False)
    set_rng_state(state["rng"])
    return state


def resume(
    run_dir: Path,
    what: str,
    parts: dict[str, Any],
    data_rng: random.Random | None,
    extra: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """The step to start from: 0, or the checkpoint's step after every part (model, optimiser,
    heads: anything with `load_state_dict`, saved under its name), the data RNG (if the loop draws
    as it goes) and `extra(state)`
    are put back (the global RNGs are restored by `load_checkpoint`)."""
    state = load_checkpoint(run_dir)
    if state is None:
        return 0
    for name, part in parts.items():
        part.load_state_dict(state[name])
    if data_rng is not None:
        data_rng.setstate(state["data_rng"])
    if extra is not None:
        extra(state)
    log.info("resumed %s at step %d", what, state["step"])
    return state["step"]


def run_steps(
    run_dir: Path,
    start: int,
    steps: int,
    step: Callable[[int], dict[str, float]],
    snapshot: Callable[[int], dict[str, Any]],
    checkpoint_every: int,
    progress: Callable[[int, int, dict], None] | None = None,
    on_eval: Callable[[int], dict] | None = None,
    eval_every: int = 0,
    stop: Callable[[dict[str, float]], bool] | None = None,
    log_offset: int = 0,
    eval_at_start: bool = False,
    main: bool = True,
    provenance: dict[str, Any] | None = None,
) -> None:
    """The loop every trainer shares (pretraining, SFT, GRPO): `step(k)` does step k and returns
    its metrics row; then evaluation every `eval_every` steps and at the end, one metrics.jsonl
    row (at k + log_offset), progress, an early `stop(row)`, and an atomic checkpoint of
    `snapshot(k + 1)` every `checkpoint_every` steps. Off the main process only `step` runs.
    `eval_at_start`: a fresh run first logs `on_eval(0)` as row 0 (the policy before training).
    `provenance` (`iapo.provenance.record`) goes into every checkpoint."""
    mlog = MetricLog(run_dir, resume_step=start + log_offset if start else 0) if main else None
    if mlog is not None and eval_at_start and on_eval is not None and eval_every and start == 0:
        t0 = time.perf_counter()
        row0 = on_eval(0)
        mlog.log(0, {**row0, "time/eval_s": time.perf_counter() - t0})
    for k in range(start, steps):
        row = step(k)
        if not main:
            continue
        if on_eval is not None and eval_every and ((k + 1) % eval_every == 0 or k + 1 == steps):
            t0 = time.perf_counter()
            row.update(on_eval(k + 1))
            row["time/eval_s"] = time.perf_counter() - t0
        mlog.log(k + log_offset, {n: (v if math.isfinite(v) else float("nan")) for n, v in row.items()})
        if progress:
            progress(k + 1, steps, row)
        if stop is not None and stop(row):
            break
        if (k + 1) % checkpoint_every == 0 and k + 1 < steps:
            save_checkpoint(run_dir, {"step": k + 1, **snapshot(k + 1), "provenance": provenance})
    if mlog is not None:
        mlog.close()
