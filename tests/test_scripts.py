"""Nothing in bench/ and research/ rots silently: every script parses its arguments (`--help`,
run in-process: its imports and argument parser), and the cheap ones run a tiny workload."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p for d in ("bench", "research") for p in (ROOT / d).rglob("*.py") if not p.name.startswith("_")
)  # fmt: skip


def run_script(path: Path, args: list[str], monkeypatch) -> int:
    """Run a script as __main__ with `args`; its own folder importable, as `python path` does."""
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    monkeypatch.syspath_prepend(str(path.parent))
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_script_parses_its_arguments(path, monkeypatch, capsys):
    assert run_script(path, ["--help"], monkeypatch) == 0
    assert "usage:" in capsys.readouterr().out, f"{path.relative_to(ROOT)}: no argparse --help"


def test_the_calibration_bench_runs_tiny(monkeypatch, capsys):
    assert run_script(ROOT / "bench" / "stats_calibration.py", ["--grids", "40"], monkeypatch) == 0
    assert "worst false-positive rate" in capsys.readouterr().out


def test_benchmarks_time_the_loops_own_optimizer():
    """A benchmark of GRPO steps builds its optimizer with `iapo.rl.grpo.policy_optimizer`, not
    its own (bench/grpo_step.py once timed AdamW with weight decay against the loop's without)."""
    for path in (ROOT / "bench").glob("*.py"):
        assert "torch.optim." not in path.read_text(), f"{path.name}: use iapo.rl.grpo.policy_optimizer"


def test_run_files_are_written_through_one_atomic_writer():
    """A write that a crash could leave half-done goes through `provenance.atomic` (write beside,
    then rename): no module renames its own temporary file any more."""
    import re

    for path in (ROOT / "src" / "iapo").rglob("*.py"):
        if path.name == "provenance.py" or path.name == "dataset.py":  # dataset.py renames a whole directory
            continue
        text = path.read_text()
        assert not re.search(r"tmp\.replace\(|os\.replace\(tmp", text), f"{path.name}: use iapo.provenance.atomic"


def test_the_decisive_grids_rule_picks_the_cheapest_within_the_tie():
    import importlib.util

    spec = importlib.util.spec_from_file_location("choose", ROOT / "research" / "decisive" / "choose.py")
    choose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choose)
    assert choose.choose([(0.30, 2.0), (0.25, 1.0)], 0.02) == 0  # 5 points apart: the better one
    assert choose.choose([(0.30, 2.0), (0.29, 1.0), (0.10, 0.1)], 0.02) == 1  # within 2 points: the cheaper
    runs = {"z0/s0": [{"val/accuracy": 0.2, "time/step_s": 1.0}], "z0/s1": [{"val/accuracy": 0.4}],
            "z1/s0": [{"val/accuracy": 0.9, "time/step_s": 3.0}]}  # fmt: skip
    assert choose.summary(runs) == (pytest.approx(0.6), 2.0, 3)  # the mean of the zoo means (0.3, 0.9)
