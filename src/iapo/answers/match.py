"""Answer checking in the style of the official metrics.

- `exact`: exact match after normalisation (case, spaces, trailing period, thousands
  separators; numbers compare as numbers), as lookups are scored;
- `relaxed`: ChartQA's relaxed accuracy, a number within 5% relative error of the gold number,
  exact match otherwise;
- `boolean`: true/false verification (TabFact style), accepting yes/no and entailed/refuted;
and `iapo.answers.grade` picks among these and the benchmarks' own metrics (`wtq`, `vwtq`,
`vtabfact`, `fintabnetqa`, `charxiv/<rubric>`: `iapo.answers.wtq`, `.tablevqa`, `.charxiv`).
"""

from __future__ import annotations

import math
import re

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TRUE = {"true", "yes", "entailed", "1", "correct", "t", "y"}
_FALSE = {"false", "no", "refuted", "0", "incorrect", "f", "n"}


def normalize(text: str) -> str:
    """Lower case, single spaces, no surrounding quotes or trailing period."""
    t = _SPACES.sub(" ", str(text)).strip().lower()
    t = t.strip("\"'` ")
    if t.endswith(".") and not _NUMBER.match(t):
        t = t[:-1].rstrip()
    return t


def to_number(text: str) -> float | None:
    """A number written plainly, with thousands separators, a % sign or a leading currency sign."""
    t = normalize(text).replace(",", "").replace(" ", "")
    t = t.removesuffix("%").lstrip("$€£")
    if t.endswith("."):
        t = t[:-1]
    if not _NUMBER.match(t):
        return None
    v = float(t)
    return v if math.isfinite(v) else None


def exact_match(pred: str, gold: str) -> bool:
    """
    >>> exact_match(" K ", "k"), exact_match("1,000", "1000"), exact_match("7.0", "7"), exact_match("8", "7")
    (True, True, True, False)
    """
    p, g = normalize(pred), normalize(gold)
    if p == g:
        return True
    pn, gn = to_number(p), to_number(g)
    return pn is not None and gn is not None and pn == gn


def relaxed_match(pred: str, gold: str, tolerance: float = 0.05) -> bool:
    """ChartQA relaxed accuracy: numbers within `tolerance` relative error, else exact match.

    >>> relaxed_match("104", "100"), relaxed_match("106", "100"), relaxed_match("0", "0")
    (True, False, True)
    >>> relaxed_match("Blue", "blue")
    True
    """
    pn, gn = to_number(pred), to_number(gold)
    if pn is not None and gn is not None:
        if gn == 0:
            return pn == 0
        return abs(pn - gn) / abs(gn) <= tolerance
    return exact_match(pred, gold)


def to_bool(text: str) -> bool | None:
    t = normalize(text)
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    return None


def boolean_match(pred: str, gold: str) -> bool:
    """
    >>> boolean_match("Yes", "true"), boolean_match("refuted", "false"), boolean_match("maybe", "false")
    (True, True, False)
    """
    p, g = to_bool(pred), to_bool(gold)
    return p is not None and p == g
