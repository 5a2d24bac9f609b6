"""Rename a zoo's teacher-target caches to the content-based teacher fingerprint.

Before 0.3.2 a cache file was named after the teacher's file names, sizes and modification times,
so a copy of the zoo (a ledger checked out by git, another machine) looked for other files and
recomputed every target. 0.3.2 names it after the teacher's bytes. The targets themselves are
unchanged; this moves the files the grid's first session computed (its code still named them the
old way) to the names the code now looks for, so a fresh machine reuses them instead of computing
them again on another floating-point path:

    python research/decisive/rekey_targets.py research/decisive/ledger/zoos/seed*
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from iapo.rewards.targets import TargetCache, checkpoint_fingerprint


def rekey(zoo: Path, teacher: str = "teacher") -> list[tuple[str, str]]:
    """(old name, new name) of each of `zoo`/targets/ moved; a file whose name is current stays."""
    fp = checkpoint_fingerprint(zoo / teacher)
    moved = []
    for path in sorted((zoo / "targets").glob("teacher_own-*.json")):
        data = json.loads(path.read_text())
        settings = {k: v for k, v in data["settings"].items() if k != "teacher"}
        target = TargetCache(zoo / "targets", fp, settings).path
        if target == path:
            continue
        if target.exists():
            raise SystemExit(f"{target}: exists beside {path.name}; keep one by hand")
        target.write_text(json.dumps({"settings": {"teacher": fp, **settings}, "targets": data["targets"]}))
        path.unlink()
        moved.append((path.name, target.name))
    return moved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zoos", type=Path, nargs="+", help="zoo directories (each with teacher/ and targets/)")
    ap.add_argument("--teacher", default="teacher", help="the role whose targets the caches hold")
    args = ap.parse_args()
    for zoo in args.zoos:
        for old, new in rekey(zoo, args.teacher):
            print(f"{zoo}: {old} -> {new}")


if __name__ == "__main__":
    main()
