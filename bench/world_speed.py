"""How fast `iapo world` writes training examples (issue: 10,000 in under a minute on 2 cores).

    python bench/world_speed.py [--n 10000] [--workers 2]

Prints examples/s for 1 worker and for N workers, measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from iapo.world import WorldConfig, write_world


def run(n: int, workers: int) -> float:
    cfg = WorldConfig(train=n, val=0, test_per_family=0, ood=0)
    out = Path(tempfile.mkdtemp()) / "w"
    t = time.perf_counter()
    write_world(cfg, out, workers=workers)
    dt = time.perf_counter() - t
    shutil.rmtree(out.parent)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    t1 = run(a.n, 1)
    tn = run(a.n, a.workers)
    print(f"1 worker : {a.n} examples in {t1:6.1f}s = {a.n / t1:6.0f}/s")
    print(f"{a.workers} workers: {a.n} examples in {tn:6.1f}s = {a.n / tn:6.0f}/s  (speed-up {t1 / tn:.2f}x)")
    print(f"goal: 10,000 in < 60 s -> {'met' if 10000 / (a.n / tn) < 60 else 'MISSED'}")


if __name__ == "__main__":
    main()
