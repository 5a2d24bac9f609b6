"""runs.csv from a report's per-run table, for grids whose run directories are gone (reports made
before 0.2.1 kept per-run accuracies only in report.md). The values are those of the table,
rounded to 0.1 point; the SFT student is not in that table.

    python research/runs_from_report.py research/claim/report/report.md   # -> research/claim/report/runs.csv
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

TITLES = ("## Average test accuracy per run (%)", "## Average test accuracy per seed (%)")


def per_run_rows(md: str, source: str) -> list[tuple[str, str, str, float]]:
    """(method, zoo, seed, accuracy as a fraction) of every filled cell of the per-run table."""
    title = next((t for t in TITLES if t in md), None)
    if title is None:
        raise SystemExit(f"{source}: no per-run table ({' / '.join(TITLES)})")
    lines = [x for x in md.split(title)[1].split("\n## ")[0].splitlines() if x.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    keys = []
    for h in head:
        m = re.fullmatch(r"z(\d+)/s(\d+)", h) or re.fullmatch(r"seed (\d+)", h)
        if m is None:
            raise SystemExit(f"{source}: column {h!r} is neither 'z<zoo>/s<seed>' nor 'seed <k>'")
        keys.append(m.groups() if len(m.groups()) == 2 else ("", m.group(1)))
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for (zoo, seed), v in zip(keys, cells[1:], strict=True):
            if v:
                rows.append((cells[0], zoo, seed, float(v) / 100))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", type=Path)
    a = ap.parse_args()
    rows = per_run_rows(a.report.read_text(), str(a.report))
    out = a.report.parent / "runs.csv"
    out.write_text("method,zoo,seed,accuracy\n" + "".join(f"{m},{z},{s},{v:.4f}\n" for m, z, s, v in rows))
    print(f"{out}: {len(rows)} runs")


if __name__ == "__main__":
    main()
