"""A report built from a grid with unequal seeds per method: every section shows one comparison
with one set of numbers, the verdict is the pre-registered primary contrast, and runs.csv holds
what a re-analysis needs."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from iapo.report import write_report
from iapo.report.figures import plotted_contrasts
from iapo.report.tables import question_type_table
from iapo.stats import contrast
from iapo.tools.session import CallClass

SEEDS = {"outcome": 3, "iapo": 4, "iapo_b": 2, "bonus": 3}  # unequal seeds per zoo
LEVEL = {"outcome": 0.05, "iapo": 0.30, "iapo_b": 0.25, "bonus": 0.27}


def _result(method: str, zoo: int, seed: int | None, rng: np.random.Generator) -> dict:
    splits, episodes = {}, {}
    for split in ("ood", "test_a"):
        p = min(1.0, max(0.0, LEVEL[method] + 0.05 * zoo + rng.normal(0, 0.05)))
        correct = (rng.random(40) < p).astype(int)
        episodes[split] = [{"id": f"{split}{i}", "correct": int(c)} for i, c in enumerate(correct)]
        splits[split] = {"accuracy": {"mean": float(correct.mean()), "ci_low": 0.0, "ci_high": 1.0, "n": 40},
                         "tools/episodes_with_call": 0.5,
                         **{f"tools/class/{c.value}": 0.1 for c in CallClass if c != CallClass.VALID}}  # fmt: skip
    return {"method": method, "seed": seed, "splits": splits, "episodes": episodes, "train_seconds": 90.0}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    rng = np.random.default_rng(0)
    configs = {"outcome": {"outcome": 1.0}, "bonus": {"tool_bonus": 0.5},
               "iapo": {"attribution": {"lam": 0.5}}, "iapo_b": {"attribution": {"lam": 1.0}}}  # fmt: skip
    for zoo in (0, 1, 2):
        d = out / "runs" / "sft" / f"zoo{zoo}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(_result("outcome", zoo, None, rng) | {"method": "sft"}))
        for m, n in SEEDS.items():
            for seed in range(n):
                d = out / "runs" / m / f"zoo{zoo}" / f"seed{seed}"
                d.mkdir(parents=True)
                (d / "result.json").write_text(json.dumps(_result(m, zoo, seed, rng)))
                if zoo == 2:  # zoo 2's runs trained on a machine that records its class (0.3.2 on)
                    machine = {"cpu": "Xeon", "cpu_class": "family 6 model 143, AVX512"}
                    (d / "run.json").write_text(json.dumps({"config": {"method": configs[m]},
                                                            "environment": {"machine": machine}}))  # fmt: skip
                times = {"time/step_s": 3.0, "time/rollout_s": 1.0, "time/reward_s": 0.5, "time/update_s": 1.5,
                         "time/reward/outcome_s": 0.1, "tools/calls_per_episode": 1.2}  # fmt: skip
                rows = [{"step": s, "val/accuracy": LEVEL[m], "tools/episodes_with_call": 0.6, "tools/useful_rate": 0.6,
                         **times, **({"time/reward/attribution_s": 0.4} if m.startswith("iapo") else {}),
                         **({"time/eval_s": 30.0} if s == 20 else {})} for s in (10, 20)]  # fmt: skip
                (d / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    roles = {"baseline": "outcome", "proposed": "iapo", "primary": ["iapo", "bonus"]}
    (out / "experiment.json").write_text(json.dumps({"config": {"methods": configs, "report": roles}}))
    write_report(out)
    return out, (out / "report.md").read_text()


def _table(md: str, title: str) -> list[list[str]]:
    block = md.split(f"## {title}")[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines() if line.startswith("| ")]


def test_every_section_shows_one_comparison_with_one_number(report):
    _, md = report
    con = _table(md, "Every comparison")
    head, rows = con[0], {(r[0], r[1]): dict(zip(con[0], r, strict=True)) for r in con[1:]}
    assert head[:3] == ["A", "B", "role"]
    diff = {k: r["A - B [95% CI]"] for k, r in rows.items()}
    # A - B is the difference of the two means it shows
    for r in rows.values():
        assert float(r["A %"]) - float(r["B %"]) == pytest.approx(float(r["A - B [95% CI]"].split()[0]), abs=0.11)
    # the headline and the ablation table repeat the same numbers, never a re-computed or flipped one
    headline = {r[0]: r for r in _table(md, "Headline")[1:]}
    assert headline["iapo_b"][2].startswith(diff[("iapo_b", "outcome")])
    assert headline["iapo"][3].startswith(diff[("iapo", "bonus")])
    ablation = {r[0]: r for r in _table(md, "Attribution variants")[1:]}
    assert ablation["iapo_b"][3] == diff[("iapo_b", "outcome")] and ablation["iapo_b"][4] == diff[("iapo_b", "iapo")]
    # the means shown in a comparison are the accuracy table's (every method ran on every zoo)
    acc = {r[0]: r[-1].split()[0] for r in _table(md, "Accuracy on the test splits")[1:]}
    assert rows[("iapo_b", "iapo")]["A %"] == acc["iapo_b"] and rows[("iapo_b", "iapo")]["B %"] == acc["iapo"]


def test_the_verdict_is_the_primary_contrast_alone(report):
    _, md = report
    verdict = re.search(r"\*\*(.+?)\*\*", md).group(1)
    assert verdict.startswith("iapo") and "bonus" in verdict and "(primary contrast)" in verdict
    rows = _table(md, "Every comparison")[1:]
    roles = {(r[0], r[1]): r[2] for r in rows}
    assert roles.pop(("iapo", "bonus")) == "primary" and set(roles.values()) == {"exploratory"}
    assert "3 zoos: a zoo-level test has 2 degree(s) of freedom" in md
    assert "p over questions" not in md and "questions, t" not in md


def test_the_contrast_figure_shows_the_confirmatory_contrasts(report):
    out, md = report
    assert (out / "fig_contrasts.png").stat().st_size > 1000 and "](fig_contrasts.png)" in md
    # no secondary family named: every contrast, the primary first
    c = contrast(*[{z: [LEVEL[m]] * 2 for z in (0, 1, 2)} for m in ("iapo", "bonus")], ("iapo", "bonus"))
    others = [replace(c, a=m, primary=False) for m in ("iapo_b", "outcome")]
    assert [x.a for x in plotted_contrasts([*others, replace(c, primary=True)])] == ["iapo", "iapo_b", "outcome"]
    # a secondary family named: the primary and it, not the exploratory rest
    named = [replace(c, primary=True), replace(others[0], secondary=True), others[1]]
    assert [x.a for x in plotted_contrasts(named)] == ["iapo", "iapo_b"]


def test_the_command_line_writes_the_report_elsewhere_and_only_reads_the_runs(report, tmp_path):
    out, md = report
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    there = tmp_path / "elsewhere"
    r = subprocess.run([sys.executable, "-m", "iapo.cli", "report", str(out), "--no-gallery", "--out", str(there)],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert (there / "report.md").read_text() == md and (there / "fig_contrasts.png").exists()


def test_question_types_are_shown_only_where_a_split_mixes_them(report):
    _, md = report
    assert "## Per question type" not in md  # one split, one type: the average says it all
    calls = {"valid_useful": 0.3, "valid_useless": 0.1}

    def run(m, zoo, seed, plain, decoy):
        types = {
            "t/plain": {"accuracy": {"mean": plain}, "n": 30},
            "t/decoy": {"accuracy": {"mean": decoy}, "n": 30, **{f"tools/class/{k}": v for k, v in calls.items()}},
        }
        return {"method": m, "zoo": zoo, "seed": seed, "splits": {"test_a": {"question_types": types}}}  # fmt: skip

    results = [run("a", z, s, 0.5 + 0.1 * z, 0.2 + 0.1 * s) for z in (0, 1, 2) for s in (0, 1)]
    head, rows = question_type_table(results)
    assert head == ["method", "test_a decoy %", "useless %", "test_a plain %", "useless %"]
    ((m, decoy, useless, plain, no_calls),) = rows
    assert m == "a" and decoy.startswith("25.0 [") and plain.startswith("60.0 [")  # the mean of the zoo means
    assert useless == "25.0" and no_calls == "-"  # 0.1 of 0.4 valid calls; no call on the plain type


def test_runs_csv_has_one_row_per_run(report):
    out, _ = report
    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert len(rows) == 3 * (1 + sum(SEEDS.values()))
    r = next(r for r in rows if r["method"] == "iapo" and r["zoo"] == "1" and r["seed"] == "3")
    assert float(r["accuracy"]) == pytest.approx((float(r["ood"]) + float(r["test_a"])) / 2, abs=1e-5)
    assert float(r["train_minutes"]) == 1.5
    assert r["machine"] == ""  # no run record
    r = next(r for r in rows if r["method"] == "iapo" and r["zoo"] == "2" and r["seed"] == "3")
    assert r["machine"] == "Xeon (family 6 model 143, AVX512)"  # a comma inside, quoted by csv


def test_the_report_says_which_machines_trained_the_runs(report):
    _, md = report
    n = sum(SEEDS.values())
    assert f"Trained on: {2 * n} runs on a CPU not recorded; {n} runs on Xeon (family 6 model 143, AVX512)." in md


def test_the_cost_table_splits_a_step(report):
    _, md = report
    head, *rows = _table(md, "What a run costs")
    assert head[:5] == ["method", "runs", "train min / run", "test eval min / run", "s / step"]
    assert "attribution s" in head and "outcome s" in head
    row = {r[0]: dict(zip(head, r, strict=True)) for r in rows}
    assert row["iapo"]["train min / run"] == "1.5" and row["iapo"]["s / step"] == "3.00"
    assert row["iapo"]["attribution s"] == "0.40" and row["outcome"]["attribution s"] == ""
    assert row["bonus"]["val eval min / run"] == "0.5" and row["bonus"]["calls / episode"] == "1.20"


def test_a_grid_registered_on_the_decoy_rate_decides_on_it(tmp_path):
    """`report.measure: decoy_rate`: the verdict and the registered contrasts are on each run's
    decoy-call rate (lower is better), and every accuracy comparison is exploratory."""
    rng = np.random.default_rng(1)
    rate = {"call": 0.15, "twin": 0.40, "outcome": 0.38}
    for zoo in range(6):
        for m, level in rate.items():
            for seed in range(2):
                r = _result("outcome", zoo, seed, rng) | {"method": m}
                for s in r["splits"].values():
                    s |= {
                        "tools/decoy_rate": level + 0.03 * zoo + rng.normal(0, 0.02),
                        "tools/distractor_valid_calls": 50.0,
                    }
                d = tmp_path / "runs" / m / f"zoo{zoo}" / f"seed{seed}"
                d.mkdir(parents=True)
                (d / "result.json").write_text(json.dumps(r))
    report = {"baseline": "outcome", "proposed": "call", "primary": ["call", "twin"], "secondary": [["call", "outcome"]],
              "measure": "decoy_rate"}  # fmt: skip
    (tmp_path / "experiment.json").write_text(json.dumps({"config": {"report": report}}))
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert re.search(r"call calls the decoy less often than twin \(primary contrast, decoy-call rate\): -2\d\.\d", md)
    assert "## Registered analysis: decoy-call rate" in md and "| call | twin | primary |" in md
    assert "| call | outcome | secondary |" in md
    assert "| call | outcome | exploratory |" in md  # accuracy: no longer the verdict
    from iapo.report import read_runs_csv

    rates, _ = read_runs_csv(tmp_path, "decoy_rate")  # what `iapo plan --measure decoy_rate` powers
    assert sorted(rates) == ["call", "outcome", "twin"] and 0.1 < np.mean(list(rates["call"][0].values())) < 0.2
