"""Supervised fine-tuning on tool trajectories of the world, in two or three stages.

1. `text`: the language stage, a stand-in for the pretrained LLM every real VLM starts from.
   Short text-only episodes (question -> tool calls, no system prompt, no image) teach the model
   to copy row / column / value names from the question into calls. Measured here: a 2-layer
   model learns that copy in ~1,100 steps on short sequences, but not within 600 steps once the
   70-token system prompt and tool spec sit in front (attention at init spreads over every
   token); the skill transfers to the full prompt afterwards.
2. `reading` (optional, `reading_steps`): the question, the original image and the output of a
   valid tool path -> the answer. A curriculum for finding the answer in the last of several
   images, which full episodes teach slowly (research/reading/README.md).
3. `multimodal`: full episodes with images.

Each multimodal episode takes one valid tool path drawn at random among ALL valid paths of the
question (so a model learns that several paths are fine), executes it with the real tools, and
ends with the gold answer; a share of episodes offers no tools and answers directly (the
no-tools mode that `iapo eval --no-tools` measures). The loss is on the assistant turns only.

Why a compact loop rather than TRL's SFTTrainer / transformers' Trainer: the Qwen2.5-VL
processor they drive cannot be built without torchvision here, and the loss mask must
follow our exact per-segment spans of multi-turn, multi-image tool episodes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.errors import ConfigError
from iapo.models.processor import VLProcessor
from iapo.models.tokenizer import IM_END, IM_START, IMAGE_PAD, VISION_END, VISION_START
from iapo.provenance import record
from iapo.rollout.episode import (
    Segment,
    assistant_segment,
    collate,
    encode,
    prompt_segments,
    tool_output_segment,
)
from iapo.steps import cosine_lr, resume, run_steps, seed_everything
from iapo.store import RunDir
from iapo.tools.registry import run_tool
from iapo.tools.syntax import format_answer, format_tool_call

log = logging.getLogger(__name__)
ReadingContext = Literal["full", "short"]


class SFTConfig(StrictModel):
    """SFT settings; the defaults fit fine-tuning a pretrained checkpoint (`iapo finetune`): the
    multimodal stage only. The staged curriculum of the tiny from-scratch models is
    `CurriculumSFTConfig` (the zoo's defaults: `iapo.supervised.zoo.ZooSFTConfig`)."""

    text_steps: int = Field(
        0, ge=0, description="language stage: short text-only episodes (a pretrained LM needs none)"
    )
    text_lr: float = Field(3e-3, gt=0, description="peak learning rate of the language stage")
    steps: int = Field(1000, ge=0, description="multimodal stage: full episodes with images")
    batch_size: int = Field(8, ge=1, description="episodes per step")
    lr: float = Field(1e-5, gt=0, description="peak learning rate of the reading and multimodal stages")
    warmup: int = Field(50, ge=0, description="linear warmup steps of each stage")
    weight_decay: float = Field(0.01, description="AdamW weight decay")
    shortest_path_share: float = Field(
        0.8,
        ge=0,
        le=1,
        description="demonstrations that take one of the shortest valid paths (else any valid path)",
    )
    no_tools_share: float = Field(0.2, ge=0, le=1, description="episodes that offer no tools and answer directly")
    content_weight: float = Field(
        1.0, ge=1, description="loss weight of content tokens (names and values: single letters / digits)"
    )
    train_vision: bool = Field(False, description="also update the (pretrained) vision tower")
    data_workers: int = Field(
        0,
        ge=0,
        description="processes that execute tool paths and encode batches ahead of the step (GPU runs); "
        "batches are the same for any number",
    )
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints (a stage resumes from the last)")
    seed: int = Field(0, description="data order")


class CurriculumSFTConfig(SFTConfig):
    """SFT with the stages and demonstrators the tiny from-scratch models need (research/reading):
    a reading stage before the multimodal one, and demonstrators that skip tools or write a
    rationale. Every knob is off by default, so plain SFT is a curriculum without stages."""

    reading_steps: int = Field(
        0,
        ge=0,
        description="reading stage before the multimodal one: the last tool output and the question -> the answer "
        "(see reading_context)",
    )
    reading_until_loss: float | None = Field(
        None,
        gt=0,
        description="end the reading stage once its loss, averaged over the last 25 steps, falls below this "
        "(reading_steps is then the cap). Learning to read is a sudden drop whose step varies with the seed "
        "and the machine's kernels (measured: ~150 to 500+ steps for the same config), so a fixed count either "
        "wastes steps or stops before it",
    )
    reading_lr: float | None = Field(
        None, gt=0, description="the reading stage's peak learning rate (default: lr, the multimodal stage's)"
    )
    reading_schedule: Literal["cosine", "hold"] = Field(
        "cosine",
        description="the reading stage's learning rate after warmup: cosine decay over reading_steps, or hold "
        "the peak until reading_until_loss ends the stage. The drop comes after a plateau of 100-550 steps "
        "(seed-dependent); under the cosine a late drop meets a decayed rate and the loss stays near 1 at the "
        "cap (research/claim/README.md, zoo table)",
    )
    reading_templates: list[str] | None = Field(
        None,
        description="question templates (`meta.template`) the reading stage draws from; default all. "
        "One-value templates (value, chart_value) make the stage a curriculum: measured here, a 2-layer "
        "model learns to read within ~200 steps on them and not within 600 on the whole mix",
    )
    reading_context: ReadingContext = Field(
        "full",
        description="reading-stage episodes: full = system prompt, tool spec, original image, tool output, "
        "question; short = the tool output and the question only (about a third of the tokens)",
    )
    direct_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="of the episodes that offer tools, those whose demonstration answers at once without a call "
        "(a demonstrator that often skips tools: the room RL has to learn when to use them)",
    )
    call_templates: list[str] | None = Field(
        None,
        description="question templates (`meta.template`) whose demonstrations call tools; default all. The "
        "others answer at once wherever tools are offered, and the text stage (tool-call practice) leaves them "
        "out: a demonstrator that shows where to look for some questions only, so a student built with it has to "
        "learn where for the rest (research/distractor)",
    )
    decoy_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="of the demonstrations that call tools on a question naming a distractor (the world's "
        "`value_pair_below` and `value_pair_later`), those that call the distractor instead and answer what it "
        "shows: a demonstrator that copies a name from the question without knowing which one is meant "
        "(research/distractor)",
    )
    rationale: bool = Field(
        False,
        description="answers start with <think>the values read</think> (world examples carry them)",
    )


def as_curriculum(cfg: SFTConfig) -> CurriculumSFTConfig:
    """Plain SFT settings as a curriculum without stages (every curriculum knob off)."""
    return cfg if isinstance(cfg, CurriculumSFTConfig) else CurriculumSFTConfig(**cfg.model_dump())


def choose_path(ex: Example, rng: random.Random, shortest_share: float) -> list[dict]:
    """A valid path: with probability `shortest_share` one of the shortest valid paths, else any."""
    if not ex.valid_paths:
        return []
    if rng.random() < shortest_share:
        n = min(len(p) for p in ex.valid_paths)
        return rng.choice([p for p in ex.valid_paths if len(p) == n])
    return rng.choice(ex.valid_paths)


def sft_segments(
    ex: Example, rng: random.Random, tools: bool, shortest_share: float = 0.0, rationale: bool = False
) -> list[Segment]:
    """A demonstration episode: a valid path, executed with the real tools, then the gold answer
    (after the example's rationale when `rationale`)."""
    path = choose_path(ex, rng, shortest_share) if tools else []
    return _demo_segments(ex, tools, path, rationale)


def decoy_view(ex: Example) -> Example:
    """`ex` as a demonstrator that takes its named distractor for the row meant sees it: the
    distractor's evidence, valid paths and answer (the question and image unchanged)."""
    d = ex.meta["decoy"]
    return replace(ex, answer=d["answer"], answers=[], evidence=d["evidence"], valid_paths=d["paths"],
                   reference_path=d["paths"][0], rationale=d["rationale"])  # fmt: skip


def _demo_segments(ex: Example, tools: bool, path: list[dict], rationale: bool = False) -> list[Segment]:
    segs = prompt_segments(ex, tools=tools)
    image, layout = segs[2].images[0], ex.layout
    for call in path:
        segs.append(assistant_segment(format_tool_call(call["name"], call["arguments"])))
        image, layout = run_tool(image, layout, call["name"], call["arguments"])
        segs.append(tool_output_segment(image, "ok"))
    segs.append(assistant_segment(format_answer(ex.answer, ex.rationale if rationale else "")))
    return segs


def _text_segments(ex: Example, path: list[dict]) -> list[Segment]:
    """Language-stage episode: the question, then the calls of `path` (tool responses reduced to
    "ok"); no system prompt, tool spec or image."""
    segs = [Segment("question", f"{IM_START}user\n{ex.question}{IM_END}\n{IM_START}assistant\n")]
    for k, call in enumerate(path):
        if k:
            segs.append(tool_output_segment(None, "ok"))
        segs.append(assistant_segment(format_tool_call(call["name"], call["arguments"])))
    return segs


def reading_segments(
    ex: Example, rng: random.Random, shortest_share: float = 0.0, context: ReadingContext = "full"
) -> list[Segment]:
    """Reading-stage episode: (`full`: system prompt, tool spec, the original image, then) the
    output of a valid tool path and the question; the answer follows at once (no calls to write).
    Short contexts like this let a small LM learn to find the answer in the LAST image within a few
    hundred steps, where full episodes take far longer (research/reading/README.md sections 2 and 9)."""
    return _reading_segments(ex, choose_path(ex, rng, shortest_share), context)


def _reading_segments(ex: Example, path: list[dict], context: ReadingContext = "full") -> list[Segment]:
    system, spec, first, _ = prompt_segments(ex, tools=True)
    image, layout = first.images[0], ex.layout
    for call in path:
        image, layout = run_tool(image, layout, call["name"], call["arguments"])
    pad = f"{VISION_START}{IMAGE_PAD}{VISION_END}"
    if context == "short":
        return [
            Segment("image", f"{IM_START}user\n{pad}", [image]),
            Segment("question", f"{ex.question}{IM_END}\n{IM_START}assistant\n"),
            assistant_segment(format_answer(ex.answer)),
        ]
    return [
        system,
        spec,
        Segment("image", f"{IM_START}user\n{pad}{IM_END}\n", first.images),
        Segment("image", f"{IM_START}user\n{pad}", [image]),
        Segment("question", f"{ex.question}{IM_END}\n{IM_START}assistant\n"),
        assistant_segment(format_answer(ex.answer)),
    ]


# One episode of a batch, as drawn in the main process: (example, tools offered, valid path;
# an empty path answers at once).
Plan = tuple[Example, bool, list[dict]]


def stage_pool(stage: str, train: list[Example], cfg: CurriculumSFTConfig) -> list[Example]:
    """The examples a stage draws from: the reading stage keeps `reading_templates` only, the text
    stage (tool-call practice) `call_templates` only."""
    key = {"reading": "reading_templates", "text": "call_templates"}.get(stage)
    templates = getattr(cfg, key) if key else None
    if templates is None:
        return train
    pool = [ex for ex in train if ex.meta.get("template") in templates]
    if len(pool) < cfg.batch_size:
        raise ConfigError(
            f"{key} {templates}: {len(pool)} training examples, fewer than one batch "
            f"({cfg.batch_size}); templates in this world: {sorted({str(ex.meta.get('template')) for ex in train})}"
        )
    return pool


def plan_step(stage: str, train: list[Example], rng: random.Random, cfg: CurriculumSFTConfig) -> list[Plan]:
    """Every random choice of one step's batch, in the order the single-process loop made them,
    so that batches do not depend on how many workers build them."""
    plans = []
    for ex in rng.sample(train, cfg.batch_size):
        tools = stage != "multimodal" or rng.random() >= cfg.no_tools_share
        direct = stage == "multimodal" and tools and cfg.direct_share > 0 and rng.random() < cfg.direct_share
        direct = direct or (cfg.call_templates is not None and ex.meta.get("template") not in cfg.call_templates)
        decoy = tools and not direct and cfg.decoy_share > 0 and bool(ex.meta.get("decoy", {}).get("paths"))
        if decoy and rng.random() < cfg.decoy_share:
            ex = decoy_view(ex)
        plans.append((ex, tools, choose_path(ex, rng, cfg.shortest_path_share) if tools and not direct else []))
    return plans


class _StageBatches(torch.utils.data.Dataset):
    """Step k -> the collated batch of plans[k]: executing tool paths and encoding images is the
    costly part of SFT on a GPU, so DataLoader workers do it ahead of the training step."""

    def __init__(
        self,
        stage: str,
        plans: list[list[Plan]],
        processor: VLProcessor,
        rationale: bool,
        reading_context: ReadingContext = "full",
    ):
        self.stage, self.plans, self.processor, self.rationale = stage, plans, processor, rationale
        self.reading_context = reading_context

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, k: int):
        segs = []
        for ex, tools, path in self.plans[k]:
            if self.stage == "text":
                segs.append(_text_segments(ex, path))
            elif self.stage == "reading":
                segs.append(_reading_segments(ex, path, self.reading_context))
            else:
                segs.append(_demo_segments(ex, tools, path, self.rationale))
        return collate([encode(s, self.processor) for s in segs], self.processor.pad_token_id)


def content_ids(tokenizer) -> torch.Tensor:
    """Ids of tokens that spell one letter or digit: the names copied into tool arguments and
    the values read off the image."""
    ids = [i for i in range(len(tokenizer)) if len(t := tokenizer.decode([i]).strip()) == 1 and t.isalnum()]
    return torch.tensor(ids, dtype=torch.long)


def completion_loss(model, batch, content: torch.Tensor | None = None, content_weight: float = 1.0) -> torch.Tensor:
    """Weighted mean next-token cross-entropy over assistant tokens; logits (B, T, V) predict
    ids[:, 1:]. Content tokens weigh `content_weight`: measured here, a 2-layer model from
    scratch copied column names from the question into calls after ~750-2500 steps (some runs
    never in 2,500) with uniform weights, and after ~250 with weight 5, because the JSON
    scaffolding around them dominated the loss."""
    logits = model(**batch.model_inputs()).logits[:, :-1]
    targets = batch.input_ids[:, 1:]
    mask = batch.completion_mask[:, 1:].float()
    if content is not None and content_weight != 1.0:
        mask = mask * torch.where(torch.isin(targets, content.to(targets.device)), content_weight, 1.0)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return (nll.view_as(mask) * mask).sum() / mask.sum().clamp(min=1)


def train_sft(
    model,
    processor: VLProcessor,
    train: list[Example],
    cfg: SFTConfig,
    run_dir: Path,
    progress: Callable[[str, int, int, dict], None] | None = None,
    on_eval: Callable[[int], dict] | None = None,
    eval_every: int = 0,
) -> None:
    """Every stage with steps (language, reading, multimodal), in place. Each stage checkpoints
    under `run_dir/<stage>` and resumes; a finished stage leaves its weights (`RunDir.done`) and is skipped on a rerun."""
    cfg = as_curriculum(cfg)
    seed_everything(cfg.seed)
    for p in model.model.visual.parameters():
        p.requires_grad_(cfg.train_vision)
    stages = [
        ("text", cfg.text_steps, cfg.text_lr),
        ("reading", cfg.reading_steps, cfg.reading_lr or cfg.lr),
        ("multimodal", cfg.steps, cfg.lr),
    ]
    for stage, steps, lr in stages:
        if steps == 0:
            continue
        stage_dir = run_dir / stage
        done = RunDir(stage_dir).done
        if done.exists():
            model.load_state_dict(torch.load(done, map_location="cpu", weights_only=True))
            continue
        _train_stage(
            model, processor, train, cfg, stage, steps, lr, stage_dir,
            (lambda s, n, row, st=stage: progress(st, s, n, row)) if progress else None,
            on_eval if stage == "multimodal" else None, eval_every,
        )  # fmt: skip
        torch.save(model.state_dict(), done)
        RunDir(stage_dir).checkpoint.unlink(missing_ok=True)


def _train_stage(
    model, processor, train, cfg: CurriculumSFTConfig, stage: str, steps: int, peak_lr: float, run_dir: Path,
    progress, on_eval, eval_every: int,
) -> None:  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=cfg.weight_decay)
    rng = random.Random(f"{cfg.seed}:{stage}")
    content = content_ids(processor.tokenizer)
    recent: list[float] = []  # the last 25 losses (reading_until_loss)
    floor = 1.0 if stage == "reading" and cfg.reading_schedule == "hold" else 0.1  # hold: no decay after warmup
    at = [0]  # steps done

    def restore_recent(state: dict) -> None:
        recent[:] = state.get("recent", [])

    start = resume(run_dir, f"SFT {stage} stage", {"model": model, "opt": opt}, rng, restore_recent)
    pool = stage_pool(stage, train, cfg)
    plans, rng_at = [], {}
    for k in range(start, steps):  # every random choice up front: workers only build batches
        plans.append(plan_step(stage, pool, rng, cfg))
        if (k + 1) % cfg.checkpoint_every == 0:
            rng_at[k + 1] = rng.getstate()
    batches = iter(torch.utils.data.DataLoader(
        _StageBatches(stage, plans, processor, cfg.rationale, cfg.reading_context), batch_size=None, shuffle=False,
        num_workers=cfg.data_workers, prefetch_factor=4 if cfg.data_workers else None,
    ))  # fmt: skip
    model.train()

    def step(k: int) -> dict[str, float]:
        t0 = time.perf_counter()
        lr = cosine_lr(k, steps, peak_lr, cfg.warmup, floor)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = next(batches).to(model.device)
        t1 = time.perf_counter()
        loss = completion_loss(model, batch, content, cfg.content_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        recent[:] = [*recent[-24:], loss.item()]
        at[0] = k + 1
        return {
            f"sft_{stage}/loss": loss.item(), f"sft_{stage}/grad_norm": float(gnorm), "optim/lr": lr,
            "time/data_s": t1 - t0, "time/step_s": time.perf_counter() - t0,
        }  # fmt: skip

    def evaluate(k: int) -> dict[str, float]:
        row = on_eval(k)
        model.train()
        return row

    def done(_: dict) -> bool:  # the reading stage ends once its loss is low enough
        below = cfg.reading_until_loss if stage == "reading" else None
        if below is None or len(recent) < 25 or sum(recent) / 25 >= below:
            return False
        log.info("%s stage: loss %.3f < %.3f after %d steps, stage done", stage, sum(recent) / 25, below, at[0])
        return True

    def snapshot(k: int) -> dict:
        return {"model": model.state_dict(), "opt": opt.state_dict(), "data_rng": rng_at[k], "recent": list(recent)}

    run_steps(
        run_dir, start, steps, step, snapshot, cfg.checkpoint_every, progress,
        evaluate if on_eval is not None else None, eval_every, stop=done,
        provenance=record(cfg, stage=f"SFT {stage}"),
    )  # fmt: skip
