"""Tiny Qwen2.5-VL models built from configs, saved and loaded as ordinary checkpoint directories.

Every model is transformers' `Qwen2_5_VLForConditionalGeneration`; nothing here is a custom VLM.
The rest of the project only ever calls `load(dir)`, so a real Qwen2.5-VL-3B-Instruct directory
is a drop-in replacement for the tiny ones.
"""

from __future__ import annotations

import json
import logging
import types
from pathlib import Path

import torch
from pydantic import Field, model_validator
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.utils import logging as hf_logging

from iapo.config import StrictModel
from iapo.errors import DataError
from iapo.models.processor import VLProcessor
from iapo.models.tokenizer import IM_END, IMAGE_PAD, PAD, VIDEO_PAD, VISION_END, VISION_START

log = logging.getLogger(__name__)
# tiny checkpoints load in milliseconds: transformers' per-load progress bars would only flood
# the toolkit's own progress display
hf_logging.disable_progress_bar()
META = "iapo.json"  # what the toolkit knows about a model it built (spec, training stage)


class ModelSpec(StrictModel):
    """Size of one tiny model. Text hidden sizes must match for a shared vision tower."""

    hidden: int = Field(128, ge=16, description="text hidden size (= vision merger output)")
    layers: int = Field(2, ge=1, description="text decoder layers")
    heads: int = Field(4, ge=1, description="attention heads (head dim = hidden / heads)")
    intermediate: int = Field(384, ge=16, description="text MLP width")
    vision_hidden: int = Field(64, ge=16, description="vision tower width")
    vision_depth: int = Field(2, ge=1, description="vision tower blocks")
    vision_heads: int = Field(2, ge=1, description="vision tower attention heads")
    max_image_tokens: int = Field(128, ge=4, description="images larger than this many merged tokens are downscaled")
    rope_theta: float = Field(
        10000.0,
        gt=0,
        description="RoPE base (at 1e4 a 32-dim head's width section turns < 0.004 rad per position; research/reading/README.md)",
    )

    @model_validator(mode="after")
    def _dims(self) -> ModelSpec:
        if self.hidden % self.heads or (self.hidden // self.heads) % 8:
            raise ValueError("hidden / heads must be a multiple of 8 (mrope sections)")
        if self.vision_hidden % self.vision_heads:
            raise ValueError("vision_hidden must be divisible by vision_heads")
        return self


def mrope_section(head_dim: int) -> list[int]:
    """Split of the rotary half-dimension into (temporal, height, width), in Qwen's 1:1.5:1.5."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def build_config(spec: ModelSpec, processor: VLProcessor) -> Qwen2_5_VLConfig:
    tok = processor.tokenizer
    ids = {name: int(tok.convert_tokens_to_ids(t)) for name, t in [
        ("image", IMAGE_PAD), ("video", VIDEO_PAD), ("vstart", VISION_START), ("vend", VISION_END),
        ("eos", IM_END), ("pad", PAD),
    ]}  # fmt: skip
    vocab = len(tok)
    # bos/eos/pad go in text_config too, or transformers warns that Qwen's default ids
    # (151643/151645) lie outside the vocabulary (measured with transformers 5).
    common = {"bos_token_id": ids["pad"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"]}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab,
            "hidden_size": spec.hidden,
            "intermediate_size": spec.intermediate,
            "num_hidden_layers": spec.layers,
            "num_attention_heads": spec.heads,
            "num_key_value_heads": spec.heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": spec.rope_theta,
                "mrope_section": mrope_section(spec.hidden // spec.heads),
            },
            "tie_word_embeddings": True,
            **common,
        },
        vision_config={
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden,
            "intermediate_size": 2 * spec.vision_hidden,
            "num_heads": spec.vision_heads,
            "out_hidden_size": spec.hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            # world images are at most ~11x7 merged tokens: full attention in every block
            "fullatt_block_indexes": list(range(spec.vision_depth)),
        },
        image_token_id=ids["image"],
        video_token_id=ids["video"],
        vision_start_token_id=ids["vstart"],
        vision_end_token_id=ids["vend"],
        tie_word_embeddings=True,
        **common,
    )


def make_processor(tokenizer, spec: ModelSpec) -> VLProcessor:
    ip = Qwen2VLImageProcessorPil(
        min_pixels=28 * 28,
        max_pixels=28 * 28 * spec.max_image_tokens,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )
    return VLProcessor(tokenizer, ip)


def _patch_embed_as_matmul(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """Qwen2.5-VL's patch embedding is a Conv3d whose kernel equals its stride over one patch:
    a matrix product of the flattened patch (C, T, P, P) with the flattened kernel. CPU Conv3d
    runs it 2-4x slower forward and backward; same weights, rounding differs by ~1e-5."""
    w = self.proj.weight  # (E, C, T, P, P)
    return torch.nn.functional.linear(hidden_states.to(w.dtype).view(-1, w[0].numel()), w.view(w.shape[0], -1))


def fast_patch_embed(model: Qwen2_5_VLForConditionalGeneration) -> Qwen2_5_VLForConditionalGeneration:
    """Run the vision patch embedding as the matrix product it is (`_patch_embed_as_matmul`).
    RL applies it (`iapo.run`, the reward models); the zoo is built without it, so a zoo seed
    gives the same models (and the same acceptance) as before."""
    pe = model.model.visual.patch_embed
    pe.forward = types.MethodType(_patch_embed_as_matmul, pe)
    return model


def image_features(model, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    """The merged-token features (sum of tokens, D) of a batch's images, in order, each distinct
    image through the vision tower once: the rows of a GRPO group repeat their question's image
    and often the same tool output. The tower attends within an image only, so an image's
    features do not depend on its batch (up to the rounding of other matrix shapes)."""
    sizes = grid_thw.prod(-1).tolist()
    chunks = pixel_values.split(sizes)
    first: list[int] = []  # index of the first copy of each distinct image
    where = []
    for i, c in enumerate(chunks):
        j = next((k for k, f in enumerate(first) if torch.equal(chunks[f], c)), None)  # False on other shapes
        if j is None:
            j = len(first)
            first.append(i)
        where.append(j)
    if len(first) == len(chunks):
        return torch.cat(model.model.get_image_features(pixel_values, grid_thw).pooler_output)
    out = model.model.get_image_features(torch.cat([chunks[i] for i in first]), grid_thw[first]).pooler_output
    return torch.cat([out[j] for j in where])


def build_model(spec: ModelSpec, processor: VLProcessor, seed: int = 0) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(build_config(spec, processor))
    model.generation_config.pad_token_id = processor.pad_token_id
    model.generation_config.eos_token_id = processor.eos_token_id
    model.generation_config.bos_token_id = processor.pad_token_id
    return model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save(model, processor: VLProcessor, path: str | Path, meta: dict | None = None) -> Path:
    """`save_pretrained` model + processor, plus `iapo.json` with what the toolkit knows."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    (path / META).write_text(json.dumps(meta or {}, indent=2))
    return path


def load(
    path: str | Path, dtype: torch.dtype = torch.float32
) -> tuple[Qwen2_5_VLForConditionalGeneration, VLProcessor]:
    """Any Qwen2.5-VL checkpoint directory: a tiny saved model or a real one."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise DataError(f"{path}: not a model directory (no config.json)")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=dtype)
    model.eval()
    return model, VLProcessor.from_pretrained(path)


def load_meta(path: str | Path) -> dict:
    p = Path(path) / META
    return json.loads(p.read_text()) if p.exists() else {}
