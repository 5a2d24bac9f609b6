"""The ledger keeps a zoo and its finished runs' records, and gives the records back only to a
zoo and world that hash the same."""

from __future__ import annotations

import json

import pytest

from iapo.errors import ConfigError, DataError
from iapo.ledger import bind_experiment, bind_world, restore_zoo, save_run, take_zoo, zoo_hashes
from iapo.store import ExperimentDir


def run_dir(out, method, zoo, seed):
    return ExperimentDir(out).run(method, zoo, seed).path


def _zoo(root, weights: bytes = b"w" * 64):
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "sft.pt").write_bytes(b"the build's checkpoints")
    for role in ("teacher", "student"):
        (root / role).mkdir(parents=True)
        (root / role / "model.safetensors").write_bytes(weights + role.encode())
        (root / role / "iapo.json").write_text(json.dumps({"seconds": 1.5}))  # times differ between builds
    return root


def _finished(out, method, zoo, seed):
    d = run_dir(out, method, zoo, seed)
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"config": {"seed": seed}}))
    (d / "metrics.jsonl").write_text('{"step": 0}\n')
    (d / "result.json").write_text(json.dumps({"method": method, "seed": seed, "zoo": zoo}))
    (d / "checkpoint.pt").write_bytes(b"big")
    (d / "policy").mkdir()
    return d


def test_records_travel_without_weights_and_come_back_to_the_same_zoo(tmp_path):
    old, new, ledger = tmp_path / "old", tmp_path / "new", tmp_path / "ledger"
    restore_zoo(ledger, old, _zoo(old / "zoos" / "seed3"), 3, ["teacher", "student"])  # records the zoo
    for method, zoo in [("iapo", 3), ("outcome", 3), ("outcome", 4)]:
        save_run(ledger, old, _finished(old, method, zoo, 0))
    assert sorted(p.name for p in run_dir(ledger, "iapo", 3, 0).iterdir()) == [
        "metrics.jsonl",
        "result.json",
        "run.json",
    ]

    assert take_zoo(ledger, new / "zoos" / "seed3", 3) and not take_zoo(ledger, new / "zoos" / "seed4", 4)
    assert zoo_hashes(new / "zoos" / "seed3", ["teacher", "student"]) == zoo_hashes(
        old / "zoos" / "seed3", ["teacher", "student"]
    )
    assert not (ledger / "zoos" / "seed3" / "runs").exists()  # the build's checkpoints stay behind
    (new / "zoos" / "seed3" / "student" / "iapo.json").write_text("{}")  # another build time: the same zoo
    assert restore_zoo(ledger, new, new / "zoos" / "seed3", 3, ["teacher", "student"]) == 2  # zoo 4's run stays
    restored = run_dir(new, "iapo", 3, 0) / "result.json"
    assert json.loads(restored.read_text()) == {"method": "iapo", "seed": 0, "zoo": 3}
    assert not run_dir(new, "outcome", 4, 0).exists()

    restored.write_text(json.dumps({"method": "iapo", "seed": 0, "zoo": 3, "here": True}))
    (run_dir(new, "outcome", 3, 0) / "result.json").unlink()
    assert restore_zoo(ledger, new, new / "zoos" / "seed3", 3, ["teacher", "student"]) == 1  # a result here wins
    assert json.loads(restored.read_text())["here"]


def test_a_zoo_rebuilt_differently_is_refused_with_both_hashes(tmp_path):
    ledger = tmp_path / "ledger"
    first = _zoo(tmp_path / "a" / "zoos" / "seed1")
    restore_zoo(ledger, tmp_path / "a", first, 1, ["teacher", "student"])
    other = _zoo(tmp_path / "b" / "zoos" / "seed1", weights=b"v" * 64)
    recorded = zoo_hashes(first, ["student"])["student"][:12]
    with pytest.raises(DataError, match=rf"zoo 1 was rebuilt differently here \(student: recorded {recorded}, built "):
        restore_zoo(ledger, tmp_path / "b", other, 1, ["teacher", "student"])
    assert not (tmp_path / "b" / "runs").exists()


def test_a_role_without_weights_is_named(tmp_path):
    (tmp_path / "zoo" / "teacher").mkdir(parents=True)
    with pytest.raises(DataError, match="teacher: no weight files"):
        zoo_hashes(tmp_path / "zoo", ["teacher"])


def test_the_world_is_bound_to_its_ledger(tmp_path):
    world, ledger = tmp_path / "world", tmp_path / "ledger"
    world.mkdir()
    (world / "train.jsonl").write_text('{"q": 1}\n')
    (world / "images" / "train").mkdir(parents=True)
    (world / "images" / "train" / "0.png").write_bytes(b"png")
    bind_world(ledger, world)
    bind_world(ledger, world)  # the same world: nothing to say
    (world / "images" / "train" / "0.png").write_bytes(b"png written by another zlib")
    with pytest.raises(DataError, match=r"the world was rebuilt differently here \(images: "):
        bind_world(ledger, world)
    (world / "images" / "train" / "0.png").write_bytes(b"png")
    (world / "train.jsonl").write_text('{"q": 2}\n')
    with pytest.raises(DataError, match=r"the world was rebuilt differently here \(world: "):
        bind_world(ledger, world)


def test_only_a_finished_run_is_saved(tmp_path):
    d = _finished(tmp_path / "out", "outcome", None, 0)
    (d / "result.json").unlink()
    with pytest.raises(DataError, match="only a finished run"):
        save_run(tmp_path / "ledger", tmp_path / "out", d)


def test_a_ledger_holds_one_experiment(tmp_path):
    world, ledger = tmp_path / "world", tmp_path / "ledger"
    world.mkdir()
    (world / "val.jsonl").write_text("{}\n")
    grid = {"config": {"seeds": [0, 1, 2], "grpo": {"steps": 100}}, "written": "today"}
    bind_experiment(ledger, grid, world)
    bind_experiment(ledger, {**grid, "written": "tomorrow", "timings": {"total_s": 1.0}}, world)  # the same grid
    assert json.loads((ledger / "experiment.json").read_text())["timings"] == {"total_s": 1.0}
    other = {"config": {"seeds": [0, 1, 2], "grpo": {"steps": 40}}}
    with pytest.raises(ConfigError, match=r"another experiment \(grpo.steps differ\)"):
        bind_experiment(ledger, other, world)
