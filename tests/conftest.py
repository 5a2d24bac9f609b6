"""Shared fixtures: a small world generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from iapo.world import World, WorldConfig, write_world

SMALL_WORLD = WorldConfig(train=300, val=60, test_per_family=40, ood=40)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("world") / "w"
    write_world(SMALL_WORLD, root, workers=1)
    return World(root)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """tests/fixtures/: real WTQ and TabFact rows (wtq/, tabfact/) beside our own fixtures."""
    return Path(__file__).resolve().parent / "fixtures"


@pytest.fixture()
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tokenizers(small_world: World):
    """The main (identifier-split) and alt (word-split, smaller vocabulary) tokenizers."""
    from iapo.models.tokenizer import SPLIT_WORDS, train_tokenizer
    from iapo.supervised.corpus import world_texts

    train = small_world.load("train")
    return {
        "main": train_tokenizer(world_texts(train), 600),
        "alt": train_tokenizer(world_texts(train), 400, SPLIT_WORDS),
    }


@pytest.fixture(scope="session")
def tiny_models(tokenizers):
    """An untrained tiny student and a tiny teacher with the other tokenizer (fast to build)."""
    from iapo.models.build import ModelSpec, build_model, make_processor

    out = {}
    for name, tok, spec in [
        ("student", tokenizers["main"], ModelSpec(hidden=32, heads=2, layers=1, intermediate=64, vision_hidden=32)),
        (
            "teacher_alt",
            tokenizers["alt"],
            ModelSpec(hidden=64, heads=2, layers=2, intermediate=128, vision_hidden=32),
        ),
    ]:
        proc = make_processor(tok, spec)
        out[name] = (build_model(spec, proc, seed=0), proc)
    return out
