"""The whole chain on a tiny budget: world -> zoo -> GRPO (outcome, IAPO, controls) -> eval ->
report; resumability, the test-split guard, and a report whose figures and tables exist."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from iapo.eval.policy import SplitGuard
from iapo.experiment import ExperimentConfig, run_experiment
from iapo.report import write_report
from iapo.viz import episode_gallery, pick_questions
from iapo.world import World

TINY = {
    "world": {"train": 120, "val": 24, "test_per_family": 6, "ood": 6},
    "zoo": {
        "pretrain": {"steps": 4, "batch_images": 8, "eval_every": 2},
        "eval_examples": 8,
        "eval_every": 0,
        "roles": {
            "teacher": {
                "spec": {"hidden": 32, "heads": 2, "layers": 1, "intermediate": 64, "vision_hidden": 32},
                "sft": {"text_steps": 2, "steps": 2, "batch_size": 4},
            },
            "student": {
                "spec": {"hidden": 32, "heads": 2, "layers": 1, "intermediate": 64, "vision_hidden": 32},
                "sft": {"text_steps": 2, "steps": 2, "batch_size": 4},
            },
        },
    },
    "grpo": {
        "steps": 2,
        "questions_per_step": 2,
        "group_size": 2,
        "rollout": {"max_calls": 1, "max_new_tokens": 6, "batch_size": 8},
    },
    "methods": {
        "outcome": {},
        "iapo": {"attribution": {"n_steps": 2}},
        "iapo_random": {"attribution": {"n_steps": 2, "target": "random"}},
        "exact_match": {"exact_match": 1.0},
    },
    "seeds": [0, 1],
    "eval": {"val_examples": 4, "eval_every": 1, "test_limit": 3, "attribution_episodes": 2},
}


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.rows = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        if tag == "table":
            self.tables += 1
            self.rows.append(0)
        if tag == "tr" and self.rows:
            self.rows[-1] += 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    cfg = ExperimentConfig.model_validate(TINY)
    results = run_experiment(cfg, out)
    return out, cfg, results


def test_grid_runs_and_writes_tidy_results(run):
    out, cfg, results = run
    assert len(results) == 1 + len(cfg.methods) * len(cfg.seeds)  # + the SFT baseline
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    splits = {r["split"] for r in rows}
    assert "ood" in splits and all(s == "ood" or s.startswith("test_") for s in splits)
    assert {r["method"] for r in rows} == {"sft", *cfg.methods}
    for m in cfg.methods:
        log = (out / "runs" / m / "seed0" / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(x) for x in log]
        assert [r["step"] for r in steps] == [0, 1, 2]  # val eval at 0, then each step
        assert "reward/outcome" in steps[1]
    iapo = [json.loads(x) for x in (out / "runs" / "iapo" / "seed0" / "metrics.jsonl").read_text().splitlines()]
    assert "reward/attribution" in iapo[1] and "attr/rel_error_student" in iapo[1]
    em = [json.loads(x) for x in (out / "runs" / "exact_match" / "seed0" / "metrics.jsonl").read_text().splitlines()]
    assert "reward/exact_match" in em[1]
    # a run's record names its inputs relative to the experiment: a moved ledger still reruns
    rec = json.loads((out / "runs" / "iapo" / "seed0" / "run.json").read_text())
    assert (rec["experiment"], rec["zoo"], rec["student"], rec["world"], rec["trm"]) == (
        "../../..",
        "zoo",
        "zoo/student",
        "world",
        None,
    )


def test_finished_runs_are_not_recomputed(run):
    out, cfg, _ = run
    marker = out / "runs" / "outcome" / "seed0" / "result.json"
    before = marker.stat().st_mtime_ns
    run_experiment(cfg, out)
    assert marker.stat().st_mtime_ns == before


def test_a_damaged_result_is_named_skipped_by_the_report_and_re_evaluated(run, tmp_path, caplog):
    """A result.json cut in half (a full disk, an interrupted copy): the report names it in one
    line and counts the rest; the experiment sets it aside and evaluates the saved policy again,
    without training (the same result, the metrics log untouched)."""
    import logging
    import shutil

    from iapo.report import load_results

    out, cfg, _ = run
    copy = tmp_path / "grid"
    shutil.copytree(out, copy)
    res = copy / "runs" / "outcome" / "seed1" / "result.json"
    metrics = (res.parent / "metrics.jsonl").read_text()
    good = json.loads(res.read_text())
    res.write_text(res.read_text()[: len(res.read_text()) // 2])
    (copy / "runs" / "sft" / "result.json").write_text("{")
    damaged: list[str] = []
    rows = load_results(copy, damaged)
    assert len(rows) == len(load_results(out)) - 2 and len(damaged) == 2 and any(str(res) in d for d in damaged)
    with caplog.at_level(logging.WARNING):
        write_report(copy, tmp_path / "report")
    assert caplog.text.count("skipped 2 damaged result file(s)") == 1 and str(res) in caplog.text  # said once
    head = (tmp_path / "report" / "report.md").read_text().split("\n## ")[0]
    assert "2 damaged result files left out, its arm shows fewer runs" in head and str(res) in head
    run_experiment(cfg, copy)
    again = json.loads(res.read_text())
    assert again["splits"] == good["splits"] and again["train_seconds"] == good["train_seconds"]
    assert (res.parent / "result.json.damaged").exists() and (res.parent / "metrics.jsonl").read_text() == metrics
    assert len(load_results(copy)) == len(load_results(out))


def test_test_splits_are_refused_during_training(run):
    out, _, _ = run
    guard = SplitGuard(World(out / "world"))
    guard.load("val")
    with pytest.raises(RuntimeError, match="test splits"):
        guard.load("test_table_lookup")
    with pytest.raises(RuntimeError):
        guard.load("ood")


def test_report_renders_with_figures_and_tables(run, tmp_path):
    out, _, _ = run
    html = write_report(out)
    assert "## Episode gallery" not in (out / "report.md").read_text()  # the report itself runs no model
    there = tmp_path / "report"  # gallery and report beside the runs, not in them (made on first write)
    assert episode_gallery(out, ["iapo", "outcome"], out=there)  # a step of its own: it runs the policies
    assert not list(out.glob("gallery_*.png"))
    html = write_report(out, there)
    p = _Refs()
    p.feed(html.read_text())
    assert len(p.imgs) >= 3
    for src in p.imgs:
        assert (there / src).exists() and (there / src).stat().st_size > 1000
    assert p.tables >= 4
    assert all(n >= 2 for n in p.rows)  # a header row and at least one data row
    md = (there / "report.md").read_text()
    assert re.search(r"\| iapo \| 2 \|", md)
    assert "gallery_0.png" in p.imgs and "## Episode gallery" in md  # the policies' episodes, side by side


ROLES = {**TINY, "zoo": {**TINY["zoo"], "roles": {"mentor": TINY["zoo"]["roles"]["teacher"],
                                                  "pupil": TINY["zoo"]["roles"]["student"]}},
         "student": "pupil", "seeds": [0],
         "methods": {"outcome": {}, "iapo": {"teacher": "mentor", "attribution": {"n_steps": 2}}}}  # fmt: skip


def test_the_gallery_loads_the_experiments_own_roles(tmp_path, monkeypatch):
    """An experiment whose student role is `pupil` and whose method's teacher is `mentor` (no
    role is called student or teacher): the gallery replays the SFT row with the pupil's weights
    and the teacher's own episode with the mentor's, nothing else from the zoo."""
    import iapo.viz

    out = tmp_path / "exp"
    run_experiment(ExperimentConfig.model_validate(ROLES), out)
    loaded: list[Path] = []
    real = iapo.viz.load
    monkeypatch.setattr(iapo.viz, "load", lambda p, **kw: loaded.append(Path(p)) or real(p, **kw))
    assert episode_gallery(out, ["iapo", "outcome"], n_questions=1, out=tmp_path / "g")
    zoo_models = {p.name for p in loaded if p.parent == out / "zoo"}
    assert zoo_models == {"pupil", "mentor"}
    assert {p.parent.name for p in loaded if p.name == "policy"} == {"seed0"} and len(loaded) == 4


def test_gallery_picks_questions_where_policies_disagree():
    records = {
        "sft": {"a": {"correct": 1.0}, "b": {"correct": 0.0}, "c": {"correct": 0.0}},
        "x": {"a": {"correct": 1.0}, "b": {"correct": 1.0}, "c": {"correct": 0.0}},
        "y": {"a": {"correct": 1.0}, "b": {"correct": 1.0}, "c": {"correct": 1.0}, "d": {"correct": 0.0}},
    }
    assert pick_questions(records, 2) == ["b", "c"]  # 'a': all right; 'd': not seen by every policy


def test_parallel_workers_train_every_run_once(run, tmp_path):
    """workers=2 reuses the zoo of a finished grid and trains each (method, seed) in a pool, and
    names each run it finishes to the progress callback (the log of a grid run under nohup)."""
    import shutil

    out, cfg, _ = run
    par = tmp_path / "par"
    shutil.copytree(out / "world", par / "world")
    shutil.copytree(out / "zoo", par / "zoo")
    cfg2 = cfg.model_copy(update={"workers": 2, "methods": {"outcome": cfg.methods["outcome"]}})
    finished = []
    results = run_experiment(cfg2, par, lambda stage, step, n, row: finished.append(row.get("finished")))
    assert [r["method"] for r in results] == ["sft", "outcome", "outcome"]
    assert sorted(f for f in finished if f) == sorted(f"outcome/seed{k}" for k in cfg.seeds)
    assert [r["seed"] for r in results[1:]] == cfg.seeds
    for seed in cfg.seeds:
        rows = (par / "runs" / "outcome" / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["step"] for x in rows] == [0, 1, 2]


def test_a_ledger_resumes_the_grid_on_a_fresh_machine(run, tmp_path):
    """A finished grid fills its ledger without training (the ledger alone renders its report);
    a fresh directory takes the zoo and every run back from it (nothing trains, the same
    results); a zoo rebuilt with other weights is refused before any run."""
    import shutil

    from iapo.errors import DataError

    out, cfg, _ = run
    ledger, first, fresh = tmp_path / "ledger", tmp_path / "first", tmp_path / "fresh"
    shutil.copytree(out, first)
    run_experiment(cfg, first, ledger=ledger)
    kept = sorted(str(p.relative_to(ledger)) for p in ledger.rglob("*") if p.is_file())
    assert len([k for k in kept if k.endswith("result.json")]) == 1 + len(cfg.methods) * len(cfg.seeds)
    assert not [k for k in kept if "policy" in k or "checkpoint" in k]
    write_report(first)
    committed = sorted(ledger.rglob("*"))
    report = write_report(ledger, tmp_path / "ledger_report")  # from the committed records alone
    assert sorted(ledger.rglob("*")) == committed  # a ledger is only read
    assert report.parent == tmp_path / "ledger_report" and (report.parent / "fig_contrasts.png").exists()
    assert (report.parent / "runs.csv").read_text() == (first / "runs.csv").read_text()

    shutil.copytree(out / "world", fresh / "world")  # the zoo comes from the ledger
    run_experiment(cfg, fresh, ledger=ledger)
    assert not (fresh / "zoo" / "runs").exists()  # nothing of the zoo was rebuilt
    for m in cfg.methods:
        for seed in cfg.seeds:
            here, there = fresh / "runs" / m / f"seed{seed}", out / "runs" / m / f"seed{seed}"
            assert not (here / "policy").exists()  # nothing trained
            assert json.loads((here / "result.json").read_text()) == json.loads((there / "result.json").read_text())
    assert (fresh / "results.csv").read_text() == (out / "results.csv").read_text()

    other = tmp_path / "other"
    for d in ("world", "zoo"):
        shutil.copytree(out / d, other / d)
    weights = next((other / "zoo" / cfg.student).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(DataError, match=f"the zoo was rebuilt differently here \\({cfg.student}: recorded"):
        run_experiment(cfg, other, ledger=ledger)
    assert not (other / "runs" / "outcome").exists()


def _rows(path) -> list[dict]:
    """metrics.jsonl rows without wall times (the only thing a rerun may change)."""
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def test_every_run_and_the_experiment_record_their_resolved_config(run):
    from iapo.run import TrainConfig

    out, cfg, _ = run
    meta = json.loads((out / "experiment.json").read_text())
    assert meta["config"]["methods"]["iapo"]["attribution"]["estimator"] == "occlusion"  # a default, written out
    assert meta["environment"]["iapo"] and meta["environment"]["machine"]["cpu"]
    git = meta["environment"]["git"]  # the tests run from a git checkout: the commit the code is at
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert git["commit"] == head.stdout.strip() and isinstance(git["dirty"], bool)
    assert meta["source"] is None or "yaml" in meta["source"]
    rec = json.loads((out / "runs" / "iapo" / "seed1" / "run.json").read_text())
    tc = TrainConfig.model_validate(rec["config"])
    assert tc.seed == 1 and tc.method == cfg.methods["iapo"] and tc.grpo == cfg.grpo.model_copy(update={"seed": 1})
    assert rec["name"] == "iapo" and rec["world"] == "world"  # relative to the experiment
    policy = json.loads((out / "runs" / "iapo" / "seed1" / "policy" / "iapo.json").read_text())
    assert policy["provenance"]["config"] == rec["config"]
    zoo = json.loads((out / "zoo" / "student" / "iapo.json").read_text())
    assert zoo["provenance"]["config"]["roles"]["student"]["sft"]["steps"] == 2


def test_a_run_reruns_from_its_directory_with_identical_metrics(run, tmp_path):
    """`iapo train --config <run dir>` reads run.json: config, student, zoo and world, named
    relative to the experiment, so a copy of the experiment elsewhere reruns too."""
    import shutil

    from typer.testing import CliRunner

    from iapo.cli import app

    out, _, _ = run
    moved = tmp_path / "moved"
    shutil.copytree(out, moved, ignore=shutil.ignore_patterns("policy", "tb"))
    src = moved / "runs" / "iapo" / "seed0"
    res = CliRunner().invoke(app, ["train", "--config", str(src), "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    assert _rows(tmp_path / "again" / "metrics.jsonl") == _rows(src / "metrics.jsonl")
    a, b = (json.loads((d / "result.json").read_text()) for d in (src, tmp_path / "again"))
    assert a["splits"] == b["splits"] and a["attribution"] == b["attribution"]


def test_a_run_directory_refuses_another_config(run, tmp_path):
    from iapo.errors import ConfigError
    from iapo.provenance import record
    from iapo.run import RUN_RECORD, TrainConfig, claim_run_dir

    out, cfg, _ = run
    rec = json.loads((out / "runs" / "iapo" / "seed0" / RUN_RECORD).read_text())
    (tmp_path / RUN_RECORD).write_text(json.dumps(rec))
    other = TrainConfig(method=cfg.methods["iapo"], grpo=cfg.grpo.model_copy(update={"lr": 1.0}), eval=cfg.eval)
    with pytest.raises(ConfigError, match=r"grpo\.lr"):
        claim_run_dir(tmp_path, record(other))
    # a key added since the run started (here: recorded without it) resumes at its default
    del rec["config"]["method"]["tool_bonus_useful"]
    (tmp_path / RUN_RECORD).write_text(json.dumps(rec))
    claim_run_dir(tmp_path, record(TrainConfig.model_validate(rec["config"])))
    rec["config"]["method"]["tool_bonus_useful"] = False
    with pytest.raises(ConfigError, match=r"method\.tool_bonus_useful"):
        claim_run_dir(tmp_path, record(TrainConfig.model_validate(rec["config"])))
