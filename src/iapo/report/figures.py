"""The report's figures (PNG, matplotlib): the confirmatory contrasts with each zoo's difference,
training curves, val curves per run, tool-call classes, attribution shares and the
student-vs-target alignment."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from iapo.report.load import metric_value
from iapo.rollout.episode import COMPONENTS
from iapo.stats import Contrast, unit_differences
from iapo.tools.session import CallClass


def _curve(runs: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    pts = defaultdict(list)
    for rows in runs:
        for r in rows:
            v = metric_value(r, key)
            if v is not None and math.isfinite(v):
                pts[r["step"]].append(v)
    if not pts:
        return None
    steps = np.array(sorted(pts))
    return steps, np.array([np.mean(pts[s]) for s in steps])


def plotted_contrasts(contrasts: list[Contrast], most: int = 12) -> list[Contrast]:
    """What the contrast figure shows: the primary contrast and the secondary family named before
    the grid; a report with no secondary family shows every contrast (at most `most`)."""
    named = [c for c in contrasts if c.primary] + [c for c in contrasts if c.secondary]
    return named if len(named) > 1 else (named + [c for c in contrasts if not c.primary])[:most]


def fig_contrasts(data: tuple[dict[str, dict], list[Contrast]], path: Path) -> None:
    """A - B in points with its 95% interval, and each unit's own difference (a zoo's mean, or a
    seed pair on one zoo) as a dot beside it: whether one zoo carries a result is seen at once.
    `data`: (method -> zoo -> per-run accuracies, `contrasts.arm_runs`; the report's contrasts)."""
    arms, contrasts = data
    shown = plotted_contrasts(contrasts)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * max(1, len(shown))))
    for y, c in enumerate(reversed(shown)):
        color = "C3" if c.primary else "C0" if c.secondary else "0.4"
        ax.hlines(y, 100 * c.low, 100 * c.high, color=color, lw=2.5)
        ax.plot(100 * c.diff, y, "o", color=color, ms=7)
        d = 100 * unit_differences(arms[c.a], arms[c.b])
        ax.plot(d, y - 0.22 + np.zeros_like(d), "|", color="0.35", ms=7)
    ax.axvline(0, color="0.6", ls="--", lw=1)
    ax.set_ylim(-0.6, max(1, len(shown)) - 0.4)
    labels = [f"{c.a} - {c.b} ({c.role}, {'p' if c.primary else 'Holm p'} {c.p_used:.2g})" for c in reversed(shown)]
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    unit = shown[0].unit if shown else "run"
    ticks = "" if unit == "run" else f"\nticks below: each {unit}'s own difference"
    ax.set_xlabel(f"A - B, test accuracy in points (95% CI){ticks}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_training(curves: dict[str, list[list[dict]]], path: Path) -> None:
    """Fig. 4 analog: tool calls, useful-call rate, accuracy over training (mean over seeds)."""
    keys = [
        ("tools/calls_per_episode", "tool calls / episode"),
        ("tools/useful_rate", "useful-call rate"),
        ("rollout/accuracy", "train accuracy (rollouts)"),
        ("val/accuracy", "val accuracy (greedy)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (k, title) in zip(axes, keys, strict=True):
        for m, runs in curves.items():
            c = _curve(runs, k)
            if c is not None:
                ax.plot(*c, label=m, marker="." if k.startswith("val") else None)
        ax.set_title(title)
        ax.set_xlabel("GRPO step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_val_curves(runs: dict[str, dict[str, list[dict]]], path: Path) -> None:
    """Val accuracy against GRPO step, one line per run (a colour per zoo), a panel per method:
    a mean curve hides when single runs find the tools."""
    ms = [m for m, by in runs.items() if any("val/accuracy" in r for rows in by.values() for r in rows)]
    n = max(1, len(ms))
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4 * cols, 2.8 * ((n + cols - 1) // cols)),
                             sharey=True, squeeze=False)  # fmt: skip
    for ax, m in zip(axes.flat, ms, strict=False):
        for label, rows in runs[m].items():
            pts = [(r["step"], r["val/accuracy"]) for r in rows if "val/accuracy" in r]
            zoo = label.split("/")[0] if "/" in label else ""
            color = f"C{int(zoo[1:]) % 10}" if zoo else "C0"
            ax.plot(*zip(*pts, strict=True), color=color, alpha=0.6, lw=1)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("GRPO step")
    for ax in list(axes.flat)[len(ms) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("val accuracy (greedy)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_misuse(results: list[dict], path: Path) -> None:
    """Fig. 3 analog (a): share of each call class over all test calls, per method."""
    classes = [c.value for c in CallClass if c != CallClass.VALID]
    by_m: dict[str, list[list[float]]] = defaultdict(list)
    for r in results:
        sp = r["splits"].values()
        by_m[r["method"]].append([float(np.mean([s[f"tools/class/{c}"] for s in sp])) for c in classes])
    fig, ax = plt.subplots(figsize=(9, 3.4))
    w = 0.8 / max(1, len(by_m))
    for i, (m, v) in enumerate(by_m.items()):
        ax.bar(np.arange(len(classes)) + i * w, np.mean(v, 0), w, label=m)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - w / 2, [c.replace("_", "\n") for c in classes], fontsize=8)
    ax.set_ylabel("share of calls")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_attribution(results: list[dict], path: Path) -> None:
    """Fig. 3 analog (b): mean component share of the final turn, correct vs incorrect."""
    by_m: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for k, d in (r.get("attribution") or {}).items():
            if d.get("n"):
                by_m[r["method"]][k].append([d[c] for c in COMPONENTS])
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
    for ax, k in zip(axes, ("correct", "incorrect"), strict=True):
        ms = [m for m in by_m if by_m[m][k]]
        w = 0.8 / max(1, len(ms))
        for i, m in enumerate(ms):
            ax.bar(np.arange(len(COMPONENTS)) + i * w, np.mean(by_m[m][k], 0), w, label=m)
        ax.set_xticks(np.arange(len(COMPONENTS)) + 0.4 - w / 2, COMPONENTS, fontsize=8)
        ax.set_title(f"{k} episodes")
    axes[0].set_ylabel("attribution share p_c")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_alignment(curves: dict[str, list[list[dict]]], path: Path) -> None:
    """Student vs target component shares at the first and the last GRPO step, per IAPO method
    (mean over seeds): does the student move toward its target, and on which components?"""
    ms = [m for m, runs in curves.items() if any("attr/student_share/system" in r for rows in runs for r in rows)]
    fig, axes = plt.subplots(1, max(1, len(ms)), figsize=(4 * max(1, len(ms)), 3.2), sharey=True, squeeze=False)
    x = np.arange(len(COMPONENTS))
    for ax, m in zip(axes[0], ms, strict=False):
        for which, pick, style in (("start", 0, "--"), ("end", -1, "-")):
            for who, color in (("student", "C0"), ("target", "C3")):
                vals = []
                for rows in curves[m]:
                    rs = [r for r in rows if f"attr/{who}_share/system" in r]
                    if rs:
                        vals.append([rs[pick].get(f"attr/{who}_share/{c}", 0.0) for c in COMPONENTS])
                if vals:
                    ax.plot(x, np.mean(vals, 0), style, color=color, marker="o", label=f"{who}, {which}")
        ax.set_xticks(x, COMPONENTS, fontsize=7, rotation=30)
        ax.set_title(m, fontsize=9)
    axes[0][0].set_ylabel("share of the final turn's attribution")
    if ms:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
