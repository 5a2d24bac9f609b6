"""`iapo eval --bench`: a policy on a public benchmark in its official layout, with what a
reader of the number needs beside it (rows skipped, episodes no tool applies to, answers the
table image shows, images the processor downscales) and, for CharXiv, an optional local judge."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from iapo.data.benchmarks import Loaded, load_benchmark
from iapo.data.render import size_policy
from iapo.errors import ConfigError, IapoError
from iapo.eval.evaluate import EvalResult, Grader, evaluate
from iapo.models.build import load
from iapo.rollout.loop import RolloutConfig, tools_apply


def judge_grader(judge: Path, bench: str) -> tuple[Grader, object]:
    """A grader that asks a local chat model (CharXiv's reasoning rubric); returns it and the judge
    (which counts the verdicts it could not parse)."""
    from iapo.eval.judge import ChatModelJudge

    if bench != "charxiv":
        raise ConfigError("--judge applies to --bench charxiv only")
    jm = ChatModelJudge(judge)

    def grader(ep) -> float:
        ex = ep.example
        return jm(ex.question, ex.answer, ep.answer or "", ex.meta["rubric"])

    return grader, jm


def evaluate_benchmark(
    model: Path, bench: str, data: Path, cache: Path | None, rollout_cfg: RolloutConfig, limit: int | None = None,
    judge: Path | None = None,
) -> tuple[EvalResult, Loaded]:  # fmt: skip
    """Greedy episodes of `model` on `bench` (files under `data`; rendered tables cached in
    `cache`, default DATA/../iapo_cache/BENCH); the summary says what was skipped and how."""
    loaded = load_benchmark(bench, data, cache or data.parent / "iapo_cache" / bench, limit)
    exs = loaded.examples
    if not exs:
        raise IapoError(f"{data}: no {bench} examples to evaluate")
    grader, jm = judge_grader(judge, bench) if judge is not None else (None, None)
    m, proc = load(model)
    res = evaluate(m, proc, exs, rollout_cfg, grader)
    res.summary.update(
        benchmark=bench, skipped=len(loaded.skipped), skipped_rows=loaded.skipped,
        tools_unavailable=sum(not tools_apply(e) for e in exs), withheld=loaded.withheld,
        grader=f"judge {judge}" if judge is not None else "rule-based",
        rendering=rendering(loaded, exs, proc),
    )  # fmt: skip
    if jm is not None:
        res.summary["judge_unparsed"] = jm.unparsed
    return res, loaded


def rendering(loaded: Loaded, exs: list, proc) -> dict:
    """What a reader of the benchmark number needs to know about the images: answers that are
    cells and fully visible, undrawable characters, and images the processor downscales."""
    sizes = []
    for path in dict.fromkeys(str(e.image_file()) for e in exs):
        with Image.open(path) as im:
            sizes.append(im.size)
    return {
        "answer_cells": loaded.answer_cells,
        "answer_cells_visible": loaded.answer_cells_visible,
        "missing_glyphs": loaded.missing_glyphs,
        **size_policy(sizes, max_pixels(proc.image_processor)),
    }


def max_pixels(ip) -> int:
    """The image processor's pixel budget (transformers 5 keeps Qwen's max_pixels as size.longest_edge)."""
    size = getattr(ip, "size", None)
    value = getattr(ip, "max_pixels", None) or getattr(size, "max_pixels", None) or getattr(size, "longest_edge", None)
    if value is None and isinstance(size, dict):
        value = size.get("max_pixels") or size.get("longest_edge")
    if value is None:
        raise IapoError("the model's image processor names no max_pixels / size.longest_edge")
    return int(value)
