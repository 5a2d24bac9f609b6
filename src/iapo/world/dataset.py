"""Writing the world to disk and reading it back.

Layout of a world directory:

    world.json                 manifest: config, split sizes, label vocabulary (written last)
    <split>.jsonl              one Example per line (see iapo.data.example)
    images/<split>/<id>.png    the images

The directory is built under `<out>.partial` and renamed into place at the end, so a crash never
leaves a directory that looks complete.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iapo import __version__
from iapo.data.example import Example, read_jsonl, write_jsonl_atomic
from iapo.errors import DataError
from iapo.tools.registry import compile_call, layout_after, validate_arguments
from iapo.world.generate import WorldConfig, generate_example, render_example, split_family
from iapo.world.glyphs import EMPHASIS_CLASSES, LABELS
from iapo.world.scene import TokenGrid, render

MANIFEST = "world.json"


@dataclass
class _Job:
    cfg: WorldConfig
    split: str
    start: int
    stop: int
    root: str


def _draw(job: _Job) -> list[tuple[int, dict, str]]:
    """Generate and save examples start..stop-1 of a split; returns (index, row, hash)."""
    out = []
    fam = split_family(job.split)
    img_dir = Path(job.root) / "images" / job.split
    img_dir.mkdir(parents=True, exist_ok=True)
    for i in range(job.start, job.stop):
        g = generate_example(job.cfg, job.split, i, fam)
        render_example(g).save(img_dir / f"{g.example.id}.png", compress_level=1)
        out.append((i, g.example.to_json(), g.content_hash))
    return out


def write_world(
    cfg: WorldConfig,
    out: Path,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Generate every split into `out`; returns the manifest."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists (pass --overwrite to replace it)")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    workers = workers or min(os.cpu_count() or 1, 4)
    seen: set[str] = set()
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    ctx = mp.get_context("fork") if workers > 1 else None
    pool = ctx.Pool(workers) if ctx else None
    try:
        for split, n in cfg.split_sizes().items():
            rows = _draw_split(cfg, split, n, tmp, seen, pool, workers, progress)
            write_jsonl_atomic(tmp / f"{split}.jsonl", rows)
            counts[split] = len(rows)
    finally:
        if pool:
            pool.close()
            pool.join()
    manifest = {
        "format": "iapo-world/1",
        "iapo_version": __version__,
        "config": cfg.model_dump(mode="json"),
        "splits": counts,
        "labels": LABELS,
        "emphasis_classes": EMPHASIS_CLASSES,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return manifest


def _draw_split(cfg, split, n, root, seen, pool, workers, progress) -> list[dict]:
    rows: list[dict] = []
    next_index = 0
    while len(rows) < n:
        need = n - len(rows)
        # draw a little extra: duplicates of earlier splits are skipped
        stop = next_index + need + max(1, need // 50)
        if pool is not None and need > 200:
            step = -(-(stop - next_index) // (workers * 4))
            jobs = [_Job(cfg, split, s, min(s + step, stop), str(root)) for s in range(next_index, stop, step)]
            batches = pool.map(_draw, jobs)
        else:
            batches = [_draw(_Job(cfg, split, next_index, stop, str(root)))]
        for batch in batches:
            for _i, row, h in batch:
                if len(rows) >= n or h in seen:
                    (root / row["image"]).unlink(missing_ok=True)
                    continue
                seen.add(h)
                rows.append(row)
        next_index = stop
        if progress:
            progress(split, len(rows), n)
    return rows


class World:
    """A world directory on disk."""

    @staticmethod
    def exists(root: Path) -> bool:
        """Whether `root` holds a finished world (its manifest is written last)."""
        return (root / MANIFEST).exists()

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.exists():
            hint = (
                " (it looks unfinished: generation was interrupted)"
                if self.root.with_name(self.root.name + ".partial").exists()
                else ""
            )
            raise DataError(
                f"{self.root}: not a world directory, {MANIFEST} is missing{hint}; "
                f"create one with `iapo world --out {self.root}`"
            )
        try:
            self.manifest = json.loads(path.read_text())
        except ValueError as e:
            raise DataError(f"{path}: corrupt manifest ({e})") from e
        self.config = WorldConfig.model_validate(self.manifest["config"])

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    def load(self, split: str, limit: int | None = None) -> list[Example]:
        if split not in self.manifest["splits"]:
            raise DataError(f"{self.root}: no split {split!r}; splits are {', '.join(self.splits)}")
        out = []
        for ex in read_jsonl(self.root / f"{split}.jsonl", root=self.root):
            out.append(ex)
            if limit is not None and len(out) >= limit:
                break
        return out


def example_image(ex: Example):  # -> PIL.Image.Image
    """Image of a world example: from disk if present, else re-rendered from its token grid."""
    if (ex.root is not None or Path(ex.image_path).is_absolute()) and ex.image_file().exists():
        return ex.load_image()
    if ex.grid is None:
        raise DataError(f"example {ex.id!r}: no image file and no token grid to render")
    gl = ex.meta.get("grid_lines")
    return render(ex.grid, ex.meta.get("orientation", "v"), tuple(gl) if gl else None)


def grid_after(ex: Example, calls: list[dict]) -> list[TokenGrid]:
    """Token labels of the original image and of the output of each call (all must be valid)."""
    if ex.grid is None:
        raise DataError(f"example {ex.id!r} has no token grid")
    grid = TokenGrid.from_rows(ex.grid)
    layout = ex.layout
    grids = [grid]
    for call in calls:
        args = validate_arguments(call["name"], call["arguments"], layout)
        ops = compile_call(call["name"], args, layout)
        grid = grid.apply(ops)
        layout = layout_after(ops, layout)
        grids.append(grid)
    return grids
