"""The ablation table says what each IAPO variant asks, from its config when its name is new."""

from __future__ import annotations

from iapo.eval.stats import CI
from iapo.report import ablation_question, ablation_table


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
    assert ablation_question("iapo_weak", {}) == "Does a weaker teacher still help?"  # known names need no config

    stats = {m: {"average": CI(0.2, 0.1, 0.3, 3), "diff": -0.01, "p_questions": 0.5} for m in methods}
    _, rows = ablation_table(stats, methods)
    assert [r[1] for r in rows][:2] == ["the method", "Another teacher: teacher_long"]
