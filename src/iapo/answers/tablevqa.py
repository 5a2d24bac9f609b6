"""TableVQA-Bench's per-subset metrics (Kim et al., 2024), reimplemented from its evaluator.

- `vwtq`, `vwtq_syn`: WTQ denotation accuracy (`iapo.answers.wtq`), after the benchmark's own
  step of reading `||` in a prediction as the value separator `|`;
- `vtabfact`: the gold is 1/0; a prediction is right when it contains "true" (gold 1) or
  "false" (gold 0) and not both (both: unparsed, scored 0, as the official script leaves them
  for manual checking);
- `fintabnetqa`: "relieved accuracy", the benchmark's headline number: normalised strings or
  numbers after removing currency signs, parentheses, thousands separators and unit words, with
  "thousand/million/billion" and "%" read as powers of ten; a match of either the scaled or the
  unit-free reading counts.
"""

from __future__ import annotations

import re

from iapo.answers.wtq import denotation_match, official_normalize

_UNIT_WORDS = re.compile(
    r"\b(dollar|gallons|square feet|shares|mbtu|mbpd|mbbls|mmbtu|unit|gwh|year|mmcf|mile|mboe)s?\b", re.IGNORECASE
)
_SCALES = [(r" ?\bthousand\b", "e3"), (r" ?\bmillion\b", "e6"), (r" ?\bbillion\b", "e9"), (r" ?%", "e-2")]


def vwtq_match(pred: str, gold: str) -> bool:
    return denotation_match(pred.replace("||", "|"), gold)


def vtabfact_match(pred: str, gold: str) -> bool:
    """
    >>> vtabfact_match("It is TRUE.", "1"), vtabfact_match("true or false?", "1"), vtabfact_match("false", "0")
    (True, False, True)
    """
    p = pred.lower()
    if "true" in p and "false" in p:
        return False
    g = str(gold).strip().lower()
    return ("true" in p and g in ("1", "true")) or ("false" in p and g in ("0", "false"))


def _fin_forms(text: str) -> list[str | float]:
    s = re.sub(r"[\$\(\),]", "", official_normalize(text))
    s = _UNIT_WORDS.sub("", s).strip()
    scaled, unit_free = s, s
    for pattern, power in _SCALES:
        scaled = re.sub(pattern, power, scaled)
        unit_free = re.sub(pattern, "", unit_free)
    out: list[str | float] = []
    for form in (scaled.strip(), unit_free.strip()):
        try:
            out.append(float(form))
        except ValueError:
            out.append(form)
    return out


def fintabnet_match(pred: str, gold: str) -> bool:
    """
    >>> fintabnet_match("$1,200 million", "1200"), fintabnet_match("12%", "0.12"), fintabnet_match("5", "6")
    (True, True, False)
    """
    return any(p == g for p in _fin_forms(pred) for g in _fin_forms(gold))
