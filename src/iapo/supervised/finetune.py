"""SFT of any checkpoint (e.g. Qwen2.5-VL-3B-Instruct) on benchmark training files, such as
ReFocus's chartqa_vcot: the same demonstrations and loss as the world's SFT (`train.sft`), with
the rows' reference tool paths (ReFocus focus areas) as the demonstrated calls. One process, on
the configured device; resumable like every stage."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from iapo.config import StrictModel
from iapo.data.benchmarks import BenchmarkSource, DataConfig
from iapo.models.build import load, save
from iapo.store import RunDir
from iapo.supervised.sft import SFTConfig, train_sft


class FinetuneConfig(StrictModel):
    student: str = Field(description="checkpoint directory to fine-tune")
    dtype: str = Field("float32", pattern="^(float32|bfloat16)$", description="parameter dtype")
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$", description="auto: cuda when available")
    data: DataConfig = Field(description="benchmark splits to fine-tune on (train) and validate with (val)")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="SFT settings")


def finetune(cfg: FinetuneConfig, out: Path, progress=None) -> Path:
    """SFT `cfg.student` on the `train` split of `cfg.data`; the result goes to `out/policy`."""
    device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    model, processor = load(cfg.student, dtype=getattr(torch, cfg.dtype))
    model.to(device)
    train = BenchmarkSource(cfg.data).load("train")
    if len(train) < cfg.sft.batch_size:
        raise ValueError(f"train split has {len(train)} examples, fewer than batch_size {cfg.sft.batch_size}")
    train_sft(model, processor, train, cfg.sft, out, progress)
    return save(model, processor, RunDir(out).policy, {"sft": cfg.sft.model_dump(), "student": cfg.student})
