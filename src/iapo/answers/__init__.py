"""Answer checking: the world's rules (exact / relaxed / boolean, `match`) and the benchmarks'
official metrics (`wtq`, `tablevqa`, `charxiv`); `grade` dispatches on an example's metric name.
The submodules import only `match` and `wtq`, never this package's `grade`.

(Logged training numbers are "metrics" elsewhere: `iapo.steps.MetricLog`.)"""

from iapo.answers import tablevqa
from iapo.answers.charxiv import rule_score
from iapo.answers.match import boolean_match, exact_match, normalize, relaxed_match, to_number
from iapo.answers.wtq import denotation_match

__all__ = ["boolean_match", "exact_match", "grade", "normalize", "relaxed_match", "to_number"]

_MATCH = {
    "exact": exact_match,
    "relaxed": relaxed_match,
    "boolean": boolean_match,
    "wtq": denotation_match,
    "vwtq": tablevqa.vwtq_match,
    "vtabfact": tablevqa.vtabfact_match,
    "fintabnetqa": tablevqa.fintabnet_match,
}


def grade(pred: str | None, gold: str | list[str], metric: str) -> float:
    """1.0 if `pred` matches any gold answer under `metric`, else 0.0 (no prediction scores 0);
    `charxiv/<rubric>` scores with CharXiv's rule for that rubric."""
    if pred is None:
        return 0.0
    golds = [gold] if isinstance(gold, str) else gold
    if metric.startswith("charxiv/"):
        rubric = metric.split("/", 1)[1]
        return max(rule_score(pred, g, rubric) for g in golds)
    if metric not in _MATCH:
        raise ValueError(f"unknown metric {metric!r}")
    return float(any(_MATCH[metric](pred, g) for g in golds))
