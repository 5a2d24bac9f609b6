"""A report over the grid's complete waves of RL seeds, while later waves still run.

The grid runs in waves of seeds (`iapo.experiment`: every arm on every zoo with seed 0, then
seed 1, ...). Where it has to be read before its last wave ends, the seeds whose wave is complete
on every arm and zoo are a balanced grid of their own: where the grid stopped was set by the
clock, not by any result. This copies their records (experiment.json, each run's run.json,
result.json, metrics.jsonl; the SFT students' results) into a view directory for `iapo report`:

    python research/decisive/waves.py runs/decisive runs/decisive_waves
    iapo report runs/decisive_waves --no-gallery
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from iapo.store import METRICS, RESULT, RUN_RECORD, ExperimentDir


def complete_seeds(run_dir: Path) -> list[int]:
    """The grid's seeds with a finished run (result.json) for every arm on every zoo."""
    cfg = ExperimentDir(run_dir).read_record()["config"]
    done = {(m, z, p.parent.name) for m, z, p in ExperimentDir(run_dir).run_files(RESULT)}
    return [
        s
        for s in cfg["seeds"]
        if all((m, z, f"seed{s}") in done for m in cfg["methods"] for z in cfg.get("zoo_seeds") or [None])
    ]


def copy_view(run_dir: Path, out: Path, seeds: list[int]) -> int:
    """Copy the records of `seeds`' runs (and the SFT students') into `out`; returns runs copied."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(run_dir / "experiment.json", out / "experiment.json")
    n = 0
    for _, _, p in ExperimentDir(run_dir).run_files(RESULT):
        run = p.parent
        if run.name.startswith("seed") and int(run.name[4:]) not in seeds:
            continue
        dest = out / run.relative_to(run_dir)
        dest.mkdir(parents=True)
        for name in (RESULT, RUN_RECORD, METRICS):
            if (run / name).exists():
                shutil.copy2(run / name, dest / name)
        n += run.name.startswith("seed")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="the grid's experiment directory")
    ap.add_argument("out", type=Path, help="the view directory (replaced)")
    a = ap.parse_args()
    seeds = complete_seeds(a.run_dir)
    if not seeds:
        raise SystemExit(f"{a.run_dir}: no wave of seeds is complete yet")
    n = copy_view(a.run_dir, a.out, seeds)
    print(f"{a.out}: {n} runs of the complete waves, seeds {seeds}")


if __name__ == "__main__":
    main()
