"""The run store (`iapo.store`): one typed layout that writers and readers share, described once."""

import json
import re
from pathlib import Path

import pytest

from iapo import store
from iapo.store import (
    METRICS,
    RESULT,
    RUN_RECORD,
    Damaged,
    ExperimentDir,
    RunDir,
    keep_metrics,
    read_metrics,
    read_run_record,
)

ROOT = Path(__file__).resolve().parents[1]


def test_run_files_finds_what_the_layout_lays_out_and_nothing_else(tmp_path):
    """Every run directory the experiment writes (one zoo or several, the SFT student without a
    seed) is found with its method and zoo; files deeper inside a run (TRL's checkpoints, the
    policy) are not runs."""
    exp = ExperimentDir(tmp_path)
    runs = [("outcome", None, 0), ("iapo", None, 1), ("sft", None, None), ("iapo", 3, 0), ("sft", 3, None)]
    for method, zoo, seed in runs:
        exp.run(method, zoo, seed).path.mkdir(parents=True)
        exp.run(method, zoo, seed).result.write_text("{}")
    deep = exp.run("iapo", None, 1).trl / "checkpoint-2"
    deep.mkdir(parents=True)
    (deep / RESULT).write_text("{}")
    found = {(m, z, p.parent) for m, z, p in exp.run_files(RESULT)}
    assert found == {(m, z, exp.run(m, z, s).path) for m, z, s in runs}


def test_first_zoo_is_the_one_zoo_or_the_lowest_seed(tmp_path):
    exp = ExperimentDir(tmp_path)
    assert exp.first_zoo() == exp.zoo(None) and exp.first_zoo().seed is None
    for z in (10, 2):
        exp.zoo(z).path.mkdir(parents=True)
    assert exp.first_zoo() == exp.zoo(2)  # seed 2, not the name-sorted "seed10"


def test_a_record_names_paths_relative_to_its_experiment_and_resolves_them_after_a_move(tmp_path):
    exp = ExperimentDir(tmp_path / "grid")
    run = exp.run("iapo", 3, 0)
    run.path.mkdir(parents=True)
    rec = {"config": {}, "experiment": "../../../..", "zoo": exp.relative(exp.zoo(3).path),
           "world": exp.relative(exp.world), "trm": exp.relative(Path("/elsewhere/trm"))}  # fmt: skip
    assert rec["zoo"] == "zoos/seed3" and rec["world"] == "world" and rec["trm"] == "/elsewhere/trm"
    run.record.write_text(json.dumps(rec))
    moved = tmp_path / "moved"
    (tmp_path / "grid").rename(moved)
    there = ExperimentDir(moved).run("iapo", 3, 0)
    assert there.experiment() == ExperimentDir(moved)
    assert there.resolve(rec["zoo"]) == moved / "zoos" / "seed3" and there.resolve(rec["trm"]) == Path("/elsewhere/trm")
    assert RunDir(tmp_path).experiment() is None  # no record: a run of its own


def _spelled(path: Path) -> list[str]:
    """The layout's names written as path parts (`/ "tb"`, `"run.json"`) in a source file."""
    text = path.read_text()
    files = [n for n in store.LAYOUT if "." in n]
    dirs = [n for n in store.LAYOUT if "." not in n] + ["student", "teacher"]  # role names come from configs
    hits = [n for n in files if re.search(rf"[\"']{re.escape(n)}[\"']", text)]
    return hits + [n for n in dirs if re.search(rf"/\s*[\"']{re.escape(n)}[\"']", text)]


def test_the_layout_is_spelled_only_in_the_store():
    """Every file and folder name of an experiment's layout lives in `iapo.store`: a module or
    bench script that spells one (`run_dir / "tb"`, `zoo / "student"`) is a second description."""
    found = {str(p.relative_to(ROOT)): hits for d in ("src", "bench") for p in sorted((ROOT / d).rglob("*.py"))
             if p.name != "store.py" and (hits := _spelled(p))}  # fmt: skip
    assert not found, found


def test_the_checker_sees_a_spelled_name(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('p = run / "tb"\nq = zoo / "student"\nr = "metrics.jsonl"\ns = {"world": 1}\n')
    assert sorted(_spelled(f)) == ["metrics.jsonl", "student", "tb"]


def test_metrics_keep_drops_rows_and_reads_back(tmp_path):
    path = tmp_path / METRICS
    path.write_text("".join(json.dumps({"step": s, "x": s / 2}) + "\n" for s in range(5)) + "\n")
    keep_metrics(path, lambda r: r["step"] < 3)
    assert read_metrics(tmp_path) == [{"step": s, "x": s / 2} for s in range(3)]
    keep_metrics(tmp_path / "none.jsonl", lambda r: True)  # no log yet: nothing to do
    assert not (tmp_path / "none.jsonl").exists()


def test_records_read_or_say_what_is_wrong(tmp_path):
    assert read_run_record(tmp_path) is None and ExperimentDir(tmp_path).read_record() == {}
    (tmp_path / RUN_RECORD).write_text(json.dumps({"name": "iapo"}))
    with pytest.raises(Damaged, match=r"run\.json: no config"):
        read_run_record(tmp_path)
