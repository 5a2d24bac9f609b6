"""Rendering rate of real tables: the WTQ fixture's tables drawn from scratch, and a benchmark
load whose tables are already cached (what a second `iapo eval --bench wtq` pays).

    python bench/render_speed.py [--fixtures tests/fixtures]

Runs unchanged against older versions of `iapo.data.render` (only `render_table(header, rows)`
is called), so before / after rates come from the same script.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from iapo.data.benchmarks import load_benchmark
from iapo.data.render import render_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", type=Path, help="default: tests/fixtures")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    a.fixtures = a.fixtures or Path(__file__).resolve().parents[1] / "tests" / "fixtures"
    tables = []
    for f in sorted((a.fixtures / "wtq" / "csv").glob("*/*.csv")):
        with open(f, encoding="utf-8", newline="") as fh:
            rows = [[c.replace("\n", " ").strip() for c in r] for r in csv.reader(fh)]
        tables.append((rows[0], rows[1:]))
    best = float("inf")
    for _ in range(a.repeat):
        t = time.perf_counter()
        for header, rows in tables:
            render_table(header, rows)
        best = min(best, time.perf_counter() - t)
    cells = sum(len(h) * (len(r) + 1) for h, r in tables)
    print(f"render: {len(tables)} WTQ fixture tables ({cells} cells), {len(tables) / best:.1f} tables/s")
    cache = Path(tempfile.mkdtemp())
    load_benchmark("wtq", a.fixtures / "wtq", cache)  # fills the cache
    t = time.perf_counter()
    got = load_benchmark("wtq", a.fixtures / "wtq", cache)
    dt = time.perf_counter() - t
    print(f"load with a warm cache: {len(got.examples)} questions in {1e3 * dt:.0f} ms")


if __name__ == "__main__":
    main()
