"""End-to-end run time of the sparse regime's workload: this code against an earlier commit, side
by side on this machine.

    python bench/run_speed.py --against d0e6cb5 [--work bench_runs/run_speed] [--steps 20]

1. Builds (once, cached in --work) the sparse regime's world and the `teacher` of its zoo recipe
   (research/claim/sparse.yaml; ~10 min on 2 cores). The teacher is a trained sparse-regime
   model that calls tools in most episodes and reads: the workload of a grid's runs once they
   have found the tools (a fresh student calls in 3% of episodes and costs far less).
2. Checks out --against into a git worktree (its code, read-only) beside this checkout.
3. For each method (--methods: outcome GRPO, the tool bonus, IAPO as the grid ran it (components,
   `teacher_own`), the library default (occlusion components + grad_x_delta regions) and IG m = 4
   (Gauss-Legendre, components + regions)): one GRPO run of --steps steps with the sparse grid's
   GRPO and evaluation settings (`iapo train`, val every 10 steps, the test evaluation at the end),
   with the old and the new code at the same time, one thread each: a grid's two workers on two
   cores. The grid's methods are each checkout's own; the two added ones are spelled out in full,
   so both versions run the same settings.

Prints, per method and code version, the run's minutes, the median s/step split (rollout / reward /
update / step), the reward's overhead ((rollout + update + reward) / (rollout + update)) and the
calls per episode; it ends with `run time vs COMMIT: R`, the new code's total minutes over the old code's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import zoo_and_world
from iapo.config import read_yaml
from iapo.store import RESULT, ExperimentDir, ZooDir, read_json, read_metrics
from iapo.world import World

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "research" / "claim" / "sparse.yaml"
GRID_METHODS = ("outcome", "tool_bonus_any", "iapo")
TERM = {"lam": 0.5, "target": "teacher_own", "components": 1.0, "regions": 1.0, "region_estimator": "grad_x_delta"}
TINY_EVAL = {"val_examples": 4, "eval_every": 0, "test_limit": 2, "attribution_episodes": 0}
TINY_GRPO = {"questions_per_step": 2, "group_size": 2}  # and 12 tokens a turn: a step of an untrained model in seconds
SPELLED = {  # the library default and IG m = 4, in full: every code version runs these settings
    "default": {"teacher": "teacher", "attribution": TERM | {"estimator": "occlusion"}},
    "ig_m4": {"teacher": "teacher", "attribution": TERM | {"estimator": "ig", "n_steps": 4, "rule": "gausslegendre"}},
}
METHODS = (*GRID_METHODS, *SPELLED)
SPLIT = ("time/rollout_s", "time/reward_s", "time/update_s", "time/step_s")


def iapo(args: list[str], src: Path, log: Path, threads: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src)}
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "iapo.cli", *args], env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)  # fmt: skip


def read_grid(root: Path = ROOT) -> dict:
    """The sparse grid's config as the code at `root` has it, through the project's loader (its
    `extends:` chain resolved; a bare YAML load lost the world and zoo the file inherits since
    0.3.0, and the bench failed with KeyError 'world'). An older commit's own file has no chain."""
    return json.loads(json.dumps(read_yaml(root / GRID.relative_to(ROOT))))  # plain mappings, for yaml.safe_dump


def build(work: Path) -> tuple[Path, Path]:
    """The sparse world and the teacher of its zoo recipe, built once with this code."""
    grid = read_grid()
    exp = ExperimentDir(work)
    world, zoo = exp.world, exp.zoo(None).path
    if not World.exists(world):
        (work / "world.yaml").write_text(yaml.safe_dump(grid["world"]))
        _wait(
            iapo(["world", "--out", str(world), "--config", str(work / "world.yaml")], ROOT / "src", work / "world.log")
        )
    if not (ZooDir(zoo).role("teacher") / "config.json").exists():
        z = grid["zoo"] | {"roles": {"teacher": grid["zoo"]["roles"]["teacher"]}}
        (work / "zoo.yaml").write_text(yaml.safe_dump(z))
        t = time.perf_counter()
        cmd = ["sft", "--world", str(world), "--out", str(zoo), "--config", str(work / "zoo.yaml"), "--threads", "2"]
        _wait(iapo(cmd, ROOT / "src", work / "zoo.log"))
        print(f"zoo built in {(time.perf_counter() - t) / 60:.1f} min")
    return world, zoo


def _wait(p: subprocess.Popen) -> None:
    if p.wait() != 0:
        raise SystemExit(f"{p.args}: exit {p.returncode} (see the log in --work)")


def train_config(method: str, steps: int, root: Path = ROOT, evaluation: dict | None = None) -> dict:
    """What `iapo train` of the code at `root` runs for `method`: its own grid's settings."""
    grid = read_grid(root)
    grpo = grid["grpo"] | {"steps": steps, "checkpoint_every": steps}
    if evaluation is TINY_EVAL:
        grpo |= TINY_GRPO | {"rollout": grpo["rollout"] | {"max_new_tokens": 12}}
    return {"method": SPELLED.get(method) or grid["methods"][method], "grpo": grpo,
            "eval": evaluation or grid["eval"], "seed": 0}  # fmt: skip


def run_pair(
    method: str, steps: int, world: Path, zoo: Path, srcs: dict[str, Path], work: Path, evaluation: dict | None = None
) -> dict:
    """The method's run with every code version at once (one thread each), each with the grid's
    settings as its own checkout has them: minutes and split."""
    procs, t0 = {}, time.time()
    for name, src in srcs.items():
        cfg = work / f"{method}.{name}.yaml"
        cfg.write_text(yaml.safe_dump(train_config(method, steps, src.parent, evaluation)))
        out = Path(tempfile.mkdtemp(dir=work)) / method
        args = ["train", "--config", str(cfg), "--out", str(out), "--world", str(world), "--zoo", str(zoo),
                "--student", "teacher"]  # fmt: skip
        procs[name] = (iapo(args, src, work / f"{method}.{name}.log", threads=1), out)
    res = {}
    for name, (p, out) in procs.items():
        _wait(p)
        rows = read_metrics(out)
        result = read_json(out / RESULT)
        split = {k: statistics.median(r[k] for r in rows if k in r) for k in SPLIT}
        wall = (out / RESULT).stat().st_mtime - t0
        res[name] = {"minutes": wall / 60, "train_minutes": result["train_seconds"] / 60, **split,
                     "calls": sum(r.get("tools/calls_per_episode", 0) for r in rows[1:]) / max(1, len(rows) - 1)}  # fmt: skip
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", required=True, help="the commit to compare with (e.g. d0e6cb5)")
    ap.add_argument("--work", type=Path, default=ROOT / "bench_runs" / "run_speed")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--tiny", action="store_true", help="untrained tiny models on a small world, a tiny evaluation")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    zoo, world = zoo_and_world(None, None, a.work) if a.tiny else build(a.work)[::-1]
    old = a.work / f"code_{a.against}"
    made = not old.exists()
    if made:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), a.against], check=True,
                       capture_output=True)  # fmt: skip
    srcs = {a.against: old / "src", "current": ROOT / "src"}
    total = dict.fromkeys(srcs, 0.0)
    print(f"{'method':15s} {'code':9s} {'minutes':>7s} {'train':>6s}  median s/step: "
          f"{'rollout':>7s} {'reward':>7s} {'update':>7s} {'step':>6s}  {'overhead':>8s}  calls/ep")  # fmt: skip
    for method in a.methods:
        res = run_pair(method, a.steps, world, zoo, srcs, a.work, TINY_EVAL if a.tiny else None)
        for name, r in res.items():
            total[name] += r["minutes"]
            over = 1 + r["time/reward_s"] / (r["time/rollout_s"] + r["time/update_s"])  # the reward's price
            split = " ".join(f"{r[k]:7.2f}" for k in SPLIT[:3]) + f" {r[SPLIT[3]]:6.2f}"
            print(f"{method:15s} {name:9s} {r['minutes']:7.1f} {r['train_minutes']:6.1f}  {'':14s} {split}  "
                  f"{over:7.2f}x  {r['calls']:.2f}", flush=True)  # fmt: skip
    if a.tiny and made:  # a test's throw-away checkout: leave no worktree behind in the repository
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    print(f"run time vs {a.against}: {total['current'] / total[a.against]:.2f}")


if __name__ == "__main__":
    main()
