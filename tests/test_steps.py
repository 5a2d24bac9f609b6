"""The supervised step loop (`iapo.steps.run_steps`) and the metric log."""

from __future__ import annotations

import json
import math

from iapo.steps import MetricLog, run_steps


def test_a_loop_stopped_at_its_target_completes_its_progress_bar(tmp_path):
    """A stage that reaches its loss target at step 4 of 10 reports 10/10 (done), not 4/10 (stalled)."""
    seen = []
    run_steps(tmp_path, 0, 10, lambda k: {"loss": 1.0 / (k + 1)}, lambda k: {}, checkpoint_every=100,
              progress=lambda done, total, row: seen.append((done, total)), stop=lambda row: row["loss"] < 0.3)  # fmt: skip
    assert seen == [(1, 10), (2, 10), (3, 10), (10, 10)]
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]


def test_the_metric_log_writes_a_nonfinite_value_as_nan(tmp_path):
    log = MetricLog(tmp_path, tensorboard=False)
    log.log(1, {"a": math.inf, "b": 0.5})
    (row,) = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert math.isnan(row["a"]) and row["b"] == 0.5
