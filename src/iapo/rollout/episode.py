"""An episode as labelled segments, and its exact tokenization.

The prompt builder is where the input components are decided (docs/method.md): every token of an
episode belongs to exactly one segment, and every segment to one component:

    system       <|im_start|>system\\n{instructions}\\n\\n# Tools\\n
    tool_spec    {tool signatures}<|im_end|>\\n
    image        <|im_start|>user\\n<|vision_start|><|image_pad|>...<|vision_end|>
    question     {question}<|im_end|>\\n<|im_start|>assistant\\n
    assistant    {generated turn}<|im_end|>          (the policy's own tokens)
    tool_output  \\n<|im_start|>user\\n<tool_response>{image or error}</tool_response><|im_end|>\\n<|im_start|>assistant\\n

Chat-template scaffolding belongs to the segment it opens or closes. An assistant segment is
the generated `target` when it is the turn being scored, and `history` when an earlier turn.
Segments are tokenized one by one (generated ids are kept verbatim), so the spans are exact for
any tokenizer; a test checks them against tokenizing the whole text at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from PIL import Image

from iapo.data.example import Example
from iapo.models.processor import VLProcessor
from iapo.models.tokenizer import IM_END, IM_START, IMAGE_PAD, VISION_END, VISION_START
from iapo.tools.layout import View
from iapo.tools.registry import render_tool_spec

COMPONENTS = ("system", "tool_spec", "question", "image", "tool_output", "history")
Component = Literal["system", "tool_spec", "question", "image", "tool_output", "history"]
SegmentKind = Literal["system", "tool_spec", "image", "question", "assistant", "tool_output"]

SYSTEM_PROMPT = (
    "Answer the question about the image. A tool call returns the edited image. "
    "Reply with one tool call or with <answer>...</answer>."
)
NO_TOOLS = "none"


@dataclass
class Segment:
    kind: SegmentKind
    text: str  # one IMAGE_PAD placeholder per entry of `images`
    images: list[Image.Image] = field(default_factory=list)
    ids: list[int] | None = None  # the policy's exact generated ids (assistant segments)
    views: list[View] | None = None  # per image: which part of the original it shows (None: unknown)


def prompt_segments(
    ex: Example, tools: bool = True, spec_style: str = "compact", image: Image.Image | None = None
) -> list[Segment]:
    """The first turn's input: system, tool spec, image, question (ending in the generation prompt).
    `image`: the example's image if already loaded."""
    spec = render_tool_spec(ex.layout.kind, ex.layout, spec_style) if tools else NO_TOOLS  # type: ignore[arg-type]
    image = image if image is not None else ex_image(ex)
    return [
        Segment("system", f"{IM_START}system\n{SYSTEM_PROMPT}\n\n# Tools\n"),
        Segment("tool_spec", f"{spec}{IM_END}\n"),
        Segment("image", f"{IM_START}user\n{VISION_START}{IMAGE_PAD}{VISION_END}", [image], views=[View()]),
        Segment("question", f"{ex.question}{IM_END}\n{IM_START}assistant\n"),
    ]


def ex_image(ex: Example) -> Image.Image:
    from iapo.world.dataset import example_image  # world images can be re-rendered from their grid

    return example_image(ex)


def assistant_segment(text: str, ids: list[int] | None = None) -> Segment:
    """A model turn; `text` excludes the closing <|im_end|>, which is appended."""
    return Segment("assistant", text + IM_END, ids=ids)


def tool_output_segment(image: Image.Image | None, message: str, view: View | None = None) -> Segment:
    body = f"{VISION_START}{IMAGE_PAD}{VISION_END}" if image is not None else message
    return Segment(
        "tool_output",
        f"\n{IM_START}user\n<tool_response>{body}</tool_response>{IM_END}\n{IM_START}assistant\n",
        [image] if image is not None else [],
        views=[view] if image is not None and view is not None else None,
    )


@dataclass
class Encoded:
    """One episode, tokenized. Shapes: input_ids / mm_token_type_ids (T,), pixel_values
    (n_patches, C*T*P*P), image_grid_thw (n_images, 3); spans[i] = (start, end) of segment i."""

    input_ids: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    spans: list[tuple[int, int]]
    kinds: list[SegmentKind]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def assistant_mask(self, only: int | None = None) -> torch.Tensor:
        """(T,) 1 on the policy's own tokens (all assistant turns, or the `only`-th one)."""
        m = torch.zeros(len(self), dtype=torch.long)
        k = -1
        for (s, e), kind in zip(self.spans, self.kinds, strict=True):
            if kind == "assistant":
                k += 1
                if only is None or k == only:
                    m[s:e] = 1
        return m

    def component_ids(self, target_turn: int) -> torch.Tensor:
        """(T,) index into COMPONENTS for every input token before the target turn; -1 on the
        target turn's own tokens and on everything after it."""
        comp = torch.full((len(self),), -1, dtype=torch.long)
        k = -1
        for (s, e), kind in zip(self.spans, self.kinds, strict=True):
            if kind == "assistant":
                k += 1
                if k >= target_turn:
                    break
                comp[s:e] = COMPONENTS.index("history")
            else:
                comp[s:e] = COMPONENTS.index(kind)  # segment kinds and component names coincide
        return comp


def encode(segments: list[Segment], processor: VLProcessor, keep_ids: bool = True) -> Encoded:
    """Tokenize segment by segment. `keep_ids=False` re-tokenizes generated text (a teacher with
    a different tokenizer scoring the student's rollout)."""
    images = [im for s in segments for im in s.images]
    pixel_values, grid = processor.images(images) if images else (None, None)
    counts = processor.n_image_tokens(grid) if grid is not None else []
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    k = 0
    for seg in segments:
        start = len(ids)
        if seg.ids is not None and keep_ids:
            ids.extend(seg.ids)
        else:
            ids.extend(processor.encode_text(seg.text, counts[k : k + len(seg.images)]))
        k += len(seg.images)
        spans.append((start, len(ids)))
    input_ids = torch.tensor(ids, dtype=torch.long)
    return Encoded(
        input_ids=input_ids,
        mm_token_type_ids=(input_ids == processor.image_token_id).long(),
        pixel_values=pixel_values,
        image_grid_thw=grid,
        spans=spans,
        kinds=[s.kind for s in segments],
    )


def full_text(segments: list[Segment]) -> str:
    return "".join(s.text for s in segments)


@dataclass
class Batch:
    """Right-padded batch for teacher-forced passes (loss, logprobs, attribution).

    input_ids, attention_mask, mm_token_type_ids, completion_mask: (B, T); pixel_values and
    image_grid_thw concatenate every image of the batch in order."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    completion_mask: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on `device` (the model's), pixel values included."""

        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Batch(*(mv(getattr(self, f)) for f in self.__dataclass_fields__))

    def model_inputs(self) -> dict[str, torch.Tensor]:
        d = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "mm_token_type_ids": self.mm_token_type_ids,
        }
        if self.pixel_values is not None:
            d["pixel_values"], d["image_grid_thw"] = self.pixel_values, self.image_grid_thw
        return d


def collate(encs: list[Encoded], pad_id: int, masks: list[torch.Tensor] | None = None) -> Batch:
    """Right-pad episodes into one batch; `masks` (T_i,) default to every assistant token."""
    B, T = len(encs), max(len(e) for e in encs)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attn = torch.zeros((B, T), dtype=torch.long)
    mm = torch.zeros((B, T), dtype=torch.long)
    cm = torch.zeros((B, T), dtype=torch.long)
    for i, e in enumerate(encs):
        n = len(e)
        input_ids[i, :n], attn[i, :n], mm[i, :n] = e.input_ids, 1, e.mm_token_type_ids
        cm[i, :n] = masks[i] if masks is not None else e.assistant_mask()
    pvs = [e.pixel_values for e in encs if e.pixel_values is not None]
    grids = [e.image_grid_thw for e in encs if e.image_grid_thw is not None]
    return Batch(input_ids, attn, mm, cm, torch.cat(pvs) if pvs else None, torch.cat(grids) if grids else None)
