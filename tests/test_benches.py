"""Benches that cannot rot silently: the cheap ones run for real at their smallest size (each in
its own process, as `python bench/X.py` runs: a bench sets torch's threads), not only `--help`
(tests/test_scripts.py). Their timings are not asserted: these machines are noisy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMALLEST = {  # bench -> (arguments, what its last line says)
    "grpo_step.py": (["--steps", "1", "--threads", "1"], "IAPO / outcome step time: "),
    "world_speed.py": (["--n", "20", "--workers", "1"], "goal: 10,000 in < 60 s"),
    "render_speed.py": (["--repeat", "1"], "load with a warm cache: "),
}


@pytest.mark.parametrize("bench", sorted(SMALLEST))
def test_a_bench_runs_at_its_smallest_size(bench, tmp_path):
    args, last = SMALLEST[bench]
    out = subprocess.run([sys.executable, str(ROOT / "bench" / bench), *args], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith(last) or last in out.stdout, out.stdout[-1000:]
