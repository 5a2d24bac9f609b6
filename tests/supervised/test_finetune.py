"""`iapo finetune`: SFT of a checkpoint directory on benchmark training files (ReFocus
chartqa_vcot fixture), whose focus areas become the demonstrated tool call."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

from iapo.data.benchmarks import load_benchmark
from iapo.models.build import load, save
from iapo.supervised.sft import sft_segments

VCOT = Path(__file__).resolve().parents[1] / "fixtures" / "refocus" / "chartqa_vcot"


def test_focus_areas_become_the_reference_call(tmp_path):
    ex = load_benchmark("chartqa_vcot", VCOT, tmp_path).examples[0]
    assert ex.reference_path == [{"name": "focus_on_x_values_with_highlight", "arguments": {"x_values": ["2021"]}}]
    segs = sft_segments(ex, random.Random(0), tools=True)
    assert sum(s.kind == "tool_output" for s in segs) == 1 and "2021" in "".join(s.text for s in segs)


def test_finetune_cli_trains_and_saves(tiny_models, tmp_path):
    from tests.test_cli import iapo

    student = save(*tiny_models["student"], tmp_path / "student")
    cfg = {
        "student": str(student),
        "device": "cpu",
        "data": {"cache": str(tmp_path / "cache"), "splits": {
            "train": {"bench": "chartqa_vcot", "data": str(VCOT)}, "val": {"bench": "chartqa_vcot", "data": str(VCOT)}}},
        "sft": {"text_steps": 0, "steps": 2, "batch_size": 1, "checkpoint_every": 1},
    }  # fmt: skip
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(cfg))
    r = iapo("finetune", "--config", str(tmp_path / "sft.yaml"), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "run" / "multimodal" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["sft_multimodal/loss"] > 0 for row in rows)
    tuned, _ = load(tmp_path / "run" / "policy")
    base, _ = load(student)
    assert any(not a.equal(b) for a, b in zip(tuned.parameters(), base.parameters(), strict=True))
