"""How long building SFT batches takes (executing each demonstration's tool path, rendering and
encoding its images) against the training step itself, and what `data_workers` buy.

    python bench/sft_data.py [--steps 20] [--batch 32] [--workers 2]

Measured side by side in one run: seconds per batch built in the main process, per batch
delivered by a DataLoader with N workers, and per forward + backward of the tiny student on this
machine's CPU. On a GPU the step shrinks to ~0.1 s while building stays on the CPU: that is where
the workers matter (research/reading/README.md, section 4).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import tiny_setup
from iapo.models.build import load
from iapo.store import ZooDir
from iapo.supervised.sft import _StageBatches, completion_loss, plan_step
from iapo.supervised.zoo import ZooSFTConfig
from iapo.world import World


def batches_per_s(dataset: _StageBatches, workers: int) -> float:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None
    )
    t = time.perf_counter()
    for _ in loader:
        pass
    return (time.perf_counter() - t) / len(dataset)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    world, zoo = tiny_setup(Path(tempfile.gettempdir()) / "iapo_bench_tiny")
    train = World(world).load("train")
    model, proc = load(ZooDir(zoo).role("student"))
    cfg = ZooSFTConfig(batch_size=a.batch)
    rng = random.Random(0)
    data = _StageBatches("multimodal", [plan_step("multimodal", train, rng, cfg) for _ in range(a.steps)], proc, False)
    serial = batches_per_s(data, 0)
    parallel = batches_per_s(data, a.workers)
    batch = data[0]
    t = time.perf_counter()
    for _ in range(3):
        completion_loss(model, batch).backward()
    step = (time.perf_counter() - t) / 3
    print(f"batch of {a.batch} demonstrations, {a.steps} batches, torch threads {torch.get_num_threads()}")
    print(f"build in the main process : {serial:.3f} s/batch")
    print(f"build with {a.workers} workers      : {parallel:.3f} s/batch  (speed-up {serial / parallel:.2f}x)")
    print(
        f"forward + backward (CPU)  : {step:.3f} s/step  (building is {serial / (serial + step):.0%} of a serial step)"
    )


if __name__ == "__main__":
    main()
