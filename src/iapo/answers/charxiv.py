"""CharXiv scoring without GPT-4o.

The official grader (Wang et al., 2024) asks GPT-4o to extract the final answer from a response
and grade it with a rubric chosen by the question type. Nothing can call an API here, so the
default is a rule-based scorer implementing the same rubrics deterministically; any local chat
model directory can be plugged in as the judge instead (`ChatModelJudge`), and every result
records which grader was used. The rule-based scorer is stricter than a judge on paraphrases
(e.g. trends worded differently): numbers it will agree with, free text less often.

Rubrics (the metric string is `charxiv/<rubric>`):
- descriptive questions by template id: `title` (1), `ocr` (2-7: axis labels and ticks),
  `quant` (8-10, 12, 14, 15, 17, 19), `bool` (11), `enum` (13), `trend` (16), `layout` (18);
- reasoning questions by `inst_category`: `text_in_chart` (1), `text_general` (2),
  `number_in_chart` (3), `number_general` (4).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from iapo.answers.match import to_number
from iapo.answers.wtq import official_normalize

DESCRIPTIVE_RUBRIC = {
    1: "title", 2: "ocr", 3: "ocr", 4: "ocr", 5: "ocr", 6: "ocr", 7: "ocr", 8: "quant", 9: "quant",
    10: "quant", 11: "bool", 12: "quant", 13: "enum", 14: "quant", 15: "quant", 16: "trend",
    17: "quant", 18: "layout", 19: "quant",
}  # fmt: skip
REASONING_RUBRIC = {1: "text_in_chart", 2: "text_general", 3: "number_in_chart", 4: "number_general"}
RUBRICS = frozenset(DESCRIPTIVE_RUBRIC.values()) | frozenset(REASONING_RUBRIC.values())

# Descriptive questions are templates filled with the subplot to look at (`{}`), as the release
# builds them from `qids`; phrased here after the official question map.
DESCRIPTIVE_QUESTIONS = {
    1: "{}what is its title?",
    2: "{}what is the label of the x-axis?",
    3: "{}what is the label of the y-axis?",
    4: "{}what is the leftmost labeled tick on the x-axis?",
    5: "{}what is the rightmost labeled tick on the x-axis?",
    6: "{}what is the spatially lowest labeled tick on the y-axis?",
    7: "{}what is the spatially highest labeled tick on the y-axis?",
    8: "{}what is difference between consecutive numerical tick values on the x-axis?",
    9: "{}what is difference between consecutive numerical tick values on the y-axis?",
    10: "{}how many lines are there?",
    11: "{}do any lines intersect?",
    12: "{}how many discrete labels are there in the legend?",
    13: "{}what are the names of the labels in the legend?",
    14: "{}what is the difference between the maximum and minimum values of the tick labels on the continuous legend (i.e., colorbar)?",
    15: "{}what is the maximum value of the tick labels on the continuous legend (i.e., colorbar)?",
    16: "{}what is the general trend of data from left to right?",
    17: "{}what is the total number of explicitly labeled ticks across all axes?",
    18: "What is the layout of the subplots?",
    19: "What is the number of subplots?",
}

_NA = {"not applicable", "n/a", "na", "none"}
_FINAL = re.compile(r"final answer\s*[:：]\s*(.*)", re.IGNORECASE | re.DOTALL)
_LAYOUT = re.compile(r"(\d+)\s*(?:by|x|×)\s*(\d+)")
_ANY_NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?%?")
_POW = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*\^\s*\{?([+-]?\d+)\}?$")


def subplot_prefix(num_subplots: int, loc: object) -> str:
    """'For the subplot at row 1 and column 2, ' (a grid position) or 'For the bottom subplot, '."""
    if num_subplots <= 1:
        return ""
    if isinstance(loc, list) and len(loc) == 2:
        return f"For the subplot at row {loc[0]} and column {loc[1]}, "
    return f"For {loc}, "


def extract(response: str) -> str:
    """The final answer of a response: the text after 'final answer:' if there is one."""
    m = _FINAL.search(response)
    return (m.group(1) if m else response).strip().strip(".").strip()


def _plain(text: str) -> str:
    """Case, spaces and LaTeX markup do not matter: '$R^2_{t}$' == 'r^2_t'."""
    t = text.replace("$", "").replace("\\", "").replace("{", "").replace("}", "")
    return re.sub(r"\s+", "", official_normalize(t))


def _number(text: str) -> float | None:
    t = text.strip().replace("−", "-")
    m = _POW.match(t.replace(" ", ""))
    if m:  # 10^-2, 10^{3}
        return float(m.group(1)) ** float(m.group(2))
    return to_number(t)


def _is_na(text: str) -> bool:
    return official_normalize(text) in _NA


def rule_score(pred: str, gold: str, rubric: str) -> float:
    """
    >>> rule_score("The answer is 1.0", "1.00", "quant"), rule_score("10^-2", "0.01", "number_in_chart")
    (1.0, 1.0)
    >>> rule_score("A, B, C", "B, A, C", "enum"), rule_score("2 by 3", "2 by 3", "layout")
    (0.0, 1.0)
    """
    if rubric not in RUBRICS:
        raise ValueError(f"unknown CharXiv rubric {rubric!r}; one of {sorted(RUBRICS)}")
    p = extract(pred)
    if _is_na(gold) or _is_na(p):
        return float(_is_na(gold) and _is_na(p))
    if rubric in ("quant", "number_in_chart", "number_general"):
        pn, gn = _number(p), _number(gold)
        if pn is None and (nums := _ANY_NUMBER.findall(p)):  # "The answer is 1.0" -> 1.0
            pn = _number(nums[-1])
        if pn is not None and gn is not None:
            return float(abs(pn - gn) <= 1e-9 * max(1.0, abs(gn)))
        return float(_plain(p) == _plain(gold))
    if rubric == "bool":
        yes = {"yes", "true"}
        no = {"no", "false"}
        pw, gw = official_normalize(p).split(" ")[0].strip(",."), official_normalize(gold)
        return float((pw in yes and gw in yes) or (pw in no and gw in no))
    if rubric == "layout":
        pm, gm = _LAYOUT.search(p.lower()), _LAYOUT.search(gold.lower())
        return float(pm is not None and gm is not None and pm.groups() == gm.groups())
    if rubric == "enum":
        ps = [_plain(t) for t in p.split(",") if t.strip()]
        gs = [_plain(t) for t in gold.split(",") if t.strip()]
        return float(ps == gs)
    if rubric == "title":  # a letter prefix like "(a) " may be omitted
        strip = re.compile(r"^\(?[a-z]\)\s*")
        return float(_plain(strip.sub("", official_normalize(p))) == _plain(strip.sub("", official_normalize(gold))))
    if rubric == "ocr" and (gn := _number(gold)) is not None and (pn := _number(p)) is not None:
        return float(abs(pn - gn) <= 1e-9 * max(1.0, abs(gn)))  # a tick "1.00" read as 1.0
    return float(_plain(p) == _plain(gold))  # ocr, trend, text_*


Judge = Callable[[str, str, str, str], float]  # (question, gold, response, rubric) -> 0 or 1
