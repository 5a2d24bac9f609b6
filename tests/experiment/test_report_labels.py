"""Report tables: what each IAPO variant asks (from its config when its name is new), and tool
collapse counted per seed as well as on the mean."""

from __future__ import annotations

import json

import pytest

from iapo.attribution import AttributionSettings
from iapo.report import ablation_question, ablation_table, load_run_curves, tool_collapse
from iapo.stats import CI


def test_variants_are_labelled_from_their_config():
    methods = {
        "iapo": {"teacher": "teacher", "attribution": {"lam": 0.5}},
        "iapo_long": {"teacher": "teacher_long", "attribution": {"lam": 0.5}},
        "iapo_dirichlet": {"attribution": {"lam": 0.5, "target": "random"}},
        "iapo_lam2": {"attribution": {"lam": 2.0}},
    }
    assert ablation_question("iapo", methods) == "the method"
    assert ablation_question("iapo_long", methods) == "Another teacher: teacher_long"
    assert ablation_question("iapo_dirichlet", methods).startswith("Is it the attribution term")
    assert ablation_question("iapo_lam2", methods) == "lambda / divergence sweep"
    targets = {"iapo": {"attribution": {"target": "teacher_own"}}, "ev": {"attribution": {"target": "evidence"}}}
    assert ablation_question("ev", targets).startswith("Can a fixed target help?")
    assert ablation_question("ev", targets, proposed="ev") == "the method"
    # the level where the term aligns is named when it differs, with the variant's target
    regions = {
        "iapo": {"attribution": {"target": "teacher_own"}},
        "r_own": {"attribution": {"target": "teacher_own", "components": 0.0, "regions": 1.0}},
        "r_ev": {"attribution": {"target": "evidence", "components": 0.0, "regions": 1.0}},
        "both": {"attribution": {"target": "teacher_own", "regions": 1.0}},
    }
    assert ablation_question("r_own", regions) == "Region level: The teacher's own attribution (cached per question)"
    assert ablation_question("r_ev", regions).startswith("Region level: Can a fixed target help?")
    assert ablation_question("both", regions).startswith("Component + region level: ")
    assert ablation_question("r_ev", regions, proposed="r_own").startswith("Can a fixed target help?")
    # a variant names no teacher: it gets MethodConfig's default ("teacher"), not iapo's
    other = {"iapo": {"teacher": "teacher_long"}, "iapo_lam2": {"attribution": {"lam": 2.0}}}
    assert ablation_question("iapo_lam2", other) == "Another teacher: teacher"
    centred = {"iapo": {}, "iapo_c": {"attribution": {"lam": 0.5, "center": "support"}}}
    assert ablation_question("iapo_c", centred) == "Does centring the term help? (center: support)"
    # estimators: the default filled in, so naming the default is no difference
    est = {
        "iapo": {"attribution": {}},
        "same": {"attribution": {"estimator": AttributionSettings().estimator}},
        "ig4": {"attribution": {"estimator": "ig", "rule": "gausslegendre", "n_steps": 4}},
        "ig4_old_key": {"attribution": {"estimator": "ig", "method": "gausslegendre", "n_steps": 4}},
    }
    assert ablation_question("same", est) == "lambda / divergence sweep"
    assert ablation_question("ig4", est) == "Another attribution estimator: ig gausslegendre m=4"
    with pytest.warns(DeprecationWarning, match="rule"):
        assert ablation_question("ig4_old_key", est) == ablation_question("ig4", est)

    stats = {m: {"average": CI(0.2, 0.1, 0.3, 3), "diff": -0.01, "p_questions": 0.5} for m in methods}
    _, rows = ablation_table(stats, methods)
    assert [r[1] for r in rows][:2] == ["the method", "Another teacher: teacher_long"]


def _result(method: str, seed, with_call: float) -> dict:
    return {"method": method, "seed": seed, "splits": {"test_a": {"tools/episodes_with_call": with_call}}}


def test_collapse_table_counts_the_seed_that_a_mean_hides():
    results = [_result("sft", None, 1.0), _result("iapo", 0, 1.0), _result("iapo", 1, 0.0), _result("iapo", 2, 1.0)]
    head, rows = tool_collapse(results)
    assert head[-2:] == ["seeds collapsed", "seeds that never call"]
    (row,) = rows
    assert row[0] == "iapo" and row[3] == "100 / 0 / 100" and row[4] == "no"  # mean 67% of start
    assert row[5] == "1/3" and row[6] == "1/3"  # one seed at 0


def test_verdict_calls_a_win_only_when_runs_agree():
    from iapo.report import _verdict

    def verdict(diff, p_seeds, p_questions):
        return _verdict({"outcome": {}, "iapo": {"diff": diff, "p_seeds": p_seeds, "p_questions": p_questions}})

    assert verdict(0.094, 0.01, 0.0001).startswith("iapo beats outcome here: +9.4 points")
    # significant over questions, not over runs (the quickstart's case): no win
    v = verdict(0.094, 0.327, 0.0001)
    assert "not over runs" in v and "beats" not in v and "p = 0.327 over runs" in v
    assert verdict(0.094, float("nan"), 0.0001).endswith("not a win at this number of runs.")  # one run
    assert verdict(-0.02, 0.01, 0.001).startswith("iapo is below")
    assert verdict(-0.019, 0.737, 0.052).startswith("iapo does not beat outcome here: -1.9 points")
    assert verdict(0.01, 0.6, 0.5).startswith("iapo does not significantly beat")
    roles = _verdict({"base": {}, "mine": {"diff": 0.1, "p_seeds": 0.01, "p_questions": 0.01}}, "base", "mine")
    assert roles.startswith("mine beats base here")


def test_a_run_made_under_other_defaults_is_labelled_from_its_record(tmp_path):
    """Versions <= 0.1 recorded the raw YAML: `iapo` named no target and ran with that version's
    default, teacher_forced. The runs' own records (run.json, resolved) say so; this version's
    defaults (teacher_own) would call the teacher_own variant a lambda sweep."""
    import json

    from iapo.report import method_configs
    from iapo.rewards.alignment import AttributionRewardConfig
    from iapo.rewards.method import MethodConfig

    raw = {"iapo": {"attribution": {"lam": 0.5}}, "iapo_own": {"attribution": {"lam": 0.5, "target": "teacher_own"}}}
    meta = {"config": {"methods": raw}}
    then = {
        "iapo": MethodConfig(attribution=AttributionRewardConfig(lam=0.5, target="teacher_forced")),
        "iapo_own": MethodConfig(attribution=AttributionRewardConfig(lam=0.5, target="teacher_own")),
    }
    for name, m in then.items():
        d = tmp_path / "runs" / name / "seed0"
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"config": {"method": m.model_dump(mode="json")}}))
    assert ablation_question("iapo_own", raw) == "lambda / divergence sweep"  # today's defaults: wrong
    assert ablation_question("iapo_own", method_configs(tmp_path, meta)).startswith("The teacher's own attribution")


def _run(method: str, zoo: int, seed: int, correct: list[int]) -> dict:
    return {
        "method": method, "zoo": zoo, "seed": seed,
        "splits": {"test_a": {"accuracy": {"mean": sum(correct) / len(correct)}}},
        "episodes": {"test_a": [{"id": i, "correct": c} for i, c in enumerate(correct)]},
    }  # fmt: skip


def test_the_best_incentive_is_chosen_on_val_and_paired_by_zoo_and_seed():
    from iapo.report import best_on_val, incentives, versus_table

    configs = {
        "outcome": {"outcome": 1.0},
        "iapo": {"attribution": {"lam": 0.5}, "tool_bonus": 0.0},
        "bonus": {"tool_bonus": 0.5},
        "curious": {"curiosity": 0.5},
        "bonus_and_attr": {"tool_bonus": 0.5, "attribution": {"lam": 0.5}},
    }
    assert incentives(configs) == ["bonus", "curious"]
    val = lambda *v: [[{"step": 10, "val/accuracy": 0.0}, {"step": 20, "val/accuracy": x}] for x in v]  # noqa: E731
    # `bonus` wins on val, whatever the test says
    assert best_on_val({"bonus": val(0.3, 0.5), "curious": val(0.2, 0.2)}, ["bonus", "curious"]) == "bonus"
    assert best_on_val({}, ["bonus"]) is None

    results = [
        _run("bonus", 0, 0, [1, 0, 0, 0]), _run("bonus", 1, 0, [0, 0, 0, 0]),
        _run("iapo", 0, 0, [1, 1, 1, 0]), _run("iapo", 1, 0, [1, 0, 0, 0]),
        _run("iapo", 1, 5, [1, 1, 1, 1]),  # no bonus run with this zoo and seed: unpaired
    ]  # fmt: skip
    head, rows, stats = versus_table(results, "bonus")
    assert head[2] == "diff vs bonus"
    (row,) = rows
    assert row[:3] == ["iapo", "2", "+37.5"]  # (0.75 - 0.25 + 0.25 - 0) / 2
    assert stats["iapo"]["n"] == 2 and stats["iapo"]["diff"] == pytest.approx(0.375)


def test_curves_count_only_finished_runs(tmp_path):
    """A report taken while the grid still runs: a run without result.json is not in the curves
    (nor in 'runs that find the tools'), as it is not in the accuracy tables."""
    for seed, done in ((0, True), (1, False)):
        d = tmp_path / "runs" / "outcome" / "zoo3" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "metrics.jsonl").write_text(json.dumps({"step": 1, "val/accuracy": 0.5}) + "\n")
        if done:
            (d / "result.json").write_text("{}")
    assert load_run_curves(tmp_path) == {"outcome": {"z3/s0": [{"step": 1, "val/accuracy": 0.5}]}}
