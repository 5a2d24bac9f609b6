"""Reading a run directory for the report: every finished run's result, its training curve and
the method config it ran with (through the run store, `iapo.store`), and the one-row-per-run
`runs.csv` that `iapo compare` and `iapo plan` read back."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from iapo.errors import DataError
from iapo.provenance import write_text
from iapo.report.contrasts import average_accuracy, decoy_rate
from iapo.store import METRICS, RESULT, RUN_RECORD, Damaged, ExperimentDir, read_json, read_metrics, read_run_record

log = logging.getLogger(__name__)


def load_results(exp_dir: Path, damaged: list[str] | None = None) -> list[dict]:
    """Every run's result.json, with the zoo it ran on (`zoo`: None for a one-zoo grid) and the
    machine it trained on (`machine`, from its run.json; "" without one). A damaged one is left
    out and named in `damaged` (a report only reads: the next `iapo experiment` sets it aside and
    recomputes it)."""
    found = ExperimentDir(exp_dir).run_files(RESULT)
    if not found:
        raise FileNotFoundError(f"{exp_dir}: no runs/*/result.json (run `iapo experiment` first)")
    out = []
    for _, zoo, p in found:
        try:
            out.append({**read_json(p, required=("method", "seed")), "zoo": zoo, "machine": machine_of(p.parent)})
        except Damaged as err:
            if damaged is not None:
                damaged.append(str(err))
    return out


def machine_of(run: Path) -> str:
    """The CPU a run trained on, with its class where recorded (0.3.2 on): a grid that outlives
    one machine can hold runs of several."""
    rec = read_run_record(run)  # None without one
    m = ((rec or {}).get("environment") or {}).get("machine") or {}
    return f"{m.get('cpu', '')} ({m['cpu_class']})" if m.get("cpu_class") else m.get("cpu", "")


def method_configs(exp_dir: Path, meta: dict) -> dict[str, dict]:
    """method -> its resolved method config, from the runs' own records (run.json) where they
    exist, else from experiment.json: what each run ran with, not this version's defaults."""
    out = dict(meta.get("config", {}).get("methods", {}))
    for m, _, p in ExperimentDir(exp_dir).run_files(RUN_RECORD):
        out[m] = read_run_record(p.parent)["config"]["method"]
    return out


def load_run_curves(exp_dir: Path) -> dict[str, dict[str, list[dict]]]:
    """method -> run label (`s<k>`, or `z<z>/s<k>` with several zoos) -> its metrics.jsonl rows.
    Finished runs only (a result.json beside the log), so a report taken while a grid runs counts
    the same runs in its curves as in its accuracy tables."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for m, zoo, p in ExperimentDir(exp_dir).run_files(METRICS):
        if not (p.parent / RESULT).exists():
            continue
        label = ("" if zoo is None else f"z{zoo}/") + "s" + p.parent.name.removeprefix("seed")
        out[m][label] = read_metrics(p)
    return out


def load_curves(exp_dir: Path) -> dict[str, list[list[dict]]]:
    """method -> one metrics.jsonl (list of rows) per run."""
    return {m: list(runs.values()) for m, runs in load_run_curves(exp_dir).items()}


def write_runs_csv(results: list[dict], path: Path) -> None:
    """One row per run: method, zoo, seed, average and per-split test accuracy, training minutes
    (and the average accuracy with no tools offered, where evaluated): what `iapo plan` and any
    re-analysis read (no question-level data needed), and the machine it trained on."""
    splits = sorted(results[0]["splits"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "zoo", "seed", "accuracy", *splits, "train_minutes", "accuracy_no_tools", "machine",
                "decoy_rate"])  # fmt: skip
    for r in sorted(results, key=lambda r: (r["method"], r.get("zoo") or 0, r["seed"] or 0)):
        minutes = r.get("train_seconds", math.nan) / 60 if r.get("train_seconds") is not None else math.nan
        vals = [average_accuracy(r), *(r["splits"][s]["accuracy"]["mean"] for s in splits)]
        zoo, seed = ("" if r.get(k) is None else str(r[k]) for k in ("zoo", "seed"))
        bare = f"{average_accuracy(r, tools=False):.6f}" if "splits_no_tools" in r else ""
        rate = decoy_rate(r)
        w.writerow([r["method"], zoo, seed, *(f"{v:.6f}" for v in vals), f"{minutes:.2f}", bare, r.get("machine", ""),
                    "" if math.isnan(rate) else f"{rate:.6f}"])  # fmt: skip
    write_text(path, buf.getvalue())


def read_runs_csv(path: Path, measure: str = "accuracy") -> tuple[dict[str, dict], dict[str, float]]:
    """(method -> zoo -> per-run accuracies, method -> mean training minutes) from a runs.csv
    (`write_runs_csv`; a run directory means its runs.csv). A bad row is named, not skipped.
    `measure`: the column read (decoy_rate: runs without one are left out)."""
    path = path / "runs.csv" if path.is_dir() else path
    if not path.exists():
        raise DataError(f"{path}: no runs.csv (write one with `iapo report RUN_DIR`)")
    arms: dict[str, dict] = defaultdict(dict)
    minutes: dict[str, list[float]] = defaultdict(list)
    with path.open() as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                zoo, seed = (int(row[k]) if row[k] not in ("", None) else None for k in ("zoo", "seed"))
                if row.get(measure) not in ("", None) or measure == "accuracy":
                    arms[row["method"]].setdefault(zoo, {})[seed] = float(row[measure])
                if row.get("train_minutes") not in ("", None, "nan"):
                    minutes[row["method"]].append(float(row["train_minutes"]))
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(f"{path}, line {i}: {e!r} (columns: method, zoo, seed, accuracy, ...)") from None
    return dict(arms), {m: float(np.mean(v)) for m, v in minutes.items() if v}


LEGACY_KEYS = {"rollout/accuracy": "accuracy"}  # metric names of runs made before 0.2


def metric_value(row: dict, key: str) -> float | None:
    """A metric of a log row, under its name or the name it had before 0.2."""
    v = row.get(key)
    return row.get(LEGACY_KEYS[key]) if v is None and key in LEGACY_KEYS else v
