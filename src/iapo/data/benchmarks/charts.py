"""Chart benchmarks from their official releases. Their charts carry no boxes, so the focus
tools cannot apply: episodes offer no tools and answer directly (counted in
`tools_unavailable`). The ReFocus subsets of ChartQA, which carry boxes, are in `refocus.py`.

- `chartqa` (ChartQA): `DIR/test_human.json` / `test_augmented.json` (or under `DIR/test/`) =
  list of `{imgname, query, label}`, images in `png/`. Metric: relaxed accuracy (5%).
- `charxiv` (CharXiv): `DIR/data/{descriptive,reasoning}_{val,test}.json` (or directly in DIR),
  images `DIR/images/<figure_id>.jpg`. Reasoning rows: `{figure_id, query, answer,
  inst_category, qa_source}`; descriptive rows: `{figure_id, num_subplots, subplot_loc, qids,
  answers}`, one question per qid, built from the question templates. Test answers are
  withheld by the release: such rows are counted, not loaded. Metric: `iapo.answers.charxiv`
  (rule-based by default, a local judge model on request).
"""

from __future__ import annotations

from pathlib import Path

from iapo.answers.charxiv import DESCRIPTIVE_QUESTIONS, DESCRIPTIVE_RUBRIC, REASONING_RUBRIC, subplot_prefix
from iapo.data.benchmarks.common import Loaded, check_image
from iapo.data.example import Example
from iapo.errors import DataError
from iapo.store import read_json
from iapo.tools.layout import Layout


def load_chartqa(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    names = ("test_human.json", "test_augmented.json")
    base = root / "test" if (root / "test" / names[0]).exists() or (root / "test" / names[1]).exists() else root
    files = [base / n for n in names if (base / n).exists()]
    if not files:
        raise DataError(f"{root}: no ChartQA test_human.json / test_augmented.json (in DIR or DIR/test)")
    out = Loaded([])
    for f in files:
        rows = read_json(f, list, "a list of {imgname, query, label}")
        for k, r in enumerate(rows):
            if out.full(limit):
                return out
            if not isinstance(r, dict) or not {"imgname", "query", "label"} <= set(r):
                out.skipped.append(f"{f}: row {k}: needs imgname, query, label")
                continue
            img = base / "png" / str(r["imgname"])
            if (why := check_image(img)) is not None:
                out.skipped.append(f"{f}: row {k}: {why}")
                continue
            out.examples.append(
                Example(
                    id=f"{f.stem}:{k}",
                    question=str(r["query"]),
                    answer=str(r["label"]),
                    metric="relaxed",
                    layout=Layout(kind="chart"),
                    image_path=str(img.resolve()),
                    family="chartqa",
                    split=f.stem,
                    style="chart",
                )
            )
            out.tools_unavailable += 1
    return out


def _charxiv_rows(f: Path, row: dict) -> list[tuple[str, str, str, dict]]:
    """(question, answer, rubric, meta) of one row of a CharXiv file; raises on a malformed row."""
    if f.stem.startswith("reasoning"):
        cat = int(row["inst_category"])
        if cat not in REASONING_RUBRIC:
            raise ValueError(f"inst_category {cat} not in {sorted(REASONING_RUBRIC)}")
        meta = {"inst_category": cat, "qa_source": row.get("qa_source")}
        return [(str(row["query"]), row.get("answer"), REASONING_RUBRIC[cat], meta)]
    qids, answers = row["qids"], row.get("answers")
    if answers is not None and len(answers) != len(qids):
        raise ValueError(f"{len(qids)} qids but {len(answers)} answers")
    prefix = subplot_prefix(int(row.get("num_subplots", 1)), row.get("subplot_loc"))
    out = []
    for j, qid in enumerate(qids):
        qid = int(qid)
        if qid not in DESCRIPTIVE_QUESTIONS:
            raise ValueError(f"unknown descriptive qid {qid}")
        q = DESCRIPTIVE_QUESTIONS[qid].format(prefix)
        out.append(
            (q[0].upper() + q[1:], None if answers is None else answers[j], DESCRIPTIVE_RUBRIC[qid], {"qid": qid})
        )
    return out


def load_charxiv(root: Path, cache: Path, limit: int | None = None) -> Loaded:
    base = root / "data" if (root / "data").is_dir() else root
    files = sorted(p for p in base.glob("*.json") if p.stem.split("_")[0] in ("descriptive", "reasoning"))
    if not files:
        raise DataError(f"{root}: no CharXiv {{descriptive,reasoning}}_{{val,test}}.json (in DIR/data or DIR)")
    out = Loaded([])
    for f in files:
        data = read_json(f, dict, "{index: row}")
        withheld = 0
        for key, row in data.items():
            if out.full(limit):
                return out
            try:
                items = _charxiv_rows(f, row)
                img = root / "images" / f"{int(row['figure_id'])}.jpg"
            except (KeyError, ValueError, TypeError) as e:
                out.skipped.append(f"{f}: row {key!r}: {type(e).__name__}: {e}")
                continue
            if all(a is None for _, a, _, _ in items):
                withheld += len(items)
                continue
            if (why := check_image(img)) is not None:
                out.skipped.append(f"{f}: row {key!r}: {why}")
                continue
            for j, (q, a, rubric, meta) in enumerate(items):
                if out.full(limit):
                    return out
                out.examples.append(
                    Example(
                        id=f"{f.stem}:{key}" + (f":{j}" if len(items) > 1 else ""),
                        question=q,
                        answer=str(a),
                        metric=f"charxiv/{rubric}",
                        layout=Layout(kind="chart"),
                        image_path=str(img.resolve()),
                        family=f"charxiv_{f.stem.split('_')[0]}",
                        split=f.stem,
                        style="chart",
                        meta={"figure_id": int(row["figure_id"]), "rubric": rubric, **meta},
                    )
                )
                out.tools_unavailable += 1
        if withheld:
            out.withheld += withheld
            out.skipped.append(f"{f}: {withheld} questions without answers (withheld by the release) not loaded")
    return out
