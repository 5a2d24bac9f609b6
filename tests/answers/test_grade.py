"""`iapo.answers.grade`: one dispatcher over the world's metrics and the benchmarks' own, and
submodules that never import it back (no import cycle inside the package)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from iapo.answers import grade

PKG = Path(__file__).resolve().parents[2] / "src" / "iapo" / "metrics"


@pytest.mark.parametrize(
    ("pred", "gold", "metric", "expected"),
    [
        ("1,000", "1000", "exact", 1.0),
        ("Paris.", ["London", "paris"], "exact", 1.0),
        ("104", "100", "relaxed", 1.0),
        ("106", "100", "relaxed", 0.0),
        ("yes", "true", "boolean", 1.0),
        ("2.0", "2", "wtq", 1.0),
        ("It is TRUE.", "1", "vtabfact", 1.0),
        (None, "7", "exact", 0.0),
    ],
)
def test_score_dispatches_on_the_metric_name(pred, gold, metric, expected):
    assert grade(pred, gold, metric) == expected


def test_an_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        grade("a", "a", "bleu")


def test_no_metric_module_imports_the_package_back():
    for path in PKG.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "iapo.answers", f"{path.name} imports iapo.answers (a cycle through score)"
                assert node.module not in ("iapo.answers.charxiv", "iapo.answers.tablevqa") or path.stem in (
                    "charxiv",
                    "tablevqa",
                ), f"{path.name} imports {node.module}"
