"""Vision pretraining: the vision tower + merger learn to read from dense per-token labels.

Every real VLM starts from a pretrained vision encoder; ours is trained here, offline, as a
linear head on each merged vision token predicting what lies under it (a glyph, a bar segment
of a series, a dot, masked, empty) and how emphasised it is (highlights / drawn boxes). Measured:
from the answer loss alone a from-scratch tower does not learn to read at all.

Images are the world's training images and the outputs of tools applied to them (random prefixes
of valid paths, and random calls), so the tower also learns what masks, highlights, boxes and
crops look like.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.models.build import ModelSpec, build_model
from iapo.models.processor import VLProcessor
from iapo.provenance import record
from iapo.steps import cosine_lr, resume, run_steps, seed_everything
from iapo.store import RunDir
from iapo.tools.registry import run_tool
from iapo.world.dataset import example_image, grid_after
from iapo.world.glyphs import EMPHASIS_CLASSES, LABELS
from iapo.world.paths import candidate_calls

log = logging.getLogger(__name__)


class PretrainConfig(StrictModel):
    steps: int = Field(600, ge=0, description="vision pretraining steps")
    batch_images: int = Field(32, ge=1, description="images per step")
    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    warmup: int = Field(30, ge=0, description="linear warmup steps")
    weight_decay: float = Field(0.01, description="AdamW weight decay")
    tool_output_share: float = Field(0.6, ge=0, le=1, description="share of images that are tool outputs")
    eval_every: int = Field(100, ge=1, description="steps between held-out evaluations")
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints")
    seed: int = Field(0, description="data order and initialisation")


class TokenHeads(nn.Module):
    """Linear probes on merged vision tokens: content label and emphasis level."""

    def __init__(self, hidden: int):
        super().__init__()
        self.content = nn.Linear(hidden, len(LABELS))
        self.emphasis = nn.Linear(hidden, EMPHASIS_CLASSES)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.content(feats), self.emphasis(feats)


@dataclass
class LabelledImages:
    pixel_values: torch.Tensor  # (n_patches, C*T*P*P)
    grid_thw: torch.Tensor  # (n_images, 3)
    content: torch.Tensor  # (n_tokens,) label id per merged token, images concatenated
    emphasis: torch.Tensor  # (n_tokens,)

    def to(self, device: torch.device | str) -> LabelledImages:
        return LabelledImages(*(t.to(device) for t in (self.pixel_values, self.grid_thw, self.content, self.emphasis)))


def sample_image(ex: Example, rng: random.Random, tool_share: float):  # -> (PIL image, TokenGrid)
    """The example's image, or a tool output along a random valid path or after a random call."""
    image, layout = example_image(ex), ex.layout
    if rng.random() >= tool_share:
        return image, grid_after(ex, [])[-1]
    if rng.random() < 0.7 and ex.valid_paths:
        path = rng.choice(ex.valid_paths)
        calls = path[: rng.randint(1, len(path))]
    else:  # a call on some other unit: useless calls look like this
        units = list(layout.units())
        calls = [rng.choice(candidate_calls(layout, rng.sample(units, rng.randint(1, min(3, len(units))))))]
    for c in calls:
        image, layout = run_tool(image, layout, c["name"], c["arguments"])
    return image, grid_after(ex, calls)[-1]


def make_batch(
    exs: list[Example], processor: VLProcessor, rng: random.Random, n: int, tool_share: float
) -> LabelledImages:
    images, content, emphasis = [], [], []
    for ex in rng.sample(exs, n):
        im, g = sample_image(ex, rng, tool_share)
        images.append(im)
        content.append(torch.from_numpy(g.label_ids()).flatten())  # merged tokens, row-major
        emphasis.append(torch.from_numpy(g.emphasis_ids()).flatten())
    pv, grid = processor.images(images)
    assert sum(processor.n_image_tokens(grid)) == sum(len(c) for c in content), "image was resized"
    return LabelledImages(pv, grid, torch.cat(content), torch.cat(emphasis))


def vision_forward(model, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    """(n_tokens, hidden) merged vision features, the same ones the LM sees."""
    return torch.cat(model.model.get_image_features(pixel_values, grid_thw).pooler_output)


@torch.no_grad()
def evaluate_reading(model, heads: TokenHeads, batch: LabelledImages) -> dict[str, float]:
    c_logits, e_logits = heads(vision_forward(model, batch.pixel_values, batch.grid_thw))
    c_pred, e_pred = c_logits.argmax(-1), e_logits.argmax(-1)
    glyph = torch.tensor([len(LABELS[i]) == 1 and LABELS[i] not in ".#" for i in batch.content.tolist()]).to(
        c_pred.device
    )
    return {
        "vision/content_acc": (c_pred == batch.content).float().mean().item(),
        "vision/glyph_acc": (c_pred == batch.content)[glyph].float().mean().item(),
        "vision/emphasis_acc": (e_pred == batch.emphasis).float().mean().item(),
    }


def pretrain_vision(
    train: list[Example],
    val: list[Example],
    spec: ModelSpec,
    processor: VLProcessor,
    cfg: PretrainConfig,
    run_dir: Path,
    progress: Callable[[int, int, dict], None] | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Train the vision tower of a `spec` model; writes `vision.pt` (tower + merger weights)."""
    seed_everything(cfg.seed)
    model = build_model(spec, processor, seed=cfg.seed).to(device)
    heads = TokenHeads(spec.hidden).to(device)
    params = [*model.model.visual.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)

    start = resume(run_dir, "vision pretraining", {"visual": model.model.visual, "heads": heads, "opt": opt}, rng)
    val_batch = make_batch(val, processor, random.Random(1234), min(64, len(val)), cfg.tool_output_share).to(device)
    model.train()
    last: dict[str, float] = {}

    def step(k: int) -> dict[str, float]:
        t0 = time.perf_counter()
        lr = cosine_lr(k, cfg.steps, cfg.lr, cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        b = make_batch(train, processor, rng, cfg.batch_images, cfg.tool_output_share).to(device)
        c_logits, e_logits = heads(vision_forward(model, b.pixel_values, b.grid_thw))
        loss = F.cross_entropy(c_logits, b.content) + F.cross_entropy(e_logits, b.emphasis)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        last["vision/loss"] = loss.item()
        return {"vision/loss": loss.item(), "optim/lr": lr, "time/step_s": time.perf_counter() - t0}

    def evaluate(_: int) -> dict[str, float]:  # the returned dict: the last evaluated step's
        last.update(evaluate_reading(model, heads, val_batch))
        return {k: v for k, v in last.items() if k != "vision/loss"}

    def snapshot(_: int) -> dict:
        return {"visual": model.model.visual.state_dict(), "heads": heads.state_dict(), "opt": opt.state_dict(),
                "data_rng": rng.getstate()}  # fmt: skip

    run_steps(
        run_dir, start, cfg.steps, step, snapshot, cfg.checkpoint_every, progress, evaluate, cfg.eval_every,
        provenance=record(cfg, stage="vision pretraining", spec=spec.model_dump(mode="json")),
    )  # fmt: skip
    visual = {k: v.cpu() for k, v in model.model.visual.state_dict().items()}
    torch.save({"spec": spec.model_dump(), "visual": visual}, RunDir(run_dir).vision_weights)
    RunDir(run_dir).checkpoint.unlink(missing_ok=True)
    return {k: v for k, v in last.items() if k.startswith("vision/")}


def load_vision(model, path: Path) -> None:
    """Copy pretrained tower + merger weights into a model with the same vision config."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.model.visual.load_state_dict(state["visual"])
