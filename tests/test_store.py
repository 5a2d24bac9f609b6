"""The run store (`iapo.store`): one layout that writers and readers share."""

import json

import pytest

from iapo.store import (
    METRICS,
    RESULT,
    RUN_RECORD,
    Damaged,
    first_zoo,
    keep_metrics,
    read_experiment,
    read_metrics,
    read_run_record,
    run_dir,
    run_files,
    zoo_dir,
)


def test_run_files_finds_what_run_dir_lays_out_and_nothing_else(tmp_path):
    """Every run directory the experiment writes (one zoo or several, the SFT student without a
    seed) is found with its method and zoo; files deeper inside a run (TRL's checkpoints, the
    policy) are not runs."""
    runs = [("outcome", None, 0), ("iapo", None, 1), ("sft", None, None), ("iapo", 3, 0), ("sft", 3, None)]
    for method, zoo, seed in runs:
        d = run_dir(tmp_path, method, zoo, seed)
        d.mkdir(parents=True)
        (d / RESULT).write_text("{}")
    deep = run_dir(tmp_path, "iapo", None, 1) / "trl" / "checkpoint-2"
    deep.mkdir(parents=True)
    (deep / RESULT).write_text("{}")
    found = {(m, z, p.parent) for m, z, p in run_files(tmp_path, RESULT)}
    assert found == {(m, z, run_dir(tmp_path, m, z, s)) for m, z, s in runs}


def test_first_zoo_is_the_one_zoo_or_the_lowest_seed(tmp_path):
    assert first_zoo(tmp_path) == (zoo_dir(tmp_path, None), None)
    for z in (10, 2):
        zoo_dir(tmp_path, z).mkdir(parents=True)
    assert first_zoo(tmp_path) == (zoo_dir(tmp_path, 2), 2)  # seed 2, not the name-sorted "seed10"


def test_metrics_keep_drops_rows_and_reads_back(tmp_path):
    path = tmp_path / METRICS
    path.write_text("".join(json.dumps({"step": s, "x": s / 2}) + "\n" for s in range(5)) + "\n")
    keep_metrics(path, lambda r: r["step"] < 3)
    assert read_metrics(tmp_path) == [{"step": s, "x": s / 2} for s in range(3)]
    keep_metrics(tmp_path / "none.jsonl", lambda r: True)  # no log yet: nothing to do
    assert not (tmp_path / "none.jsonl").exists()


def test_records_read_or_say_what_is_wrong(tmp_path):
    assert read_run_record(tmp_path) is None and read_experiment(tmp_path) == {}
    (tmp_path / RUN_RECORD).write_text(json.dumps({"name": "iapo"}))
    with pytest.raises(Damaged, match=r"run\.json: no config"):
        read_run_record(tmp_path)
