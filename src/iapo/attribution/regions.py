"""Region-level attribution: where inside the images a turn's attribution falls, in the
coordinates of the episode's original image.

Component shares say how much a turn reads the tool outputs; they cannot say whether it reads
the cells that carry the answer. Regions can. The regions of a question are its original
image's content units (`Layout.units()`: table cells `row/column`, chart values) plus `other`
(headers, row starters, axes, blank space); an image without unit boxes is cut into a fixed
`patches x patches` grid. Every image token of the scored turn's input, the original's and each
tool output's, is mapped back to the original through the tool's geometry (`View`: a crop
narrows the frame, a mask hides its box) and counted in the region its centre falls in; a
masked token shows no region and counts for none. So a student that crops to the evidence row
and one that reads the evidence in the original image put their attribution on the same regions.

A_r = sum of the token attributions of region r's tokens; p_r = |A_r| / sum_r' |A_r'|. The token
attributions come from a token-level estimator (`grad_x_delta` by default: one backward; `ig`
also works); the component games (occlusion, Shapley) have no per-token values.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from iapo.attribution.episodes import (
    AttributionSettings,
    TurnAttribution,
    attribute_episodes,
    attribute_passes,
    token_level,
)
from iapo.rollout.episode import Encoded, Segment
from iapo.tools.layout import Box, Layout

OTHER = "other"


PATCHES = 4  # an image without unit boxes is a PATCHES x PATCHES grid of regions: the one default


def regions_of(layout: Layout, patches: int = PATCHES) -> dict[str, Box]:
    """The named regions of an original image: its content units, or a patch grid."""
    units = layout.units()
    if units:
        return units
    step = 1.0 / patches
    return {f"patch {r},{c}": (c * step, r * step, (c + 1) * step, (r + 1) * step)
            for r in range(patches) for c in range(patches)}  # fmt: skip


def move_regions(shares: dict[str, float], src: Layout, dst: Layout, patches: int = PATCHES) -> dict[str, float]:
    """Region shares of an image with layout `src` carried to an image with layout `dst` by
    position: each region's share goes to the region of `dst` whose centre is nearest its own
    (`other` stays `other`). Where on the page one question's evidence lies, said of another."""
    a, b = regions_of(src, patches), regions_of(dst, patches)
    centre = {n: ((x0 + x1) / 2, (y0 + y1) / 2) for n, (x0, y0, x1, y1) in b.items()}
    out: dict[str, float] = {}
    for name, v in shares.items():
        if name in a:
            x0, y0, x1, y1 = a[name]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            name = min(centre, key=lambda n: (centre[n][0] - cx) ** 2 + (centre[n][1] - cy) ** 2)
        else:
            name = OTHER
        out[name] = out.get(name, 0.0) + v
    return out


def region_at(x: float, y: float, regions: dict[str, Box]) -> str:
    """The region whose box holds point (x, y) of the original image, else `other`."""
    for name, b in regions.items():
        if b[0] <= x < b[2] and b[1] <= y < b[3]:
            return name
    return OTHER


def image_token_regions(
    enc: Encoded, segments: list[Segment], regions: dict[str, Box], merge: int, before: int | None = None
) -> list[tuple[int, str]]:
    """(position, region) of every image token of an encoded episode before position `before`.
    Image tokens of one image are its merged patches in row-major order (Qwen2.5-VL); an image
    with no recorded view (a demonstration's tool output) and masked tokens are left out."""
    views = [v for s in segments for v in (s.views or [None] * len(s.images))]
    pos = enc.mm_token_type_ids.nonzero().flatten().tolist()
    out, k = [], 0
    for view, (t, h, w) in zip(views, enc.image_grid_thw.tolist() if enc.image_grid_thw is not None else [],
                               strict=True):  # fmt: skip
        H, W = h // merge, w // merge
        n = t * H * W
        if view is not None:
            for j in range(n):
                r, c = divmod(j % (H * W), W)
                p = view.locate((c + 0.5) / W, (r + 0.5) / H)
                if p is not None and (before is None or pos[k + j] < before):
                    out.append((pos[k + j], region_at(*p, regions)))
        k += n
    return out


def region_shares(token_attr: torch.Tensor, token_regions: list[tuple[int, str]]) -> dict[str, float] | None:
    """p_r from token attributions (T,): |sum over r's tokens| normalised; None if all zero or
    not finite."""
    sums: dict[str, float] = {}
    for i, r in token_regions:
        sums[r] = sums.get(r, 0.0) + float(token_attr[i])
    total = sum(abs(v) for v in sums.values())
    if not sums or not math.isfinite(total) or total == 0:
        return None
    return {r: abs(v) / total for r, v in sums.items()}


def l1(p: dict[str, float], q: dict[str, float]) -> float:
    """L1 distance between two region share maps (a region missing from one has share 0)."""
    return sum(abs(p.get(r, 0.0) - q.get(r, 0.0)) for r in set(p) | set(q))


def mean_region_shares(maps: list[dict[str, float]]) -> dict[str, float] | None:
    """The average of several region share maps (over a teacher's episodes of a question)."""
    if not maps:
        return None
    keys = sorted({r for m in maps for r in m})
    return {r: sum(m.get(r, 0.0) for m in maps) / len(maps) for r in keys}


def turn_regions(
    turn: TurnAttribution, segments: list[Segment], layout: Layout, merge: int, patches: int = PATCHES
) -> dict[str, float] | None:
    """Region shares of one scored turn (its token attributions must exist: a token-level
    estimator), counting the image tokens before the turn."""
    if turn.token_attr is None or not turn.finite:
        return None
    starts = [s for (s, _), k in zip(turn.encoded.spans, turn.encoded.kinds, strict=True) if k == "assistant"]
    before = starts[turn.turn] if turn.turn < len(starts) else None
    pairs = image_token_regions(turn.encoded, segments, regions_of(layout, patches), merge, before)
    return region_shares(turn.token_attr, pairs)


def attribute_regions(
    model, processor, episodes: list[tuple[list[Segment], Layout]], settings: AttributionSettings, patches: int = PATCHES,
    keep_ids: bool = True,
) -> list[dict[str, float] | None]:  # fmt: skip
    """Region shares of the final turn of each (segments, layout of the original image)."""
    return components_and_regions(model, processor, episodes, "final", None, settings, patches, keep_ids)[1]


def components_and_regions(
    model, processor, episodes: list[tuple[list[Segment], Layout]], which: Literal["final", "all"],
    components: AttributionSettings | None, regions: AttributionSettings | None, patches: int = PATCHES,
    keep_ids: bool = True,
) -> tuple[list[list[TurnAttribution]] | None, list[dict[str, float] | None] | None]:  # fmt: skip
    """(the component attribution of the `which` turns, the region shares of the final turn) of
    each episode, None for a part whose settings are None: what IAPO's term reads of a model. When
    both score the final turn they run as passes of one call (`attribute_passes`: each batch
    encoded and embedded once, the region pass's f(x) the games' full coalition)."""
    if regions is not None and regions.estimator not in token_level():
        raise ValueError(
            f"region shares need a token-level estimator ({', '.join(token_level())}), not {regions.estimator!r}"
        )
    segs = [s for s, _ in episodes]
    if components is not None and regions is not None and which != "final":
        res = [attribute_episodes(model, processor, segs, which, components, keep_ids),
               attribute_episodes(model, processor, segs, "final", regions, keep_ids)]  # fmt: skip
    else:
        passes = [s for s in (components, regions) if s is not None]
        res = attribute_passes(model, processor, segs, which if components is not None else "final", passes, keep_ids)
    turns = res[0] if components is not None else None
    if regions is None:
        return turns, None
    merge = int(processor.merge)
    return turns, [turn_regions(t[0], s, lay, merge, patches) if t else None
                   for t, (s, lay) in zip(res[-1], episodes, strict=True)]  # fmt: skip
