"""Benches that cannot rot silently: every one runs for real at its smallest size (each in its own
process, as `python bench/X.py` runs: a bench sets torch's threads), on untrained tiny models and
a small world where it needs models, not only `--help` (tests/test_scripts.py). Their timings are
not asserted: these machines are noisy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ONE = ["--roles", "student", "--episodes", "2"]
SMALLEST = {  # bench -> (arguments, what its output says)
    "attribution_fidelity.py": ([*ONE, "--threads", "1", "--only", "occlusion", "--no-ig-reference"],
                                "default occlusion: share L1"),
    "cost_curve.py": (["--sizes", "tiny", "--steps", "1", "--episodes", "2", "--threads", "1", "--no-captum"], "| tiny |"),
    "device_step.py": (["--steps", "2", "--questions", "2", "--group", "2", "--max-new-tokens", "12"],
                       "IAPO/outcome step-time ratio"),
    "grpo_step.py": (["--steps", "1", "--threads", "1"], "IAPO / outcome step time: "),
    "ig_path.py": ([*ONE, "--points", "3", "--baselines", "pad"], "student  pad"),
    "ig_quadrature.py": ([*ONE, "--steps", "2", "--rules", "trapezoid", "--baselines", "pad"], "student  pad"),
    "ig_scan.py": (["--episodes", "2", "--reference", "8"], "gausslegendre m=64"),
    "render_speed.py": (["--repeat", "1"], "load with a warm cache: "),
    "rollout_speed.py": (["--episodes", "2"], "KV cache speed-up: "),
    "run_speed.py": (["--tiny", "--against", "HEAD", "--steps", "1", "--methods", "outcome", "default"],
                     "run time vs HEAD: "),
    "scale_out.py": (["--steps", "1", "--questions", "2", "--group", "2"], "throughput ratio 2p/1p"),
    "sft_data.py": (["--steps", "2", "--batch", "4", "--workers", "1"], "batch of 4 demonstrations"),
    "stats_calibration.py": (["--grids", "20"], "worst false-positive rate"),
    "term_cost.py": (["--tiny", "--steps", "1"], "term / (rollout + update): "),
    "world_speed.py": (["--n", "20", "--workers", "1"], "goal: 10,000 in < 60 s"),
}  # fmt: skip


def test_every_bench_has_a_smallest_run():
    assert sorted(SMALLEST) == sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("bench", sorted(SMALLEST))
def test_a_bench_runs_at_its_smallest_size(bench, tmp_path):
    args, says = SMALLEST[bench]
    work = ["--work", str(tmp_path / "work")] if bench == "run_speed.py" else []
    out = subprocess.run([sys.executable, str(ROOT / "bench" / bench), *args, *work], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert says in out.stdout, out.stdout[-1000:]
