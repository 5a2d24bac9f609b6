"""TableVQA-Bench (Kim et al., 2024) from a local copy of its Hugging Face release.

Layout: either a `datasets.DatasetDict` saved with `save_to_disk` (DIR/dataset_dict.json) or
the release's parquet files (`DIR/**/<subset>-*.parquet`), subsets `fintabnetqa`, `vtabfact`,
`vwtq`, `vwtq_syn`; rows `{qa_id, question, gt, image}` (image: a datasets Image, i.e. PNG/JPEG
bytes). Images are written once to `cache/` (content-addressed). The release has no cell boxes,
so episodes answer without tools (counted); the ReFocus `*_wbb.json` files add the boxes
(`refocus.py`). Metrics per subset: `iapo.answers.tablevqa`.
"""

from __future__ import annotations

import io
from pathlib import Path

from iapo.data.benchmarks.common import Loaded, cache_image
from iapo.data.example import Example
from iapo.errors import DataError
from iapo.tools.layout import Layout

SUBSET_METRIC = {"fintabnetqa": "fintabnetqa", "vtabfact": "vtabfact", "vwtq": "vwtq", "vwtq_syn": "vwtq"}
FIELDS = ("qa_id", "question", "gt", "image")


def _subsets(root: Path) -> dict[str, object]:
    """Subset name -> a datasets.Dataset with undecoded images (bytes)."""
    try:
        import datasets
    except ImportError:
        raise DataError("TableVQA-Bench needs the `datasets` package: pip install 'iapo[dev]'") from None
    if (root / "dataset_dict.json").exists():
        dd = datasets.load_from_disk(str(root))
        subsets = dict(dd.items())
    else:
        files: dict[str, list[str]] = {}
        for p in sorted(root.rglob("*.parquet")):
            name = p.name.split("-")[0]
            files.setdefault(name, []).append(str(p))
        if not files:
            raise DataError(f"{root}: no TableVQA-Bench dataset (dataset_dict.json or <subset>-*.parquet files)")
        subsets = {k: datasets.Dataset.from_parquet(v) for k, v in files.items()}
    for name, ds in subsets.items():
        if name not in SUBSET_METRIC:
            raise DataError(f"{root}: unknown TableVQA-Bench subset {name!r}; expected {sorted(SUBSET_METRIC)}")
        missing = [k for k in FIELDS if k not in ds.column_names]
        if missing:
            raise DataError(f"{root}: subset {name!r} lacks columns {missing}")
    return {k: v.cast_column("image", datasets.Image(decode=False)) for k, v in subsets.items()}


def _image_bytes(value: object) -> bytes:
    from PIL import Image

    data = value.get("bytes") if isinstance(value, dict) else None
    if not data and isinstance(value, dict) and value.get("path"):
        data = Path(value["path"]).read_bytes()
    if not data:
        raise ValueError("no image bytes")
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    return data


def load_tablevqa(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    out = Loaded([])
    for name, ds in _subsets(root).items():
        for k, row in enumerate(ds):
            if out.full(limit):
                return out
            try:
                path = cache_image(_image_bytes(row["image"]), cache / "tablevqa")
            except Exception as e:
                out.skipped.append(f"{root}: subset {name} row {k} (qa_id {row.get('qa_id')!r}): bad image ({e})")
                continue
            out.examples.append(
                Example(
                    id=str(row["qa_id"]),
                    question=str(row["question"]),
                    answer=str(row["gt"]),
                    metric=SUBSET_METRIC[name],
                    layout=Layout(kind="table"),
                    image_path=str(path.resolve()),
                    family=f"tablevqa_{name}",
                    split=name,
                    style="table",
                )
            )
            out.tools_unavailable += 1
    return out
