"""WikiTableQuestions denotation accuracy, reimplemented from the official `evaluator.py`
(Pasupat & Liang, 2015): answers are lists of values; each value is a number, a date
(`yyyy-mm-dd`, `xx` for unknown parts) or a normalised string; a prediction is correct when it
has as many values as the target and every target value matches one predicted value (order
does not matter).

One documented extension: the official script reads the gold's *CoreNLP-canonical* values from
the tagged dataset, where "1,000" is already the number 1000; our fixtures carry only the raw
`targetValue`, so number parsing here also accepts thousands separators ("1,000" == "1000").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


def official_normalize(x: str) -> str:
    """The official string normalisation.

    >>> official_normalize('  "The Beatles" [1] '), official_normalize("Café (band)"), official_normalize("U.S.")
    ('the beatles', 'cafe', 'u.s')
    """
    x = "".join(c for c in unicodedata.normalize("NFKD", x) if unicodedata.category(c) != "Mn")
    x = re.sub(r"[‘’´`]", "'", x)
    x = re.sub(r"[“”]", '"', x)
    x = re.sub(r"[‐‑‒–—−]", "-", x)
    while True:
        old = x
        x = re.sub(r"((?<!^)\[[^\]]*\]|\[\d+\]|[•♦†‡*#+])*$", "", x.strip())  # citations
        x = re.sub(r"(?<!^)( \([^)]*\))*$", "", x.strip())  # details in parentheses
        x = re.sub(r'^"([^"]*)"$', r"\1", x.strip())  # outermost quotes
        if x == old:
            break
    if x and x[-1] == ".":
        x = x[:-1]
    return re.sub(r"\s+", " ", x, flags=re.U).lower().strip()


@dataclass(frozen=True)
class Value:
    normalized: str
    number: float | None = None
    date: tuple[int, int, int] | None = None

    def match(self, other: Value) -> bool:
        if self.number is not None and other.number is not None:
            return abs(self.number - other.number) < 1e-6
        if self.date is not None and other.date is not None:
            return self.date == other.date
        return self.normalized == other.normalized


def parse_number(text: str) -> float | None:
    t = text.strip()
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")
    try:
        return float(int(t))
    except ValueError:
        try:
            v = float(t)
        except ValueError:
            return None
        return None if v != v or v in (float("inf"), float("-inf")) else v


def parse_date(text: str) -> tuple[int, int, int] | None:
    """`yyyy-mm-dd` with `xx` / `xxxx` for unknown parts, as the official DateValue."""
    parts = text.lower().split("-")
    if len(parts) != 3:
        return None
    try:
        y = -1 if parts[0] in ("xx", "xxxx") else int(parts[0])
        m = -1 if parts[1] == "xx" else int(parts[1])
        d = -1 if parts[2] == "xx" else int(parts[2])
    except ValueError:
        return None
    if y == m == d == -1 or not (m == -1 or 1 <= m <= 12) or not (d == -1 or 1 <= d <= 31):
        return None
    return (y, m, d)


def to_value(text: str) -> Value:
    norm = official_normalize(text)
    number = parse_number(text)
    if number is not None:
        return Value(norm, number=number)
    return Value(norm, date=parse_date(text))


def split_answer(text: str) -> list[str]:
    """Several values are joined with `|` (the TSV's targetValue; our agents answer the same way)."""
    return [t for t in (p.strip() for p in text.split("|")) if t]


def denotation_match(pred: str, gold: str) -> bool:
    """
    >>> denotation_match("1000", "1,000"), denotation_match("b|a", "a|b"), denotation_match("a", "a|b")
    (True, True, False)
    >>> denotation_match("2011-12", "2011-12"), denotation_match("3.0", "3")
    (True, True)
    """
    targets = [to_value(t) for t in split_answer(gold)]
    preds = [to_value(p) for p in split_answer(pred)]
    if len(targets) != len(preds):
        return False
    return all(any(t.match(p) for p in preds) for t in targets)
