from __future__ import annotations

import json
import shutil

import pytest

from iapo.data.example import read_jsonl
from iapo.errors import DataError
from iapo.world import World


def test_roundtrip_and_lazy_images(small_world: World):
    ex = small_world.load("val", limit=1)[0]
    assert ex.load_image().size == (len(ex.grid[0]) * 28, len(ex.grid) * 28)
    again = type(ex).from_json(json.loads(json.dumps(ex.to_json())), root=ex.root)
    assert again.to_json() == ex.to_json()


def test_corrupt_image_names_the_file(small_world: World, tmp_path):
    ex = small_world.load("val", limit=1)[0]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    ex.image_path = str(bad)
    with pytest.raises(DataError, match=r"bad\.png: image of example 'val-000000' is corrupt"):
        ex.load_image()
    ex.image_path = str(tmp_path / "missing.png")
    with pytest.raises(DataError, match=r"missing\.png: image of example .* not found"):
        ex.load_image()


def test_malformed_row_names_file_and_line(small_world: World, tmp_path):
    src = small_world.root / "val.jsonl"
    lines = src.read_text().splitlines()
    lines[2] = '{"id": "x", "question": "q"}'  # no answer, no layout
    p = tmp_path / "val.jsonl"
    p.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"val\.jsonl:3: malformed example row"):
        list(read_jsonl(p))


def test_unfinished_world_is_not_taken_for_a_world(small_world: World, tmp_path):
    partial = tmp_path / "w.partial"
    shutil.copytree(small_world.root, partial)
    (partial / "world.json").unlink()
    with pytest.raises(DataError, match=r"world\.json is missing"):
        World(partial)
    with pytest.raises(DataError, match="no split 'tset'"):
        small_world.load("tset")
