"""A grid over two zoos: one zoo per seed, runs per zoo with a method's own seeds, the region
term and the curiosity control trained end to end, and a report that treats the zoo as a factor."""

from __future__ import annotations

import json

import pytest

from iapo.experiment import ExperimentConfig, run_experiment
from iapo.report import load_results, write_report
from tests.experiment.test_pipeline import TINY

GRID = {
    **TINY,
    "world": {**TINY["world"], "templates": ["value"]},
    "methods": {
        "outcome": {},
        "regions": {"attribution": {"target": "teacher_own", "components": 0.0, "regions": 1.0}},
        "curiosity": {"curiosity": 0.5, "call_penalty": 0.05},
    },
    "seeds": [0],
    "method_seeds": {"outcome": [0, 1]},
    "zoo_seeds": [0, 1],
    "report": {"baseline": "outcome", "proposed": "regions"},
    "workers": 2,  # the zoos and runs share a pool: zoo 1 builds while zoo 0's runs train
}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoos")
    cfg = ExperimentConfig.model_validate(GRID)
    return out, run_experiment(cfg, out)


def test_one_zoo_per_seed_and_runs_per_zoo(grid):
    out, _ = grid
    for z in (0, 1):
        roles = json.loads((out / "zoos" / f"seed{z}" / "zoo.json").read_text())["roles"]
        assert roles["student"]["provenance"]["config"]["seed"] == z
        for m, seeds in (("outcome", [0, 1]), ("regions", [0]), ("curiosity", [0])):
            for k in seeds:
                assert (out / "runs" / m / f"zoo{z}" / f"seed{k}" / "result.json").exists(), (m, z, k)
        assert (out / "runs" / "sft" / f"zoo{z}" / "result.json").exists()
    a = (out / "zoos" / "seed0" / "student" / "model.safetensors").read_bytes()
    assert a != (out / "zoos" / "seed1" / "student" / "model.safetensors").read_bytes()  # another zoo
    assert sorted((r["method"], r["zoo"]) for r in load_results(out)) == sorted(
        [(m, z) for z in (0, 1) for m in ("sft", "outcome", "outcome", "regions", "curiosity")]
    )


def test_region_term_and_curiosity_are_logged(grid):
    out, _ = grid
    rows = [
        json.loads(x) for x in (out / "runs" / "regions" / "zoo0" / "seed0" / "metrics.jsonl").read_text().splitlines()
    ]
    assert any("attr/region_divergence" in r for r in rows)
    rows = [
        json.loads(x)
        for x in (out / "runs" / "curiosity" / "zoo1" / "seed0" / "metrics.jsonl").read_text().splitlines()
    ]
    assert any("reward/curiosity" in r and "reward/call_penalty" in r for r in rows)


def test_report_has_a_table_per_zoo(grid):
    out, _ = grid
    write_report(out)
    md = (out / "report.md").read_text()
    assert "## Mean accuracy per zoo" in md and "| zoo 0 | zoo 1 |" in md
    assert "z1/s1" in md  # per-run columns name the zoo
    assert "Finding the tools" in md and (out / "fig_val_runs.png").exists()
    # the verdict is the primary contrast (regions vs outcome) with the zoo as the unit
    assert "(primary contrast)" in md and "2 zoos as the unit" in md and "1 degree(s) of freedom" in md
    # the one incentive (curiosity) is a reference: every method is compared with it, once
    assert "| regions | curiosity | exploratory | zoos (2) |" in md
    assert "| vs outcome | vs curiosity |" in md and "| regions | 2 |" in md
    assert (out / "runs.csv").read_text().count("\n") == 1 + 2 * (1 + 2 + 1 + 1)  # sft, outcome x2, regions, curiosity


def test_a_zoo_below_the_acceptance_rule_is_refused():
    from iapo.errors import ConfigError
    from iapo.experiment import check_zoo

    cfg = ExperimentConfig.model_validate({**GRID, "zoo_accept": {"role": "teacher", "min_val": 0.4}})
    check_zoo(cfg, 0, {"roles": {"teacher": {"val_accuracy": {"mean": 0.57}}}})
    with pytest.raises(ConfigError, match=r"zoo seed 1: teacher reached 0\.03"):
        check_zoo(cfg, 1, {"roles": {"teacher": {"val_accuracy": {"mean": 0.03}}}})
    with pytest.raises(ValueError, match="not a zoo role"):
        ExperimentConfig.model_validate({**GRID, "zoo_accept": {"role": "oracle", "min_val": 0.4}})


def test_the_next_zoo_builds_while_runs_train():
    """With runs ready, one zoo builds at a time beside them; with none ready, every worker
    takes a zoo; runs go in the order given (waves of seeds)."""
    from iapo.experiment import next_task

    zoos, ready = [0, 1, 2], []
    assert next_task(zoos, ready, [], None) == ("zoo", 0)
    assert next_task(zoos, ready, ["zoo"], None) == ("zoo", 1)  # nothing to run yet: both build
    ready += [5, 3, 4]
    assert next_task(zoos, ready, ["zoo"], lambda i: i) == ("run", 3)  # a zoo is building: run
    assert next_task(zoos, ready, ["run"], lambda i: i) == ("zoo", 2)  # none is: the next zoo
    assert next_task(zoos, ready, ["run", "zoo"], lambda i: -i) == ("run", 5)
    assert zoos == [] and ready == [4]


def test_decoy_rules_judge_teacher_and_student():
    from iapo.errors import ConfigError
    from iapo.experiment import check_zoo

    rules = [
        {"role": "teacher", "min_val": 0.4, "decoy_rate": [0.0, 0.1]},
        {"role": "student", "decoy_rate": [0.35, 0.65]},
    ]
    cfg = ExperimentConfig.model_validate({**GRID, "zoo_accept": rules})

    def zoo(t_acc, t_decoy, s_decoy):
        return {"roles": {"teacher": {"val_accuracy": {"mean": t_acc}, "val_tools": {"tools/decoy_rate": t_decoy}},
                          "student": {"val_accuracy": {"mean": 0.2}, "val_tools": {"tools/decoy_rate": s_decoy}}}}  # fmt: skip

    check_zoo(cfg, 0, zoo(0.5, 0.04, 0.48))
    for bad, why in [((0.3, 0.04, 0.48), "below min_val"), ((0.5, 0.2, 0.48), "teacher's decoy rate on val is 0.2"),
                     ((0.5, 0.04, 0.9), "student's decoy rate"), ((0.5, float("nan"), 0.5), "teacher's decoy rate")]:  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            check_zoo(cfg, 1, zoo(*bad))


def test_zoos_are_built_judged_and_kept_without_runs(tmp_path):
    """`iapo zoos`: every seed tried is a row of zoos.csv, accepted or why not; with a ledger the
    zoos (weights, no training state) and the table are kept there, and taken back on rebuild."""
    import csv

    from iapo.experiment import build_zoos

    cfg = ExperimentConfig.model_validate({**GRID, "zoo_seeds": [0], "zoo_accept": {"role": "teacher", "min_val": 1.0}})
    out, ledger = tmp_path / "exp", tmp_path / "ledger"
    (row,) = build_zoos(cfg, out, ledger=ledger)
    assert not row["accepted"] and "below min_val 1.0" in row["why"] and row["teacher_val"] < 1.0
    assert next(csv.DictReader((ledger / "zoos.csv").open()))["accepted"] == "False"
    kept = ledger / "zoos" / "seed0"
    assert (kept / "teacher" / "model.safetensors").exists() and (kept / "hashes.json").exists()
    assert not any(p.name.endswith(".pt") for p in kept.rglob("*"))  # no optimizer or training state
    (again,) = build_zoos(cfg, tmp_path / "elsewhere", ledger=ledger)  # a fresh machine: taken, not rebuilt
    assert again["teacher_val"] == row["teacher_val"] and again["minutes_this_call"] < row["minutes_this_call"]
