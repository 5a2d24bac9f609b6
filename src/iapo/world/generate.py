"""Seeded generation of world examples and splits.

Each example is a pure function of `(world seed, split, index)`: the split name is part of the
seed, so splits never share a random stream, and a content hash (image grid + question) keeps
them disjoint in content too. Test and OOD splits are drawn first; val and train skip anything
already drawn.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.errors import ConfigError
from iapo.world.families import (
    DEFAULT_TEMPLATES,
    FAMILIES,
    FAMILY_TEMPLATES,
    Draw,
)
from iapo.world.glyphs import LOWER, UPPER
from iapo.world.layouts import Scene, make_chart, make_table
from iapo.world.paths import valid_paths
from iapo.world.scene import render

# Header alphabets: in-distribution splits use the first letters, OOD the held-out last six.
ID_UPPER, OOD_UPPER = UPPER[:-6], UPPER[-6:]
ID_LOWER, OOD_LOWER = LOWER[:-6], LOWER[-6:]


class Regime(StrictModel):
    """Sizes of one distribution (in-distribution or OOD)."""

    table_rows: tuple[int, int] = Field((3, 4), description="table rows (min, max)")
    table_cols: tuple[int, int] = Field((3, 4), description="table columns (min, max)")
    chart_categories: tuple[int, int] = Field((3, 5), description="bar chart categories (min, max)")
    grouped_categories: tuple[int, int] = Field((3, 3), description="grouped chart categories (min, max)")
    series: int = Field(2, ge=2, le=3, description="series of a grouped chart")
    unseen_headers: bool = Field(False, description="draw headers from the held-out vocabulary")

    @model_validator(mode="after")
    def _ranges(self) -> Regime:
        for name in ("table_rows", "table_cols", "chart_categories", "grouped_categories"):
            lo, hi = getattr(self, name)
            if not 2 <= lo <= hi <= 6:
                raise ValueError(f"{name} must satisfy 2 <= min <= max <= 6, got {lo}, {hi}")
        return self


def _ood_default() -> Regime:
    return Regime(
        table_rows=(5, 6),
        table_cols=(5, 6),
        chart_categories=(6, 6),
        grouped_categories=(3, 3),
        series=3,
        unseen_headers=True,
    )


class WorldConfig(StrictModel):
    """The world: split sizes, family mixture and the two distributions."""

    seed: int = Field(0, description="the world's seed: every image and question")
    train: int = Field(10000, ge=0, description="training examples (mixture of all families)")
    val: int = Field(500, ge=0, description="validation examples (same mixture; for model selection)")
    test_per_family: int = Field(300, ge=0, description="examples in each test_<family> split")
    ood: int = Field(300, ge=0, description="out-of-distribution examples (mixture of all families)")
    family_weights: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(FAMILIES, 1.0), description="question family -> its share of train/val"
    )
    templates: list[str] | None = Field(
        None,
        description="question templates to draw (`meta.template` names); default all but the opt-in "
        "`value_pair` (two cells read as one number) and `value_pair_below` (the same of the row below the named one: "
        "the useful call names a row only the image shows) and `value_pair_later` (of two named rows, the one later in the "
        "alphabet: a call on the other runs and is useless). A family left with none is not drawn and gets no test split",
    )
    max_path_calls: int = Field(2, ge=1, le=3, description="longest tool path enumerated as valid")
    in_dist: Regime = Field(default_factory=Regime, description="the train / val / test regime")
    out_dist: Regime = Field(default_factory=_ood_default, description="the ood split's regime")

    @field_validator("family_weights")
    @classmethod
    def _families(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown families {sorted(unknown)}; known: {list(FAMILIES)}")
        if not any(w > 0 for w in v.values()):
            raise ValueError("give some family a positive weight")
        return v

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: list[str] | None) -> list[str] | None:
        known = list(dict.fromkeys(d.name for draws in FAMILY_TEMPLATES.values() for d in draws))  # as registered now
        if v is not None and (unknown := set(v) - set(known)):
            raise ValueError(f"unknown templates {sorted(unknown)}; known: {known}")
        if v is not None and not v:
            raise ValueError("templates: name at least one (or leave it out for all)")
        return v

    @model_validator(mode="after")
    def _drawable(self) -> WorldConfig:
        if not any(w > 0 for f, w in self.family_weights.items() if self.family_templates(f)):
            raise ValueError("no family with a positive weight has any of the chosen templates")
        return self

    def family_templates(self, family: str) -> list[Draw]:
        """The family's draws that `templates` keeps."""
        keep = DEFAULT_TEMPLATES if self.templates is None else self.templates
        return [d for d in FAMILY_TEMPLATES[family] if d.name in keep]

    def families(self) -> list[str]:
        """Families that have a template left: only these get a test split."""
        return [f for f in FAMILIES if self.family_templates(f)]

    def split_sizes(self) -> dict[str, int]:
        sizes = {f"test_{f}": self.test_per_family for f in self.families()}
        sizes.update(ood=self.ood, val=self.val, train=self.train)
        return sizes


@dataclass
class Generated:
    example: Example
    scene: Scene
    content_hash: str


def content_hash(scene: Scene, question: str) -> str:
    h = hashlib.sha1()
    h.update(scene.style.encode())
    for row in scene.rows:
        h.update("|".join(row).encode())
        h.update(b"\n")
    h.update(question.encode())
    return h.hexdigest()


def _scene(rng: random.Random, style: str, reg: Regime) -> Scene:
    upper = OOD_UPPER if reg.unseen_headers else ID_UPPER
    lower = OOD_LOWER if reg.unseen_headers else ID_LOWER
    if style == "table":
        return make_table(rng, rng.randint(*reg.table_rows), rng.randint(*reg.table_cols), upper, lower)
    if style == "grouped":
        return make_chart(rng, style, rng.randint(*reg.grouped_categories), upper, reg.series)
    return make_chart(rng, style, rng.randint(*reg.chart_categories), upper)


def generate_example(cfg: WorldConfig, split: str, index: int, family: str | None = None) -> Generated:
    """Example `index` of `split`, a deterministic function of (cfg.seed, split, index)."""
    rng = random.Random(f"iapo-world:{cfg.seed}:{split}:{index}")
    reg = cfg.out_dist if split == "ood" else cfg.in_dist
    if family is None:
        fams = [f for f, w in cfg.family_weights.items() if w > 0 and cfg.family_templates(f)]
        family = rng.choices(fams, weights=[cfg.family_weights[f] for f in fams])[0]
    templates = cfg.family_templates(family)
    for _ in range(100):
        style, template, _w, _name = rng.choices(templates, weights=[d.weight for d in templates])[0]
        scene = _scene(rng, style, reg)
        q = template(scene, rng)
        if q is None:  # the drawn scene cannot carry this template (e.g. tied values); redraw
            continue
        paths = valid_paths(scene.layout, q.evidence, q.context, cfg.max_path_calls)
        if not paths:
            continue
        ex = Example(
            id=f"{split}-{index:06d}",
            question=q.text,
            answer=q.answer,
            metric=q.metric,  # type: ignore[arg-type]
            layout=scene.layout,
            image_path=f"images/{split}/{split}-{index:06d}.png",
            family=family,
            split=split,
            style=scene.style,
            evidence=q.evidence,
            context=q.context,
            valid_paths=paths,
            reference_path=paths[0],  # the canonical path: candidates are tried mask-first, rows-first
            grid=scene.rows,
            rationale=q.rationale,
            meta={"template": q.template, "orientation": scene.orientation, "grid_lines": scene.grid_lines},
        )
        if q.decoy is not None:  # only the opt-in distractor templates: other examples keep their bytes
            d = q.decoy
            decoy_paths = valid_paths(scene.layout, d.evidence, q.context, cfg.max_path_calls)
            ex.meta["decoy"] = {"evidence": d.evidence, "answer": d.answer, "rationale": d.rationale,
                                "paths": decoy_paths}  # fmt: skip
        return Generated(ex, scene, content_hash(scene, q.text))
    raise ConfigError(f"could not draw a valid question for family {family!r} in split {split!r}")


def render_example(g: Generated):  # -> PIL.Image.Image
    return render(g.scene.rows, g.scene.orientation, g.scene.grid_lines)


def split_family(split: str) -> str | None:
    return split.removeprefix("test_") if split.startswith("test_") else None
