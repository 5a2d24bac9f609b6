"""Question families, mirroring the six public test sets of the method.

- `table_lookup` (WikiTableQuestions / TableVQA-Bench): value of a cell, which of two rows is
  larger, difference of two rows, which row holds a column's maximum (and, opt-in, two cells of a
  row read as one number: the sparse-reward regime);
- `table_verify` (TabFact): true/false statements about cells;
- `chart_value` (ChartQA): value of a bar or point, which of two is larger;
- `chart_series` (CharXiv reasoning): grouped bars, difference and comparison of two series;
- `focus` (ReFocus): sums over two rows or two chart values, which need several regions.

Every question records the evidence (content units the answer needs) and the context (row
starters that must stay in view because the answer names a row).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from iapo.world.glyphs import SERIES_NAMES
from iapo.world.layouts import Scene

FAMILIES = ("table_lookup", "table_verify", "chart_value", "chart_series", "focus")


@dataclass
class Decoy:
    """What a named distractor holds: the units a call on it would keep, and the answer (and its
    rationale) read off them. A demonstrator that does not know which named row is meant calls it."""

    evidence: list[str]
    answer: str
    rationale: str


@dataclass
class Question:
    text: str
    answer: str
    metric: str  # exact | relaxed | boolean
    evidence: list[str]
    template: str
    context: list[str] = field(default_factory=list)
    rationale: str = ""  # the values the answer is computed from, as a demonstration writes them
    decoy: Decoy | None = None  # the distractor the question names (value_pair_below, value_pair_later)


def _pairs(items: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name} {v}" for name, v in items)


def _two(rng: random.Random, items: list[str]) -> tuple[str, str]:
    a, b = rng.sample(items, 2)
    return a, b


# --- tables ------------------------------------------------------------------------------------


def t_value(s: Scene, rng: random.Random) -> Question:
    r, c = rng.choice(s.row_names), rng.choice(s.col_names)
    return Question(
        f'What is the value in row "{r}", column "{c}"?',
        str(s.values[f"{r}/{c}"]),
        "exact",
        [f"{r}/{c}"],
        "value",
        rationale=str(s.values[f"{r}/{c}"]),
    )


def _cells_of_row(
    s: Scene, rng: random.Random, r: str, where: str, template: str, decoy: str | None = None
) -> Question:
    """Two cells of row `r`, read as one two-digit number; `where` is how the question names the row,
    `decoy` another row it names (the rationale then says which row was read)."""
    a, b = _two(rng, s.col_names)

    def read(row: str) -> tuple[list[str], str, str]:
        va, vb = s.values[f"{row}/{a}"], s.values[f"{row}/{b}"]
        return [f"{row}/{a}", f"{row}/{b}"], f"{va}{vb}", f"{row}: {va}, {vb}" if decoy else f"{va}, {vb}"

    evidence, answer, rationale = read(r)
    return Question(
        f'{where}, what are column "{a}" and column "{b}", written as one number?',
        answer,
        "exact",
        evidence,
        template,
        rationale=rationale,
        decoy=Decoy(*read(decoy)) if decoy is not None else None,
    )


def t_value_pair(s: Scene, rng: random.Random) -> Question:
    """Two cells of one row, read as a two-digit number: 100 possible answers, so a guess is right
    about 1% of the time (one cell: 10%). The world's sparse-reward regime is built on it."""
    r = rng.choice(s.row_names)
    return _cells_of_row(s, rng, r, f'In row "{r}"', "value_pair")


def t_value_pair_below(s: Scene, rng: random.Random) -> Question:
    """`value_pair` with a distractor: the question names a row and asks for the row below it, so
    the row a useful call must name is read from the image, not copied from the question; a call
    on the named row runs and is useless. Where "where to look" is spelled out by the question
    (`value_pair`), any call bonus knows it as well as a teacher does (issue 40)."""
    i = rng.randrange(len(s.row_names) - 1)
    named, r = s.row_names[i], s.row_names[i + 1]
    return _cells_of_row(s, rng, r, f'In the row below "{named}"', "value_pair_below", named)


def t_value_pair_later(s: Scene, rng: random.Random) -> Question:
    """`value_pair` with a named distractor: the question names two rows, in random order, and the
    evidence is the one later in the alphabet. Both names can be copied into a call and both calls
    run; which one is useful is a rule the question states and a call bonus does not pay for, and
    unlike `value_pair_below` it needs no reading of row names off the image (issue 40)."""
    a, b = _two(rng, s.row_names)
    r = max(a, b)
    where = f'In whichever of rows "{a}" and "{b}" comes later in the alphabet'
    return _cells_of_row(s, rng, r, where, "value_pair_later", min(a, b))


def _distinct_rows(s: Scene, rng: random.Random, c: str) -> tuple[str, str] | None:
    for _ in range(20):
        a, b = _two(rng, s.row_names)
        if s.values[f"{a}/{c}"] != s.values[f"{b}/{c}"]:
            return a, b
    return None


def t_compare(s: Scene, rng: random.Random) -> Question | None:
    c = rng.choice(s.col_names)
    pair = _distinct_rows(s, rng, c)
    if pair is None:
        return None
    a, b = pair
    win = a if s.values[f"{a}/{c}"] > s.values[f"{b}/{c}"] else b
    return Question(
        f'In column "{c}", which row is larger: "{a}" or "{b}"?',
        win,
        "exact",
        [f"{a}/{c}", f"{b}/{c}"],
        "compare",
        context=[f"{a}/#", f"{b}/#"],
        rationale=_pairs([(a, s.values[f"{a}/{c}"]), (b, s.values[f"{b}/{c}"])]),
    )


def t_diff(s: Scene, rng: random.Random) -> Question:
    c = rng.choice(s.col_names)
    a, b = _two(rng, s.row_names)
    d = s.values[f"{a}/{c}"] - s.values[f"{b}/{c}"]
    return Question(
        f'What is row "{a}" minus row "{b}" in column "{c}"?',
        str(d),
        "exact",
        [f"{a}/{c}", f"{b}/{c}"],
        "diff",
        rationale=f"{s.values[f'{a}/{c}']} - {s.values[f'{b}/{c}']}",
    )


def t_argmax(s: Scene, rng: random.Random) -> Question | None:
    c = rng.choice(s.col_names)
    col = {r: s.values[f"{r}/{c}"] for r in s.row_names}
    best = max(col.values())
    if list(col.values()).count(best) != 1:
        return None
    r = max(col, key=col.__getitem__)
    return Question(
        f'Which row has the largest value in column "{c}"?',
        r,
        "exact",
        [f"{x}/{c}" for x in s.row_names],
        "argmax",
        context=[f"{x}/#" for x in s.row_names],
        rationale=_pairs(list(col.items())),
    )


def t_verify_value(s: Scene, rng: random.Random) -> Question:
    r, c = rng.choice(s.row_names), rng.choice(s.col_names)
    v = s.values[f"{r}/{c}"]
    truth = rng.random() < 0.5
    claim = v if truth else rng.choice([d for d in range(10) if d != v])
    return Question(
        f'True or false: row "{r}", column "{c}" is {claim}.',
        "true" if truth else "false",
        "boolean",
        [f"{r}/{c}"],
        "verify_value",
        rationale=str(v),
    )


def t_verify_compare(s: Scene, rng: random.Random) -> Question | None:
    c = rng.choice(s.col_names)
    pair = _distinct_rows(s, rng, c)
    if pair is None:
        return None
    a, b = pair
    truth = s.values[f"{a}/{c}"] > s.values[f"{b}/{c}"]
    return Question(
        f'True or false: in column "{c}", row "{a}" is larger than row "{b}".',
        "true" if truth else "false",
        "boolean",
        [f"{a}/{c}", f"{b}/{c}"],
        "verify_compare",
        rationale=_pairs([(a, s.values[f"{a}/{c}"]), (b, s.values[f"{b}/{c}"])]),
    )


def t_sum_rows(s: Scene, rng: random.Random) -> Question:
    c = rng.choice(s.col_names)
    a, b = _two(rng, s.row_names)
    total = s.values[f"{a}/{c}"] + s.values[f"{b}/{c}"]
    return Question(
        f'What is the sum of rows "{a}" and "{b}" in column "{c}"?',
        str(total),
        "exact",
        [f"{a}/{c}", f"{b}/{c}"],
        "sum_rows",
        rationale=f"{s.values[f'{a}/{c}']} + {s.values[f'{b}/{c}']}",
    )


# --- charts ------------------------------------------------------------------------------------


def c_value(s: Scene, rng: random.Random) -> Question:
    x = rng.choice(s.categories)
    v = s.values[x]
    return Question(f'What is the value of "{x}"?', str(v), "relaxed", [x], "chart_value", rationale=str(v))


def c_compare(s: Scene, rng: random.Random) -> Question | None:
    for _ in range(20):
        a, b = _two(rng, s.categories)
        if s.values[a] != s.values[b]:
            win = a if s.values[a] > s.values[b] else b
            return Question(
                f'Which is larger, "{a}" or "{b}"?',
                win,
                "exact",
                [a, b],
                "chart_compare",
                rationale=_pairs([(a, s.values[a]), (b, s.values[b])]),
            )
    return None


def c_sum(s: Scene, rng: random.Random) -> Question:
    a, b = _two(rng, s.categories)
    return Question(
        f'What is the total of "{a}" and "{b}"?',
        str(s.values[a] + s.values[b]),
        "relaxed",
        [a, b],
        "chart_sum",
        rationale=f"{s.values[a]} + {s.values[b]}",
    )


def g_diff(s: Scene, rng: random.Random) -> Question:
    x = rng.choice(s.categories)
    p, q = rng.sample(range(s.n_series), 2)
    vp, vq = s.values[f"{x}:{p}"], s.values[f"{x}:{q}"]
    return Question(
        f'At "{x}", what is {SERIES_NAMES[p]} minus {SERIES_NAMES[q]}?',
        str(vp - vq),
        "relaxed",
        [x],
        "series_diff",
        rationale=f"{vp} - {vq}",
    )


def g_compare(s: Scene, rng: random.Random) -> Question | None:
    x = rng.choice(s.categories)
    p, q = rng.sample(range(s.n_series), 2)
    vp, vq = s.values[f"{x}:{p}"], s.values[f"{x}:{q}"]
    if vp == vq:
        return None
    win = SERIES_NAMES[p] if vp > vq else SERIES_NAMES[q]
    return Question(
        f'At "{x}", which is higher, {SERIES_NAMES[p]} or {SERIES_NAMES[q]}?',
        win,
        "exact",
        [x],
        "series_compare",
        rationale=_pairs([(SERIES_NAMES[p], vp), (SERIES_NAMES[q], vq)]),
    )


Template = Callable[[Scene, random.Random], "Question | None"]


class Draw(NamedTuple):
    """One way a family draws a question: a scene style, a template, its weight, and the
    `meta.template` name the template writes (what `WorldConfig.templates` selects by)."""

    style: str
    template: Template
    weight: float
    name: str


FAMILY_TEMPLATES: dict[str, list[Draw]] = {
    "table_lookup": [
        Draw("table", t_value, 0.4, "value"),
        Draw("table", t_compare, 0.2, "compare"),
        Draw("table", t_diff, 0.2, "diff"),
        Draw("table", t_argmax, 0.2, "argmax"),
        Draw("table", t_value_pair, 0.2, "value_pair"),
        Draw("table", t_value_pair_below, 0.2, "value_pair_below"),
        Draw("table", t_value_pair_later, 0.2, "value_pair_later"),
    ],
    "table_verify": [
        Draw("table", t_verify_value, 0.6, "verify_value"),
        Draw("table", t_verify_compare, 0.4, "verify_compare"),
    ],
    "chart_value": [
        Draw("v_bar", c_value, 0.25, "chart_value"),
        Draw("h_bar", c_value, 0.25, "chart_value"),
        Draw("line", c_value, 0.2, "chart_value"),
        Draw("v_bar", c_compare, 0.15, "chart_compare"),
        Draw("h_bar", c_compare, 0.15, "chart_compare"),
    ],
    "chart_series": [Draw("grouped", g_diff, 0.5, "series_diff"), Draw("grouped", g_compare, 0.5, "series_compare")],
    "focus": [
        Draw("table", t_sum_rows, 0.5, "sum_rows"),
        Draw("v_bar", c_sum, 0.25, "chart_sum"),
        Draw("h_bar", c_sum, 0.25, "chart_sum"),
    ],
}
TEMPLATES = tuple(dict.fromkeys(d.name for draws in FAMILY_TEMPLATES.values() for d in draws))
# drawn only when `WorldConfig.templates` names them, so that the default world stays as it was
OPT_IN_TEMPLATES = frozenset({"value_pair", "value_pair_below", "value_pair_later"})
DEFAULT_TEMPLATES = tuple(t for t in TEMPLATES if t not in OPT_IN_TEMPLATES)
