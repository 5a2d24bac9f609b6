"""CharXiv, TableVQA-Bench and ReFocus loaders on fixtures in their official layouts, with their
metrics scored on fixed predictions (expected values computed by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iapo.answers import grade
from iapo.answers.charxiv import rule_score
from iapo.data.benchmarks import load_benchmark
from iapo.rollout.loop import tools_apply
from iapo.tools.registry import run_tool

LOCAL = Path(__file__).resolve().parents[1] / "fixtures"


def test_charxiv_loader_questions_and_rule_based_scores(tmp_path):
    got = load_benchmark("charxiv", LOCAL / "charxiv", tmp_path)
    ex = {e.id: e for e in got.examples}
    # reasoning: 3 good rows; descriptive: 4 + 2 questions; test split withheld
    assert len(got.examples) == 9 and got.withheld == 1
    assert any("'7'" in s and "not found" in s for s in got.skipped)
    assert any("'8'" in s and "inst_category 9" in s for s in got.skipped)
    assert got.tools_unavailable == 9
    assert ex["reasoning_val:2"].metric == "charxiv/number_in_chart"
    assert (
        ex["descriptive_val:2:0"].question
        == "For the subplot at row 1 and column 2, what is the leftmost labeled tick on the x-axis?"
    )
    assert ex["descriptive_val:0:0"].question == "What is the layout of the subplots?"
    preds = {
        "reasoning_val:0": "b",  # text: case-free -> 1
        "reasoning_val:2": "The value is 4.0",  # number extracted -> 1
        "reasoning_val:5": "3",  # -> 0
        "descriptive_val:0:0": "1 by 1",  # layout -> 1
        "descriptive_val:0:1": "No",  # gold Not Applicable -> 0
        "descriptive_val:0:2": "B, A",  # enum order matters -> 0
        "descriptive_val:0:3": "7.0",  # quant -> 1
        "descriptive_val:2:0": "x",  # ocr -> 1
        "descriptive_val:2:1": "two",  # quant, not a number -> 0
    }
    scores = {k: grade(p, ex[k].gold, ex[k].metric) for k, p in preds.items()}
    assert sum(scores.values()) == 5 and scores["descriptive_val:0:1"] == 0.0


@pytest.mark.parametrize(
    ("pred", "gold", "rubric", "ok"),
    [
        ("Not Applicable", "Not Applicable", "quant", 1.0),
        ("n/a", "Not Applicable", "title", 1.0),
        ("(a) Loss over time", "Loss over time", "title", 1.0),
        ("$R^2_{t}$", "R^2_t", "ocr", 1.0),
        ("1.5e3", "1500", "number_general", 1.0),
        ("Yes, they do.", "Yes", "bool", 1.0),
        ("two rows and three columns", "2 by 3", "layout", 0.0),
        ("increases", "Increases then stabilizes", "trend", 0.0),
    ],
)
def test_charxiv_rubrics(pred, gold, rubric, ok):
    assert rule_score(pred, gold, rubric) == ok


def test_tablevqa_loader_and_per_subset_metrics(tmp_path):
    got = load_benchmark("tablevqa", LOCAL / "tablevqa", tmp_path)
    ex = {e.id: e for e in got.examples}
    assert set(ex) == {"nu-0", "syn-0", "tf-0", "fin-0"}
    assert len(got.skipped) == 1 and "tf-1" in got.skipped[0] and "vtabfact" in got.skipped[0]
    assert {e.metric for e in got.examples} == {"vwtq", "vtabfact", "fintabnetqa"}
    assert all(Path(e.image_path).exists() for e in got.examples) and got.tools_unavailable == 4
    preds = {
        "nu-0": "bears||lions",  # `||` separator, order-free -> 1
        "syn-0": "3.0",  # -> 1
        "tf-0": "The statement is true, not false",  # both words -> 0
        "fin-0": "1200 million",  # relieved accuracy -> 1
    }
    assert [grade(p, ex[k].gold, ex[k].metric) for k, p in preds.items()] == [1.0, 1.0, 0.0, 1.0]
    assert grade("TRUE", ex["tf-0"].gold, "vtabfact") == 1.0


def test_refocus_boxes_drive_the_tools(tmp_path):
    got = load_benchmark("refocus", LOCAL / "refocus", tmp_path)
    ex = {e.id: e for e in got.examples}
    assert set(ex) == {"tablevqa_wbb:0", "chartQA_v_bar_wbb:0"}
    assert len(got.skipped) == 2  # mismatched boxes, missing image
    assert any("3 column names but 1 boxes" in s for s in got.skipped)
    table, chart = ex["tablevqa_wbb:0"], ex["chartQA_v_bar_wbb:0"]
    assert list(table.layout.rows_bbox) == ["2003", "2004"]  # the header row is not a target
    assert list(chart.layout.x_values_bbox) == ["2019", "2020", "2021"]
    assert tools_apply(table) and tools_apply(chart)
    image = table.load_image()
    masked, _ = run_tool(image, table.layout, "focus_on_rows_with_mask", {"rows": ["2004"]})
    assert masked.size == image.size and masked.tobytes() != image.tobytes()
    drawn, _ = run_tool(chart.load_image(), chart.layout, "focus_on_x_values_with_draw", {"x_values": ["2020"]})
    assert drawn.size == chart.load_image().size
    assert grade("9", table.gold, table.metric) == 1.0 and grade("6.2", chart.gold, chart.metric) == 1.0


def test_chartqa_vcot_training_split(tmp_path):
    got = load_benchmark("chartqa_vcot", LOCAL / "refocus" / "chartqa_vcot", tmp_path)
    assert [e.answer for e in got.examples] == ["5"]
    assert got.examples[0].layout.x_values_bbox["2021"][0] > 0.5
    assert len(got.skipped) == 1 and "train.jsonl:2" in got.skipped[0]
