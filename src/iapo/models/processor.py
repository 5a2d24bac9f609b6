"""A thin Qwen2.5-VL processor that works without torchvision.

`Qwen2_5_VLProcessor` cannot be built here (its video processor needs torchvision, which would
pull a 5.5 GB CUDA torch). This processor is what it does for images: the slow
`Qwen2VLImageProcessorPil` + the tokenizer + expanding each `<|image_pad|>` into
`grid_thw.prod() // merge**2` tokens, and it returns `mm_token_type_ids` (without them the model
silently falls back to 1-D RoPE). It loads a tiny model's directory and a real Qwen2.5-VL
checkpoint directory alike.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from iapo.errors import DataError
from iapo.models.tokenizer import IM_START, IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START


class PerObject:
    """Values kept per live object, by identity (PIL images are unhashable and equal-by-pixels
    images are different inputs to a tool session): an entry goes when its object is collected."""

    def __init__(self) -> None:
        self._d: dict[int, tuple[weakref.ref, Any]] = {}

    def get(self, obj: object) -> Any:
        hit = self._d.get(id(obj))
        return hit[1] if hit is not None and hit[0]() is obj else None

    def put(self, obj: object, value: Any) -> Any:
        self._d[id(obj)] = (weakref.ref(obj), value)
        weakref.finalize(obj, self._d.pop, id(obj), None)
        return value


class VLProcessor:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, image_processor: Qwen2VLImageProcessorPil):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.merge = int(image_processor.merge_size)
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(IMAGE_PAD))
        # tokens a model turn must never emit: they would open an image or a new message
        self.suppressed_ids = sorted(
            {
                int(tokenizer.convert_tokens_to_ids(t))
                for t in (IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END, IM_START)
            }
            | {int(tokenizer.pad_token_id)}
        )
        self.pad_token_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.eos_token_id = int(tokenizer.eos_token_id)
        self._pixels = PerObject()

    @classmethod
    def from_pretrained(cls, path: str | Path) -> VLProcessor:
        path = Path(path)
        if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
            raise DataError(f"{path}: no tokenizer files (tokenizer.json) in this model directory")
        tok = AutoTokenizer.from_pretrained(path)
        ip = Qwen2VLImageProcessorPil.from_pretrained(path)
        return cls(tok, ip)

    def save_pretrained(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(path)
        self.image_processor.save_pretrained(path)

    def images(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """pixel_values (sum of patches, C*T*P*P) and image_grid_thw (n_images, 3)."""
        pixels = [self.pixels(im) for im in images]
        return torch.cat([p for p, _ in pixels]), torch.cat([g for _, g in pixels])

    def pixels(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """One image's (pixel_values, image_grid_thw), computed once per image object: an
        episode's images are encoded at every turn, in the update and in the attribution passes,
        and the image processor (PIL resize, normalise, patchify) works one image at a time
        anyway, so the cached result is the batched one. Entries go with their images."""
        hit = self._pixels.get(image)
        if hit is None:
            out = self.image_processor(images=[image], return_tensors="pt")
            hit = self._pixels.put(image, (out["pixel_values"], out["image_grid_thw"]))
        return hit

    def n_image_tokens(self, grid_thw: torch.Tensor) -> list[int]:
        return (grid_thw.prod(-1) // self.merge**2).tolist()

    def encode_text(self, text: str, n_image_tokens: list[int]) -> list[int]:
        """Token ids of `text`, each `<|image_pad|>` expanded to its image's token count."""
        parts = text.split(IMAGE_PAD)
        if len(parts) - 1 != len(n_image_tokens):
            raise ValueError(f"{len(parts) - 1} image placeholders for {len(n_image_tokens)} images")
        ids: list[int] = []
        for i, part in enumerate(parts):
            if part:
                ids.extend(self.tokenizer.encode(part, add_special_tokens=False))
            if i < len(n_image_tokens):
                ids.extend([self.image_token_id] * n_image_tokens[i])
        return ids

    def __call__(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, torch.Tensor]:
        """Batch encoding as the HF Qwen2.5-VL processor returns it (left padded)."""
        flat = [im for ims in images for im in ims]
        pixel_values, grid = self.images(flat) if flat else (None, None)
        counts = self.n_image_tokens(grid) if grid is not None else []
        seqs, k = [], 0
        for text, ims in zip(texts, images, strict=True):
            seqs.append(self.encode_text(text, counts[k : k + len(ims)]))
            k += len(ims)
        batch = pad_left(seqs, self.pad_token_id)
        batch["mm_token_type_ids"] = (batch["input_ids"] == self.image_token_id).long() * batch["attention_mask"]
        if pixel_values is not None:
            batch["pixel_values"], batch["image_grid_thw"] = pixel_values, grid
        return batch


def pad_left(seqs: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, n - len(s) :] = torch.tensor(s)
            mask[i, n - len(s) :] = 1
    return {"input_ids": ids, "attention_mask": mask}
