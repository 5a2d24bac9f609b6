"""Public benchmarks from local files in their official release layouts, as `Example`s.

One loader per benchmark (each module's docstring documents its files and fields):

| name           | module      | release layout                                             | metric            |
|----------------|-------------|------------------------------------------------------------|-------------------|
| `wtq`          | tables      | `*.tsv` + `csv/*/*.csv`                                     | WTQ denotation    |
| `tabfact`      | tables      | statement JSON + `all_csv/*.csv` (`#`-separated)            | accuracy          |
| `chartqa`      | charts      | `test_{human,augmented}.json` + `png/`                      | relaxed (5%)      |
| `charxiv`      | charts      | `data/{descriptive,reasoning}_{val,test}.json` + `images/`  | rule-based / judge|
| `tablevqa`     | tablevqa    | `datasets` save_to_disk dir or `<subset>-*.parquet`         | per subset        |
| `refocus`      | refocus     | `*_wbb.json` (tables and charts with boxes)                 | per subset        |
| `chartqa_vcot` | refocus     | ReFocus training split `{train,val,test}.jsonl`             | relaxed (5%)      |

A malformed row or a missing/corrupt image is skipped with one message naming the file and
row; the rest loads, and the skipped count is reported by `iapo eval`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from iapo.config import StrictModel
from iapo.data.benchmarks.charts import load_chartqa, load_charxiv
from iapo.data.benchmarks.common import Loaded
from iapo.data.benchmarks.refocus import load_chartqa_vcot, load_refocus
from iapo.data.benchmarks.tables import load_tabfact, load_wtq
from iapo.data.benchmarks.tablevqa import load_tablevqa
from iapo.errors import DataError

LOADERS: dict[str, Callable[[Path, Path, int | None], Loaded]] = {
    "wtq": load_wtq,
    "tabfact": load_tabfact,
    "chartqa": load_chartqa,
    "charxiv": load_charxiv,
    "tablevqa": load_tablevqa,
    "refocus": load_refocus,
    "chartqa_vcot": load_chartqa_vcot,
}
BENCHMARKS = tuple(LOADERS)


def load_benchmark(name: str, root: Path, cache: Path, limit: int | None = None) -> Loaded:
    if name not in LOADERS:
        raise DataError(f"unknown benchmark {name!r}; available: {', '.join(LOADERS)}")
    if not root.is_dir():
        raise DataError(f"{root}: benchmark directory not found")
    return LOADERS[name](root, cache, limit)


class BenchSplit(StrictModel):
    bench: str = Field(description="a loader name: " + ", ".join(LOADERS))
    data: Path = Field(description="the benchmark's directory (official layout)")
    file: str | None = Field(None, description="keep the examples of this file only (its stem, e.g. train, val)")
    limit: int | None = Field(None, ge=1, description="read at most this many examples (None = all)")


class DataConfig(StrictModel):
    """Named splits from benchmark files, used in place of the world (e.g. ReFocus's chartqa_vcot
    for training and the `*_wbb.json` sets for testing). Needs `train` and `val`; test split
    names start with `test`."""

    splits: dict[str, BenchSplit] = Field(description="split name (train, val, test_*) -> where its examples come from")
    cache: Path = Field(Path("iapo_cache"), description="rendered / extracted images")


class BenchmarkSource:
    """The world's interface (`splits`, `load(split)`) over benchmark files."""

    def __init__(self, cfg: DataConfig):
        missing = {"train", "val"} - set(cfg.splits)
        if missing:
            raise DataError(f"data.splits needs {sorted(missing)}")
        self.cfg = cfg
        self.splits = list(cfg.splits)
        self._cache: dict[str, list] = {}

    def load(self, split: str, limit: int | None = None) -> list:
        if split not in self.cfg.splits:
            raise DataError(f"unknown split {split!r}; configured: {', '.join(self.splits)}")
        if split not in self._cache:
            s = self.cfg.splits[split]
            loaded = load_benchmark(s.bench, s.data, self.cfg.cache / s.bench, None)
            exs = [e for e in loaded.examples if s.file is None or e.split == s.file]
            self._cache[split] = exs[: s.limit]
        return self._cache[split][:limit]


__all__ = ["BENCHMARKS", "LOADERS", "BenchSplit", "BenchmarkSource", "DataConfig", "Loaded", "load_benchmark"]
