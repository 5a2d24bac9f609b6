"""A small world and an untrained tiny student + teacher (quickstart sizes), built in seconds,
for benchmarks that measure speed, not accuracy (no SFT zoo needed)."""

from __future__ import annotations

from pathlib import Path

from iapo.models.build import ModelSpec, build_model, make_processor, save
from iapo.models.tokenizer import SPLIT_WORDS, train_tokenizer
from iapo.store import ExperimentDir
from iapo.supervised.corpus import world_texts
from iapo.world import World, WorldConfig, write_world


def tiny_setup(root: Path) -> tuple[Path, Path]:
    """(world dir, zoo dir with `student` and `teacher` (other tokenizer, 2x deeper))."""
    exp = ExperimentDir(root)
    world_dir, zoo = exp.world, exp.zoo(None).path
    if not world_dir.exists():
        write_world(WorldConfig(train=200, val=32, test_per_family=4, ood=4), world_dir, workers=1)
    train = World(world_dir).load("train")
    for name, tok, spec in (
        ("student", train_tokenizer(world_texts(train), 600), ModelSpec(layers=2)),
        ("teacher", train_tokenizer(world_texts(train), 400, SPLIT_WORDS), ModelSpec(layers=4)),
    ):
        if not (zoo / name / "config.json").exists():
            proc = make_processor(tok, spec)
            save(build_model(spec, proc, seed=0), proc, zoo / name)
    return world_dir, zoo


def zoo_and_world(zoo: Path | None, world: Path | None, root: Path | None = None) -> tuple[Path, Path]:
    """(zoo, world): the given ones, else `tiny_setup`'s (in `root`, a new temporary directory by
    default): every bench runs without a trained zoo, at its smallest size in seconds (tests/test_benches.py)."""
    if zoo is not None and world is not None:
        return zoo, world
    if (zoo is None) != (world is None):
        raise SystemExit("--zoo and --world go together (neither: untrained tiny models on a small world)")
    import tempfile

    w, z = tiny_setup(root or Path(tempfile.mkdtemp()))
    return z, w
