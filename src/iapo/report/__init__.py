"""`iapo report RUN_DIR`: the experiment's tables and figures as HTML + Markdown + PNGs.

Reads only what `iapo.experiment` wrote, through the run store (`iapo.store`): results, metric
logs, the records of each run and of the experiment with their resolved configs, so a report
can be regenerated at any time. One way through the package:

    load        results, curves, method configs, runs.csv
    contrasts   the runs' accuracies -> every comparison, computed once (`iapo.stats`)
    tables      (header, rows) of every table
    figures     the PNGs
    render      report.md / report.html: the verdict, the caveat, the tables and figures in order

Every interval and test takes each run's test accuracy as its data, with the zoo as the unit
when a grid has several; the verdict is the pre-registered primary contrast alone, every other
comparison is exploratory and Holm-adjusted. Per-question views are description. The episode
gallery runs the models, so it is a step of its own (`iapo.viz.episode_gallery`) that the report
shows when present.
"""

from iapo.report.contrasts import (
    arm_runs,
    attribution_variants,
    average_accuracy,
    best_on_val,
    comparisons,
    find,
    incentives,
)
from iapo.report.load import load_curves, load_results, load_run_curves, method_configs, read_runs_csv
from iapo.report.render import compare_markdown, plan_markdown, verdict, write_report
from iapo.report.roles import BASELINE, PROPOSED, ReportRoles
from iapo.report.tables import ablation_question, ablation_table, accuracy_table, fmt_ci, headline_table, tool_collapse

__all__ = [
    "BASELINE",
    "PROPOSED",
    "ReportRoles",
    "ablation_question",
    "ablation_table",
    "accuracy_table",
    "arm_runs",
    "attribution_variants",
    "average_accuracy",
    "best_on_val",
    "compare_markdown",
    "comparisons",
    "find",
    "fmt_ci",
    "headline_table",
    "incentives",
    "load_curves",
    "load_results",
    "load_run_curves",
    "method_configs",
    "plan_markdown",
    "read_runs_csv",
    "tool_collapse",
    "verdict",
    "write_report",
]  # fmt: skip
