"""What every training loop shares: seeding, metric logs (JSONL + TensorBoard), timed
evaluations, checkpoints that make a killed run resume where it stopped (`resume`), and the
supervised step loop (`run_steps`: vision pretraining and SFT); GRPO's loop uses the same pieces
in one function that reads top to bottom (`iapo.rl.grpo.train_grpo`)."""

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
from iapo.store import RunDir, keep_metrics

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
        run = RunDir(run_dir)
        self.path = run.metrics
        run_dir.mkdir(parents=True, exist_ok=True)
        keep_metrics(self.path, lambda r: r.get("step", 0) < resume_step)
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run.tensorboard), purge_step=resume_step or None)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """One row; a non-finite value is written as NaN (JSON has no infinity)."""
        row = {"step": step, **{k: (float(v) if math.isfinite(float(v)) else math.nan) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if v is not None and math.isfinite(float(v)):
                    self.tb.add_scalar(k, float(v), step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def timed_eval(on_eval: Callable[[int], dict], step: int) -> dict[str, float]:
    """`on_eval(step)`'s row with its wall time (`time/eval_s`)."""
    t0 = time.perf_counter()
    row = on_eval(step)
    return {**row, "time/eval_s": time.perf_counter() - t0}


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Atomic (`provenance.atomic`): a kill mid-write keeps the last good one."""
    with atomic(RunDir(run_dir).checkpoint) as tmp:
        torch.save({**state, "rng": rng_state(), "saved_at": time.time()}, tmp)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    p = RunDir(run_dir).checkpoint
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
    provenance: dict[str, Any] | None = None,
) -> None:
    """The supervised loop (vision pretraining, SFT stages): `step(k)` does step k and returns its
    metrics row; then evaluation every `eval_every` steps and at the end, one metrics.jsonl row,
    progress, an early `stop(row)` (the progress bar then completes: the stage is done, not
    stalled), and an atomic checkpoint of `snapshot(k + 1)` every `checkpoint_every` steps.
    `provenance` (`iapo.provenance.record`) goes into every checkpoint. GRPO writes its own loop
    with the same pieces (`iapo.rl.grpo.train_grpo`)."""
    mlog = MetricLog(run_dir, resume_step=start)
    for k in range(start, steps):
        row = step(k)
        if on_eval is not None and eval_every and ((k + 1) % eval_every == 0 or k + 1 == steps):
            row.update(timed_eval(on_eval, k + 1))
        mlog.log(k, row)
        if stop is not None and stop(row):
            log.info("%s: stopped at step %d of %d (its target reached)", run_dir, k + 1, steps)
            if progress:
                progress(steps, steps, row)
            break
        if progress:
            progress(k + 1, steps, row)
        if (k + 1) % checkpoint_every == 0 and k + 1 < steps:
            save_checkpoint(run_dir, {"step": k + 1, **snapshot(k + 1), "provenance": provenance})
    mlog.close()
