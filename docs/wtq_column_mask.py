"""Regenerate docs/wtq_column_mask.png: a WTQ fixture table as `iapo eval --bench wtq` renders it,
above the same image after `focus_on_columns_with_mask(columns=["Show"])`.

    python docs/wtq_column_mask.py [--fixtures tests/fixtures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from iapo.data.benchmarks.tables import _read_csv
from iapo.data.render import render_table
from iapo.tools.registry import run_tool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", type=Path, help="default: tests/fixtures")
    a = ap.parse_args()
    a.fixtures = a.fixtures or Path(__file__).resolve().parents[1] / "tests" / "fixtures"
    header, rows = _read_csv(a.fixtures / "wtq" / "csv" / "203-csv" / "543.csv")
    r = render_table(header, rows)
    masked, _ = run_tool(r.image, r.layout, "focus_on_columns_with_mask", {"columns": ["Show"]})
    gap = 12
    out = Image.new("RGB", (r.image.width, 2 * r.image.height + gap), (255, 255, 255))
    out.paste(r.image, (0, 0))
    out.paste(masked, (0, r.image.height + gap))
    out.save(Path(__file__).parent / "wtq_column_mask.png")
    print(f"{r.image.size}, missing glyphs: {dict(r.missing) or 'none'}")


if __name__ == "__main__":
    main()
