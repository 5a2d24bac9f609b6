"""Report tables: what each IAPO variant asks (from its config when its name is new), and tool
collapse counted per seed as well as on the mean."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from iapo.attribution import AttributionSettings
from iapo.report import ablation_question, ablation_table, load_run_curves, tool_collapse
from iapo.stats import CI, contrast


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
    assert ablation_question("iapo_lam2", methods) == "attribution.lam 2.0 (iapo: 0.5)"  # the actual difference
    targets = {"iapo": {"attribution": {"target": "teacher_own"}}, "ev": {"attribution": {"target": "evidence"}}}
    assert ablation_question("ev", targets).startswith("Can a fixed target help?")
    assert ablation_question("ev", targets, proposed="ev") == "the method"
    # the level where the term aligns is named when it differs, with the variant's target
    regions = {
        "iapo": {"attribution": {"target": "teacher_own", "regions": 0.0}},
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
    assert ablation_question("same", est) == "The same config as iapo"
    assert ablation_question("ig4", est) == "Another attribution estimator: ig gausslegendre m=4"
    with pytest.warns(DeprecationWarning, match="rule"):
        assert ablation_question("ig4_old_key", est) == ablation_question("ig4", est)

    # issue 40's grid: the permuted twin and the paper's IG arm against components + regions
    decisive = {
        "combined": {"attribution": {"target": "teacher_own", "regions": 1.0}},
        "permuted": {"attribution": {"target": "teacher_own", "regions": 1.0, "permute": True}},
        "ig4": {"attribution": {"target": "teacher_own", "estimator": "ig", "n_steps": 4, "regions": 0.0}},
    }
    assert ablation_question("permuted", decisive, proposed="combined").startswith("Is it the teacher's knowledge")
    assert ablation_question("combined", decisive, proposed="permuted").startswith("Unpermuted targets")
    assert ablation_question("ig4", decisive, proposed="combined") == (
        "Component level: The teacher's own attribution (cached per question); "
        "another attribution estimator: ig gausslegendre m=4"
    )

    arms = {m: CI(0.2, 0.1, 0.3, 3) for m in methods}
    _, rows = ablation_table(arms, [], methods)
    assert [r[1] for r in rows][:2] == ["the method", "Another teacher: teacher_long"]
    # a primary contrast computed as combined - permuted is shown on the permuted row turned round
    zoo = {0: [0.30], 1: [0.20], 2: [0.25]}
    primary = replace(contrast(zoo, {z: [v[0] - 0.05 * (z + 1)] for z, v in zoo.items()}, ("combined", "permuted")),
                      primary=True)  # fmt: skip
    _, rows = ablation_table({m: CI(0.2, 0.1, 0.3, 3) for m in decisive}, [primary], decisive, proposed="combined")
    row = next(r for r in rows if r[0] == "permuted")
    assert row[4] == f"{-100 * primary.diff:+.1f} [{-100 * primary.high:+.1f}, {-100 * primary.low:+.1f}]"
    assert row[4].startswith("-10.0")


def _result(method: str, seed, with_call: float) -> dict:
    return {"method": method, "seed": seed, "splits": {"test_a": {"tools/episodes_with_call": with_call}}}


def test_collapse_table_counts_the_seed_that_a_mean_hides():
    results = [_result("sft", None, 1.0), _result("iapo", 0, 1.0), _result("iapo", 1, 0.0), _result("iapo", 2, 1.0)]
    head, rows = tool_collapse(results)
    assert head[-2:] == ["seeds collapsed", "seeds that never call"]
    (row,) = rows
    assert row[0] == "iapo" and row[3] == "100 / 0 / 100" and row[4] == "no"  # mean 67% of start
    assert row[5] == "1/3" and row[6] == "1/3"  # one seed at 0


def test_the_verdict_is_the_primary_contrast_and_a_tie_reads_as_its_interval():
    from iapo.report import verdict

    pair = ("iapo", "outcome")
    a = {z: [0.2 + 0.02 * z, 0.22 + 0.02 * z, 0.21 + 0.02 * z] for z in range(6)}
    b = {z: [0.0 + 0.01 * z, 0.02, 0.01] for z in range(6)}
    win = contrast(a, b, pair)
    v = verdict(replace(win, primary=True), pair)
    assert v.startswith("iapo beats outcome (primary contrast): +") and "6 zoos as the unit" in v
    assert "(t), 0.031 (sign-flip)" in v
    # 3 zoos: the t-test rejects, the exact sign-flip test cannot (p >= 0.25): not a win
    three = contrast({z: a[z] for z in range(3)}, {z: b[z] for z in range(3)}, pair)
    assert three.p < 0.05 and three.low > 0
    v = verdict(replace(three, primary=True), pair)
    assert v.startswith("iapo vs outcome (primary contrast): not significant by the sign-flip test (p 0.25)")
    tie = contrast({0: [0.3, 0.1, 0.2], 1: [0.2, 0.3, 0.1]}, {0: [0.25, 0.15, 0.2], 1: [0.2, 0.2, 0.25]}, pair)
    v = verdict(replace(tie, primary=True), pair)
    lo, hi = f"{100 * tie.low:+.1f}", f"{100 * tie.high:+.1f}"
    assert v.startswith(f"iapo vs outcome (primary contrast): not significant: compatible with {lo} to {hi} points; "
                        "differences beyond that excluded at 95%")  # fmt: skip
    below = replace(win, a="outcome", b="iapo", diff=-win.diff, low=-win.high, high=-win.low, primary=True)
    assert verdict(below, ("outcome", "iapo")).startswith("outcome is below iapo")
    assert "not both in this run" in verdict(None, pair)


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
    assert ablation_question("iapo_own", raw) == "The same config as iapo"  # today's defaults: wrong
    assert ablation_question("iapo_own", method_configs(tmp_path, meta)).startswith("The teacher's own attribution")


def _run(method: str, zoo: int, seed: int, correct: list[int]) -> dict:
    return {
        "method": method, "zoo": zoo, "seed": seed,
        "splits": {"test_a": {"accuracy": {"mean": sum(correct) / len(correct)}}},
        "episodes": {"test_a": [{"id": i, "correct": c} for i, c in enumerate(correct)]},
    }  # fmt: skip


def test_the_best_incentive_is_chosen_on_val():
    from iapo.report import best_on_val, incentives

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


def test_comparisons_are_computed_once_with_the_primary_outside_holm():
    from iapo.report import arm_runs, attribution_variants, comparisons, find

    results = [_run(m, z, s, [int(i < k) for i in range(10)])
               for m, k0 in (("outcome", 1), ("iapo", 4), ("bonus", 3), ("iapo_b", 5))
               for z in (0, 1, 2) for s in range(3 if m != "iapo_b" else 2) for k in [k0 + (s + z) % 2]]  # fmt: skip
    configs = {
        "iapo": {"attribution": {"lam": 0.5}},
        "iapo_b": {"attribution": {"lam": 1}},
        "bonus": {"tool_bonus": 0.5},
    }
    cs = comparisons(
        arm_runs(results), ["outcome", "bonus"], "iapo", ("iapo", "outcome"), attribution_variants(configs)
    )
    pairs = [(c.a, c.b) for c in cs]
    assert pairs[0] == ("iapo", "outcome") and cs[0].primary and cs[0].p_holm is None
    assert len(pairs) == len({frozenset(p) for p in pairs})  # each pair once
    assert ("bonus", "iapo") not in pairs and find(cs, "iapo", "bonus") is not None
    assert all(c.p_holm is not None and c.p_holm >= c.p for c in cs[1:])
    assert find(cs, "iapo_b", "iapo").n_b == 9 and find(cs, "iapo_b", "iapo").n_a == 6
    named = comparisons(arm_runs(results), ["outcome"], "iapo", ("iapo", "outcome"), None, [("iapo", "bonus")])
    assert [c.role for c in named[:2]] == ["primary", "secondary"] and (named[1].a, named[1].b) == ("iapo", "bonus")
    assert named[1].p_holm == named[1].p_test  # a family of one secondary contrast: its decision p
    assert all(c.role == "exploratory" for c in named[2:])


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


def test_tools_table_puts_accuracy_with_and_without_tools_side_by_side():
    from iapo.report.tables import tools_table

    def run(method, zoo, seed, acc, bare=None):
        r = {"method": method, "zoo": zoo, "seed": seed, "splits": {"test_a": {"accuracy": {"mean": acc}}}}
        if bare is not None:
            r["splits_no_tools"] = {"test_a": {"accuracy": {"mean": bare}}}
        return r

    assert tools_table([run("a", 0, 0, 0.5)]) == ([], [])  # nobody evaluated without tools: no table
    results = [run("a", z, s, 0.5 + 0.1 * z, 0.2 + 0.1 * z) for z in (0, 1, 2) for s in (0, 1)]
    results += [run("b", z, 0, 0.3) for z in (0, 1, 2)]  # b ran before the option: not in the table
    head, rows = tools_table(results)
    assert head[0] == "method" and [r[0] for r in rows] == ["a"]
    assert rows[0][1].startswith("60.0") and rows[0][2].startswith("30.0") and rows[0][3].startswith("+30.0")


def test_call_quality_counts_useless_among_valid_calls():
    from iapo.report.tables import call_quality_table

    def split(useful, useless, misuse):
        return {"tools/calls_per_episode": 1.0, "tools/class/valid_useful": useful,
                "tools/class/valid_useless": useless, "tools/misuse_rate": misuse}  # fmt: skip

    results = [{"method": "bonus", "splits": {"a": split(0.6, 0.2, 0.2), "b": split(0.5, 0.5, 0.0)}},
               {"method": "none", "splits": {"a": split(0.0, 0.0, 0.0)}},
               {"method": "old", "splits": {"a": {"accuracy": {"mean": 0.5}}}}]  # fmt: skip
    head, rows = call_quality_table(results)
    assert head[2] == "valid calls that are useless %"
    assert rows[0] == ["bonus", "1.00", "37.5", "10.0"]  # (25% + 50%) / 2 of the valid calls are useless
    assert rows[1][2] == "-"  # no valid call: no share
    assert [r[0] for r in rows] == ["bonus", "none"]  # a result without tool statistics has no row


def test_headline_shows_accuracy_without_tools_only_when_evaluated():
    from iapo.report.tables import headline_table
    from iapo.stats import CI

    arms = {"a": CI(0.5, 0.4, 0.6, 6), "b": CI(0.3, 0.2, 0.4, 6)}
    head, rows = headline_table(arms, [], {}, "b", None)
    assert "no tools offered %" not in head and len(rows[0]) == len(head)
    head, rows = headline_table(arms, [], {}, "b", None, {"a": CI(0.2, 0.1, 0.3, 6)})
    col = head.index("no tools offered %")
    assert rows[0][col] == "20.0 [10.0, 30.0]" and rows[1][col] == "" and len(rows[1]) == len(head)
