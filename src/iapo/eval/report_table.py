"""Readable terminal tables of evaluation summaries."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from iapo.rollout.summary import useless_share


def _pct(ci: dict) -> str:
    return f"{100 * ci['mean']:.1f} [{100 * ci['ci_low']:.1f}, {100 * ci['ci_high']:.1f}]"


def print_eval(summary: dict, title: str, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title=title)
    t.add_column("family")
    t.add_column("n", justify="right")
    t.add_column("accuracy % [95% CI]", justify="right")
    for fam, d in summary["families"].items():
        t.add_row(fam, str(d["n"]), _pct(d["accuracy"]))
    t.add_row("[bold]all[/]", str(summary["n"]), f"[bold]{_pct(summary['accuracy'])}[/]")
    console.print(t)
    if types := summary.get("question_types"):  # world splits: which kind of question fails
        t = Table(title="by question type")
        cols = [
            ("family/type", "left"),
            ("n", "right"),
            ("accuracy % [95% CI]", "right"),
            ("useless valid calls %", "right"),
        ]
        for col, justify in cols:
            t.add_column(col, justify=justify)  # type: ignore[arg-type]
        for k, d in types.items():
            share = useless_share(d)
            t.add_row(k, str(d["n"]), _pct(d["accuracy"]), "-" if math.isnan(share) else f"{100 * share:.1f}")
        console.print(t)
    keys = [
        "tools/calls_per_episode",
        "tools/episodes_with_call",
        "tools/useful_rate",
        "tools/misuse_rate",
        "format/well_formed",
    ]
    console.print("  ".join(f"{k.split('/')[-1]}={summary[k]:.2f}" for k in keys))
    classes = {k.split("/")[-1]: v for k, v in summary.items() if k.startswith("tools/class/") and v > 0}
    if classes:
        console.print("call classes: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in classes.items()))
