"""The multi-turn episode loop: prompt -> generate -> parse -> run tool -> append its image as a
new user turn -> ... -> answer or turn limit.

Generation is batched over all live episodes (`iapo.rollout.sampler`: KV cache within a turn,
each image through the vision tower once per rollout).
Every turn is recorded with its exact token ids, its parse, and the class of its tool call, so
rewards, the loss mask and the attribution all read the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from PIL import Image
from pydantic import Field

from iapo.answers import grade
from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.models.processor import VLProcessor, pad_left
from iapo.rollout.episode import (
    Segment,
    assistant_segment,
    encode,
    ex_image,
    full_text,
    prompt_segments,
    tool_output_segment,
)
from iapo.rollout.sampler import VisionCache, sample_turn
from iapo.rollout.sampler import supports as sampler_supports
from iapo.tools.session import CallClass, ToolSession
from iapo.tools.syntax import Turn, parse_turn


class RolloutConfig(StrictModel):
    max_calls: int = Field(3, ge=0, description="tool calls allowed per episode")
    max_new_tokens: int = Field(48, ge=1, description="tokens per model turn")
    temperature: float = Field(1.0, ge=0, description="sampling temperature (0 decodes greedily, as greedy does)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    greedy: bool = Field(False, description="argmax decoding (evaluation)")
    tools: bool = Field(True, description="offer the tools; False = answer directly (no-tools baseline)")
    spec_style: str = Field(
        "compact",
        pattern="^(compact|json)$",
        description="how the tool spec is written in the prompt: compact or JSON schema",
    )
    batch_size: int = Field(64, ge=1, description="episodes generated together")
    sampler: Literal["lean", "generate"] = Field(
        "lean",
        description="lean: the toolkit's decode loop (iapo.rollout.sampler; image features once per rollout); "
        "generate: transformers' model.generate (same draws, slower)",
    )


@dataclass
class TurnRecord:
    text: str  # decoded, special tokens stripped
    ids: list[int]  # exact generated ids, ending in <|im_end|> unless truncated
    turn: Turn
    call_class: CallClass | None = None
    truncated: bool = False
    decoy: bool = False  # a valid call on the distractor the question names (`ToolSession.decoy`)


@dataclass
class Episode:
    example: Example
    segments: list[Segment]
    turns: list[TurnRecord] = field(default_factory=list)
    answer: str | None = None
    done: bool = False
    tools: bool = True

    @property
    def correct(self) -> float:
        return grade(self.answer, self.example.gold, self.example.metric)

    @property
    def calls(self) -> list[TurnRecord]:
        return [t for t in self.turns if t.call_class is not None]

    @property
    def has_useful_call(self) -> bool:
        """A call the world judged useful (it kept the evidence and removed other content)."""
        return any(t.call_class == "valid_useful" for t in self.calls)

    @property
    def has_valid_call(self) -> bool:
        """A call that ran and changed the view, judged useful or not (all a benchmark without
        evidence labels can tell)."""
        return any(t.call_class in ("valid_useful", "valid_useless", "valid") for t in self.calls)

    @property
    def well_formed(self) -> bool:
        return (
            bool(self.turns)
            and all(t.turn.well_formed and not t.truncated for t in self.turns)
            and self.answer is not None
        )

    def calls_as_dicts(self) -> list[dict]:
        return [{"name": t.turn.name, "arguments": t.turn.arguments} for t in self.turns if t.turn.kind == "tool_call"]

    @property
    def key(self) -> tuple[str, str]:
        """Two episodes with one key are the same input: one question, the same text (its tool
        outputs follow from its calls). A trained policy's group repeats itself, and the work done
        on an episode (its attribution, its log-probs) is done once per key."""
        return self.example.id, full_text(self.segments)


def distinct(keys: list) -> tuple[list[int], list[int]]:
    """The first index of each distinct key, in order, and how many indices share it."""
    at: dict = {}
    for i, k in enumerate(keys):
        at.setdefault(k, []).append(i)
    return [v[0] for v in at.values()], [len(v) for v in at.values()]


def tools_apply(ex: Example) -> bool:
    """Tools need boxes from the data; without any (e.g. ChartQA without annotations) the
    episode offers no tools and the model answers directly."""
    lay = ex.layout
    return bool(lay.columns_bbox or lay.rows_bbox or lay.x_values_bbox or lay.y_values_bbox)


def new_episode(ex: Example, cfg: RolloutConfig, image: Image.Image | None = None) -> tuple[Episode, ToolSession]:
    """`image`: the example's image when already loaded (tools never modify their input, so the
    episodes of a GRPO group share one image object: its pixels and features are computed once)."""
    tools = cfg.tools and tools_apply(ex)
    segs = prompt_segments(ex, tools=tools, spec_style=cfg.spec_style, image=image)
    ev = frozenset(ex.evidence) if ex.evidence is not None else None
    decoy = frozenset(ex.meta["decoy"]["evidence"]) if "decoy" in ex.meta else None
    session = ToolSession(segs[2].images[0], ex.layout, ev, frozenset(ex.context), cfg.max_calls, decoy=decoy)
    return Episode(ex, segs, tools=tools), session


@torch.no_grad()
def generate_turn(
    model, processor: VLProcessor, episodes: list[Episode], cfg: RolloutConfig, vision: VisionCache | None = None
) -> list[tuple[list[int], bool]]:
    """One model turn for each episode: (generated ids, truncated). `vision`: the rollout's
    image features (the lean sampler: episodes with the same tokens and image objects, as a GRPO
    group's first turn, are prefilled once); None samples with transformers' `generate`."""
    expand = None
    if vision is not None:
        slot: dict[tuple, int] = {}  # episode input -> its row among the distinct inputs
        rows = [slot.setdefault(encode_key(e), len(slot)) for e in episodes]
        if len(slot) < len(episodes):
            expand = torch.tensor(rows, device=model.device)
            episodes = [episodes[rows.index(j)] for j in range(len(slot))]
    encs = [encode(e.segments, processor) for e in episodes]
    batch = pad_left([e.input_ids.tolist() for e in encs], processor.pad_token_id)
    mm = torch.zeros_like(batch["input_ids"])
    n = batch["input_ids"].shape[1]
    for i, e in enumerate(encs):
        mm[i, n - len(e) :] = e.mm_token_type_ids
    grid = [e.image_grid_thw for e in encs if e.image_grid_thw is not None]
    dev = model.device
    inputs = {**{k: v.to(dev) for k, v in batch.items()}, "mm_token_type_ids": mm.to(dev)}
    if grid:
        inputs["image_grid_thw"] = torch.cat(grid).to(dev)
    greedy = cfg.greedy or cfg.temperature == 0
    if vision is not None:
        images = [im for e in episodes for seg in e.segments for im in seg.images]
        feats = vision.features(images, [processor.pixels(im) for im in images])
        out = sample_turn(model, inputs, feats, cfg.max_new_tokens, processor.eos_token_id, processor.pad_token_id,
                          processor.suppressed_ids, greedy, cfg.temperature, cfg.top_p, expand).tolist()  # fmt: skip
    else:
        out = _generate(model, inputs, encs, processor, cfg, greedy)
    results = []
    for row in out:
        if processor.eos_token_id in row:
            results.append((row[: row.index(processor.eos_token_id) + 1], False))
        else:
            results.append(([t for t in row if t != processor.pad_token_id], True))
    return results


def encode_key(ep: Episode) -> tuple:
    """What fixes an episode's next turn input: its segments' texts, generated ids and image objects."""
    return tuple((s.text, tuple(s.ids) if s.ids is not None else None, *map(id, s.images)) for s in ep.segments)


def _generate(model, inputs: dict, encs: list, processor: VLProcessor, cfg: RolloutConfig, greedy: bool) -> list:
    """transformers' `generate` (the reference the lean sampler is tested against)."""
    pv = [e.pixel_values for e in encs if e.pixel_values is not None]
    kwargs = {
        "max_new_tokens": cfg.max_new_tokens,
        "eos_token_id": processor.eos_token_id,
        "pad_token_id": processor.pad_token_id,
        "suppress_tokens": processor.suppressed_ids,
    }
    if greedy:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
    pixel_values = torch.cat(pv).to(model.device) if pv else None
    n = inputs["input_ids"].shape[1]
    return model.generate(**inputs, pixel_values=pixel_values, **kwargs)[:, n:].tolist()


def rollout(model, processor: VLProcessor, examples: list[Example], cfg: RolloutConfig) -> list[Episode]:
    """Run one episode per example (repeat examples for a GRPO group)."""
    was_training = model.training
    model.eval()
    vision = VisionCache(model) if cfg.sampler == "lean" and sampler_supports(model) else None
    episodes = []
    for start in range(0, len(examples), cfg.batch_size):
        images: dict[int, Image.Image] = {}
        for ex in examples[start : start + cfg.batch_size]:
            if id(ex) not in images:
                images[id(ex)] = ex_image(ex)
        chunk = [new_episode(ex, cfg, images[id(ex)]) for ex in examples[start : start + cfg.batch_size]]
        for _turn in range(cfg.max_calls + 1):
            live = [(e, s) for e, s in chunk if not e.done]
            if not live:
                break
            gens = generate_turn(model, processor, [e for e, _ in live], cfg, vision)
            for (ep, sess), (ids, truncated) in zip(live, gens, strict=True):
                step_episode(ep, sess, ids, truncated, processor, cfg)
        for ep, _ in chunk:
            ep.done = True
        episodes.extend(ep for ep, _ in chunk)
    model.train(was_training)
    return episodes


def step_episode(
    ep: Episode,
    sess: ToolSession,
    ids: list[int],
    truncated: bool,
    processor: VLProcessor,
    cfg: RolloutConfig,
) -> None:
    """Append one generated turn, then run its tool call or record its answer."""
    text = processor.tokenizer.decode(ids, skip_special_tokens=False)
    text = text.removesuffix(processor.tokenizer.eos_token)
    turn = parse_turn(text)
    rec = TurnRecord(text, ids, turn, truncated=truncated)
    ep.turns.append(rec)
    seg = assistant_segment(text, ids if not truncated else [*ids, processor.eos_token_id])
    ep.segments.append(seg)
    if truncated:  # ran out of tokens mid-turn: the episode ends without an answer
        ep.done = True
        return
    if turn.kind == "answer":
        ep.answer, ep.done = turn.answer, True
        return
    if not ep.tools:
        result_cls, image, message, view = CallClass.UNKNOWN_TOOL, None, "error: no tools are available", None
    else:
        r = sess.step(turn)
        result_cls, image, message, view = r.cls, r.image, r.message, r.view
        rec.decoy = r.decoy
    rec.call_class = result_cls
    if len(ep.turns) > cfg.max_calls:  # the turn budget is spent: no answer
        ep.done = True
        return
    ep.segments.append(tool_output_segment(image, message, view))
