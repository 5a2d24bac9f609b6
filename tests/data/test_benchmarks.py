"""Benchmark loaders on fixtures in the official layouts, and their official metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from iapo.answers import grade
from iapo.answers.wtq import denotation_match, official_normalize
from iapo.data.benchmarks import load_benchmark
from iapo.errors import DataError

LOCAL = Path(__file__).resolve().parents[1] / "fixtures"


def test_wtq_fixture_and_denotation_accuracy(tmp_path, shared_fixtures):
    got = load_benchmark("wtq", shared_fixtures / "wtq", tmp_path)
    assert len(got.examples) == 24 and not got.skipped
    ex = {e.id: e for e in got.examples}
    zee = ex["nt-4997"]
    assert zee.answer == "Saregamapa Challenge|Rock n Roll Family"
    assert "Channel" in zee.layout.columns_bbox and Path(zee.image_path).exists()
    # a fixed set of predictions, scored by hand:
    preds = {
        "nt-4997": "rock n roll family|Saregamapa Challenge",  # multi-value, order-free, case-free -> 1
        "nt-2133": "5.0",  # number vs "5" -> 1
        "nt-6154": "2011-12",  # -> 1
        "nt-2891": "Ratan Planet (tower)",  # parenthesised detail dropped -> 1
    }
    scores = [grade(p, ex[i].gold, "wtq") for i, p in preds.items()]
    assert scores == [1.0, 1.0, 1.0, 1.0]
    assert grade("Saregamapa Challenge", zee.gold, "wtq") == 0.0  # one of two values -> 0


@pytest.mark.parametrize(
    ("pred", "gold", "ok"),
    [
        ("1,000", "1000", True),
        ("1000", "1,000", True),
        ("1,000.5", "1000.5", True),
        ("1000", "1001", False),
        ("2004-xx-xx", "2004-xx-xx", True),
        ("2004-05-xx", "2004-06-xx", False),
        ("b|a", "a|b", True),
        ("a|a", "a|b", False),
        ('"Hello"', "hello", True),
        ("Café", "cafe", True),
        ("U.S.", "u.s", True),
        ("foo [1]", "foo", True),
        ("", "foo", False),
    ],
)
def test_wtq_normalisation_cases(pred, gold, ok):
    assert denotation_match(pred, gold) is ok


def test_wtq_normalize_dashes_and_spaces():
    assert official_normalize("1882–1918") == "1882-1918"
    assert official_normalize("  A   b ") == "a b"


def test_tabfact_fixture_and_accuracy(tmp_path, shared_fixtures):
    got = load_benchmark("tabfact", shared_fixtures / "tabfact", tmp_path)
    assert len(got.examples) == 24 and not got.skipped
    first = got.examples[0]
    assert first.question.startswith("True or false: ") and first.answer in ("true", "false")
    # predictions: right for the first 6, wrong for the next 6 -> accuracy 0.5 on 12
    preds = [e.answer for e in got.examples[:6]] + [
        "false" if e.answer == "true" else "true" for e in got.examples[6:12]
    ]
    acc = sum(grade(p, e.gold, "boolean") for p, e in zip(preds, got.examples, strict=False)) / 12
    assert acc == 0.5
    assert grade("yes", "true", "boolean") == 1.0 and grade("entailed", "false", "boolean") == 0.0


def test_chartqa_fixture_relaxed_accuracy_and_bad_rows(tmp_path):
    got = load_benchmark("chartqa", LOCAL / "chartqa", tmp_path)
    assert [e.answer for e in got.examples] == ["7", "12", "second"]
    assert len(got.skipped) == 2 and "missing.png" in got.skipped[0] and "row 1" in got.skipped[1]
    assert got.tools_unavailable == 3
    preds = ["7.3", "11", "Second"]  # 4.3% off -> 1; 8.3% off -> 0; text exact -> 1
    assert [grade(p, e.gold, "relaxed") for p, e in zip(preds, got.examples, strict=True)] == [1.0, 0.0, 1.0]


def test_corrupt_wtq_row_is_skipped_and_named(tmp_path):
    root = tmp_path / "wtq"
    (root / "csv" / "200-csv").mkdir(parents=True)
    (root / "csv" / "200-csv" / "0.csv").write_text("a,b\n1,2\n")
    (root / "q.tsv").write_text(
        "id\tutterance\tcontext\ttargetValue\nq1\twhat?\tcsv/200-csv/0.csv\t1\nq2\tbroken row\nq3\tgone\tcsv/200-csv/9.csv\tx\n"
    )
    got = load_benchmark("wtq", root, tmp_path / "cache")
    assert [e.id for e in got.examples] == ["q1"]
    assert len(got.skipped) == 2
    assert "q.tsv:3" in got.skipped[0] and "q.tsv:4" in got.skipped[1] and "9.csv" in got.skipped[1]


def test_unknown_benchmark_and_missing_dir(tmp_path):
    with pytest.raises(DataError, match="unknown benchmark"):
        load_benchmark("nope", tmp_path, tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_benchmark("wtq", tmp_path / "missing", tmp_path)
