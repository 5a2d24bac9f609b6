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


def test_the_waves_view_holds_only_the_complete_waves_of_seeds(tmp_path, monkeypatch, capsys):
    """research/decisive/waves.py: a seed is read only when every arm ran it on every zoo."""
    import json

    grid, view = tmp_path / "grid", tmp_path / "view"
    cfg = {"seeds": [0, 1], "zoo_seeds": [0, 1], "methods": {"a": {}, "b": {}}}
    grid.mkdir()
    (grid / "experiment.json").write_text(json.dumps({"config": cfg}))
    done = [("a", 0, 0), ("a", 1, 0), ("b", 0, 0), ("b", 1, 0), ("a", 0, 1), ("a", 1, 1), ("b", 0, 1)]  # b z1 s1 runs
    for m, z, s in done:
        run = grid / "runs" / m / f"zoo{z}" / f"seed{s}"
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps({"method": m, "seed": s, "splits": {}}))
        (run / "metrics.jsonl").write_text("{}\n")
    (grid / "runs" / "b" / "zoo1" / "seed1").mkdir(parents=True)  # in flight: no result.json
    sft = grid / "runs" / "sft" / "zoo0"
    sft.mkdir(parents=True)
    (sft / "result.json").write_text(json.dumps({"method": "sft", "seed": None, "splits": {}}))
    waves = ROOT / "research" / "decisive" / "waves.py"
    assert run_script(waves, [str(grid), str(view)], monkeypatch) == 0
    assert "4 runs of the complete waves, seeds [0]" in capsys.readouterr().out
    copied = sorted(str(p.relative_to(view)) for p in view.rglob("result.json"))
    assert copied == ["runs/a/zoo0/seed0/result.json", "runs/a/zoo1/seed0/result.json", "runs/b/zoo0/seed0/result.json",
                      "runs/b/zoo1/seed0/result.json", "runs/sft/zoo0/result.json"]  # fmt: skip
    assert (view / "runs/a/zoo0/seed0/metrics.jsonl").exists() and (view / "experiment.json").exists()


def test_rekey_moves_old_target_caches_to_the_content_fingerprint(tmp_path, monkeypatch, capsys):
    import json

    from iapo.rewards.targets import TargetCache, checkpoint_fingerprint

    zoo = tmp_path / "seed0"
    (zoo / "teacher").mkdir(parents=True)
    (zoo / "teacher" / "config.json").write_text("{}")
    (zoo / "teacher" / "model.safetensors").write_bytes(b"weights")
    (zoo / "targets").mkdir()
    old = zoo / "targets" / "teacher_own-0123456789abcdef.json"
    entries = {"q1": {"p": [1.0, 0.0]}}
    old.write_text(json.dumps({"settings": {"teacher": "by-mtime", "n_steps": 4}, "targets": entries}))
    script = ROOT / "research" / "decisive" / "rekey_targets.py"
    assert run_script(script, [str(zoo)], monkeypatch) == 0
    cache = TargetCache(zoo / "targets", checkpoint_fingerprint(zoo / "teacher"), {"n_steps": 4})
    assert cache.entries == entries and not old.exists()
    assert f"{old.name} -> {cache.path.name}" in capsys.readouterr().out
    assert run_script(script, [str(zoo)], monkeypatch) == 0  # a current name stays
    assert capsys.readouterr().out == "" and cache.path.exists()


def test_where_splits_call_classes_by_template(tiny_models, small_world, tmp_path, monkeypatch, capsys):
    """research/distractor/where.py on the test world: one line per template the split holds,
    each with its counts summing to the split's size."""
    from iapo.models.build import save

    save(*tiny_models["student"], tmp_path / "student")
    args = [str(small_world.root), f"student={tmp_path / 'student'}", "--max-calls", "1"]
    assert run_script(ROOT / "research" / "distractor" / "where.py", args, monkeypatch) == 0
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("student")]
    templates = {ex.meta["template"] for ex in small_world.load("val")}
    assert sorted(ln[1] for ln in lines) == sorted(templates)
    assert sum(float(ln[3]) for ln in lines) == len(small_world.load("val"))


def test_run_speed_reads_its_grid_through_the_loader_and_writes_configs_that_validate(monkeypatch, tmp_path):
    """bench/run_speed.py read research/claim/sparse.yaml with a bare YAML load; since that file
    `extends:` a recipe, its world and zoo were missing (KeyError 'world'). What it writes for
    `iapo world`, `iapo sft` and `iapo train` must validate as those commands read it."""
    import importlib.util

    from iapo.run import TrainConfig
    from iapo.supervised.zoo import ZooConfig
    from iapo.world import WorldConfig

    spec = importlib.util.spec_from_file_location("run_speed", ROOT / "bench" / "run_speed.py")
    rs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rs)
    grid = rs.read_grid()
    WorldConfig.model_validate(grid["world"])
    ZooConfig.model_validate(grid["zoo"] | {"roles": {"teacher": grid["zoo"]["roles"]["teacher"]}})
    for method in rs.METHODS:
        TrainConfig.model_validate(rs.train_config(method, 2))
