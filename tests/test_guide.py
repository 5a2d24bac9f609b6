"""docs/guide.md's "How to add" recipes run as written: a recipe that goes stale fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def recipe(name: str) -> str:
    blocks = re.findall(r"```python\n# recipe: (\w+)\n(.*?)```", GUIDE.read_text(), re.S)
    found = {k: code for k, code in blocks}
    assert name in found, f"docs/guide.md has no '# recipe: {name}' block (has {sorted(found)})"
    return found[name]


@pytest.fixture(scope="module")
def episodes(tiny_models, small_world):
    from iapo.rollout.loop import RolloutConfig, rollout

    model, proc = tiny_models["student"]
    return rollout(model, proc, small_world.load("train")[:4], RolloutConfig(max_new_tokens=8, max_calls=1))


def test_the_guide_has_the_four_recipes():
    assert sorted(re.findall(r"# recipe: (\w+)", GUIDE.read_text())) == ["benchmark", "estimator", "reward", "template"]


def test_recipe_reward(episodes, tmp_path):
    ns = {"zoo": tmp_path, "episodes": episodes}
    exec(recipe("reward"), ns)
    assert "reward/short_answer" in ns["row"] and ns["values"].shape == (len(episodes), len(ns["rewards"]))


def test_recipe_estimator(episodes, tiny_models, monkeypatch):
    from iapo.attribution import episodes as registry

    monkeypatch.setattr(registry, "ESTIMATORS", dict(registry.ESTIMATORS))  # the recipe's entry stays here
    model, proc = tiny_models["student"]
    ns = {"model": model, "processor": proc, "episodes": episodes}
    exec(recipe("estimator"), ns)
    (turn,) = ns["turns"]
    assert float(turn.p.sum()) == pytest.approx(1.0) and turn.token_attr is not None


def test_recipe_template(tmp_path, monkeypatch):
    from iapo.world import World
    from iapo.world.families import FAMILY_TEMPLATES

    monkeypatch.setitem(FAMILY_TEMPLATES, "table_lookup", list(FAMILY_TEMPLATES["table_lookup"]))
    exec(recipe("template"), {"tmp": tmp_path})
    train = World(tmp_path / "world").load("train")
    assert train and all(e.meta["template"] == "first_cell" and len(e.evidence) == 1 for e in train)


def test_recipe_benchmark(tmp_path, monkeypatch):
    from iapo.data.benchmarks import LOADERS

    monkeypatch.setattr("iapo.data.benchmarks.LOADERS", dict(LOADERS))
    bench = tmp_path / "mini"
    bench.mkdir()
    Image.new("RGB", (56, 56), "white").save(bench / "a.png")
    rows = [
        {"image": "a.png", "question": "How tall?", "answer": "3"},
        {"image": "gone.png", "question": "?", "answer": "1"},
    ]
    (bench / "mini.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ns = {"bench_dir": bench, "tmp": tmp_path}
    exec(recipe("benchmark"), ns)
    loaded = ns["loaded"]
    assert (
        [e.answer for e in loaded.examples] == ["3"]
        and len(loaded.skipped) == 1
        and "mini.jsonl:2" in loaded.skipped[0]
    )
