"""Region-level attribution: image tokens mapped back to the original image through each tool's
geometry (hand-built images), hand-computed region shares and targets, the region cache key, and
the term with regions on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from iapo.attribution.regions import OTHER, image_token_regions, region_shares, regions_of
from iapo.rewards.alignment import AttributionReward, AttributionRewardConfig
from iapo.rewards.targets import evidence_regions
from iapo.rollout.episode import Encoded, Segment
from iapo.tools import ToolSession, parse_turn
from iapo.tools.layout import View
from tests.tools.test_registry import LAYOUT

TOKEN_PX = 28  # one merged vision token of a world image


def _encoded(images: list[tuple[View | None, int, int]]) -> tuple[Encoded, list[Segment]]:
    """An encoded episode made of images only: (view, rows, cols of merged tokens) each."""
    n = sum(h * w for _, h, w in images)
    enc = Encoded(
        input_ids=torch.zeros(n, dtype=torch.long),
        mm_token_type_ids=torch.ones(n, dtype=torch.long),
        pixel_values=None,
        image_grid_thw=torch.tensor([[1, 2 * h, 2 * w] for _, h, w in images]),
        spans=[(0, n)],
        kinds=["image"],
    )
    seg = Segment("image", "", images=[None] * len(images), views=[v for v, _, _ in images])  # type: ignore[list-item]
    return enc, [seg]


def _after(*calls: tuple[str, dict]) -> tuple[View, int, int]:
    """The view and token size of the image a session shows after `calls` on LAYOUT's 4x4 table."""
    s = ToolSession(Image.new("RGB", (4 * TOKEN_PX, 4 * TOKEN_PX), "white"), LAYOUT)
    for name, args in calls:
        r = s.step(parse_turn("<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"))
        assert r.view is not None, r.message
    w, h = s.image.size
    return s.view, h // TOKEN_PX, w // TOKEN_PX


def _grid(img: tuple[View, int, int]) -> list[list[str | None]]:
    """Region of each token of one image (None: masked)."""
    enc, segs = _encoded([img])
    got = dict(image_token_regions(enc, segs, regions_of(LAYOUT), merge=2))
    _, h, w = img
    return [[got.get(r * w + c) for c in range(w)] for r in range(h)]


def test_original_image_tokens_fall_in_cells_or_other():
    # LAYOUT: header row 0, row starters in column 0, cells rows A-C x columns a-c
    assert _grid((View(), 4, 4)) == [
        [OTHER, OTHER, OTHER, OTHER],
        [OTHER, "A/a", "A/b", "A/c"],
        [OTHER, "B/a", "B/b", "B/c"],
        [OTHER, "C/a", "C/b", "C/c"],
    ]


def test_marks_move_nothing():
    for tool in ("draw_box", "focus_on_rows_with_highlight", "focus_on_columns_with_draw"):
        args = {"rows": ["B"]} if "rows" in tool or tool == "draw_box" else {"columns": ["b"]}
        assert _grid(_after((tool, args))) == _grid((View(), 4, 4)), tool


def test_mask_hides_its_tokens():
    g = _grid(_after(("focus_on_columns_with_mask", {"columns": ["b"]})))
    assert [row[2] for row in g] == [OTHER, "A/b", "B/b", "C/b"]
    assert all(row[1] is None and row[3] is None for row in g)  # columns a and c are masked
    assert [row[0] for row in g] == [OTHER] * 4  # row starters stay


def test_crop_maps_back_to_the_original_cell():
    assert _grid(_after(("crop", {"rows": ["B"], "columns": ["c"]}))) == [["B/c"]]
    # a crop of two rows' cells (starters excluded), then a mask inside the crop: both maps compose
    g = _grid(_after(("crop", {"rows": ["A", "B"]}), ("focus_on_columns_with_mask", {"columns": ["a"]})))
    assert g == [["A/a", None, None], ["B/a", None, None]]


def test_region_shares_by_hand():
    """Original 4x4 image: +1 on A/a, -3 on B/b, +0.5 on a header token; a 1x1 crop to B/b
    with +1: B/b sums to -2. Shares |A_r| / sum |A_r| = 1, 2, 0.5 over 3.5."""
    crop = _after(("crop", {"rows": ["B"], "columns": ["b"]}))
    enc, segs = _encoded([(View(), 4, 4), crop])
    attr = torch.zeros(17)
    attr[1 * 4 + 1], attr[2 * 4 + 2], attr[0], attr[16] = 1.0, -3.0, 0.5, 1.0
    p = region_shares(attr, image_token_regions(enc, segs, regions_of(LAYOUT), merge=2))
    assert p == pytest.approx({"A/a": 1 / 3.5, "B/b": 2 / 3.5, OTHER: 0.5 / 3.5, **{
        u: 0.0 for u in LAYOUT.units() if u not in ("A/a", "B/b")}})  # fmt: skip
    assert region_shares(torch.zeros(17), image_token_regions(enc, segs, regions_of(LAYOUT), merge=2)) is None


def test_an_image_without_units_gets_a_patch_grid():
    from iapo.tools.layout import Layout

    r = regions_of(Layout(kind="chart"), patches=2)
    assert r == {"patch 0,0": (0, 0, 0.5, 0.5), "patch 0,1": (0.5, 0, 1, 0.5),
                 "patch 1,0": (0, 0.5, 0.5, 1), "patch 1,1": (0.5, 0.5, 1, 1)}  # fmt: skip


def test_evidence_region_target_is_uniform_over_the_evidence_cells(small_world):
    ex = next(e for e in small_world.load("val") if e.layout.kind == "table" and e.evidence)
    q = evidence_regions(ex)
    assert set(q) == set(ex.evidence) and sum(q.values()) == pytest.approx(1)


def _reward(tiny_models, tmp_path, **cfg):
    c = AttributionRewardConfig(**{"target": "teacher_own", **cfg})
    from iapo.rollout.loop import RolloutConfig

    r = AttributionReward(c, tiny_models["teacher_alt"], 0, tmp_path / "targets", None,
                          RolloutConfig(max_calls=1, max_new_tokens=8, batch_size=8))  # fmt: skip
    r.bind_policy(*tiny_models["student"])
    return r


def test_region_targets_have_their_own_cache_and_component_caches_keep_theirs(tiny_models, small_world, tmp_path):
    comp = _reward(tiny_models, tmp_path, regions=0.0)
    assert comp.cache.settings == json.loads(json.dumps({**comp.cache.settings}))
    assert "regions" not in comp.cache.settings  # a component-only cache keeps the key of 0.1
    reg = _reward(tiny_models, tmp_path, regions=1.0)
    assert reg.cache.path != comp.cache.path
    assert _reward(tiny_models, tmp_path, regions=2.0).cache.path == reg.cache.path  # the weight is not a key
    assert _reward(tiny_models, tmp_path, regions=1.0, patches=3).cache.path != reg.cache.path
    assert _reward(tiny_models, tmp_path, regions=1.0, region_estimator="ig").cache.path != reg.cache.path
    qs = small_world.load("train")[:2]
    assert reg.prepare(qs) == 2
    for ex in qs:
        m = reg.cache.get_regions(ex)
        assert m is None or sum(m.values()) == pytest.approx(1, abs=1e-5)


def test_the_term_with_regions_runs_and_logs_its_split(tiny_models, small_world, tmp_path):
    from iapo.rollout.loop import RolloutConfig, rollout

    exs = small_world.load("train")[:2]
    model, proc = tiny_models["student"]
    eps = rollout(model, proc, exs, RolloutConfig(max_calls=1, max_new_tokens=8, batch_size=8))
    for target in ("evidence", "random"):
        r = _reward(tiny_models, tmp_path, target=target, components=0.0, regions=1.0)
        out = r(["" for _ in eps], ["" for _ in eps], episodes=eps)
        assert len(out) == len(eps) and all(v is None or -2 <= v <= 0 for v in out)
        assert "attr/region_divergence" in r.metrics() and "attr/region_divergence_useful_calls" in r.metrics()
    with pytest.raises(ValueError, match="both 0"):
        AttributionRewardConfig(components=0.0, regions=0.0)


def test_the_default_term_sums_the_component_and_region_divergences(tiny_models, small_world, tmp_path):
    """The library default (0.3.1): D = 1 x the component divergence + 1 x the region divergence."""
    from iapo.rollout.loop import RolloutConfig, rollout

    exs = small_world.load("train")[:2]
    model, proc = tiny_models["student"]
    eps = rollout(model, proc, exs, RolloutConfig(max_calls=1, max_new_tokens=8, batch_size=8))
    assert AttributionRewardConfig().components == 1.0 and AttributionRewardConfig().regions == 1.0

    def term(**cfg) -> list[float | None]:
        return _reward(tiny_models, tmp_path, target="evidence", **cfg)(
            ["" for _ in eps], ["" for _ in eps], episodes=eps
        )

    both, comp, reg = term(), term(regions=0.0), term(components=0.0)
    for b, c, r in zip(both, comp, reg, strict=True):
        assert (b is None) == (c is None or r is None)
        assert b is None or b == pytest.approx(c + r, abs=1e-5)
