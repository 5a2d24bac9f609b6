"""Can a model learn to read the answer from its images? A fine-tuning probe (research/reading/README.md).

Fine-tunes a saved model (LM only; the vision tower stays frozen) on demonstrations of chosen
question types and prints, every `--every` steps, the share of val demonstrations whose final
turn it reproduces exactly under teacher forcing. The context is the variable:

- `full`: the agent's episode (system prompt, tool spec, image, question, tool calls, every tool
  output image), as SFT sees it;
- `short`: the question and the last tool output image only (`--prefix` adds the system prompt and
  tool spec, `--two` the original image before the last one).

    python research/reading/reading_probe.py runs/quickstart/zoo/student runs/quickstart/world \
        --types value --context short --steps 400
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from iapo.data.example import Example, read_jsonl
from iapo.models.build import load
from iapo.models.tokenizer import IM_END, IM_START, IMAGE_PAD, VISION_END, VISION_START
from iapo.rollout.episode import Segment, assistant_segment, collate, encode, ex_image, prompt_segments
from iapo.supervised.sft import choose_path, completion_loss, content_ids, sft_segments
from iapo.tools.registry import run_tool
from iapo.tools.syntax import format_answer


def short_segments(ex: Example, rng: random.Random, prefix: bool, two: bool) -> list[Segment]:
    """[system + tool spec] [original image] last tool output image, question -> answer."""
    image, layout = ex_image(ex), ex.layout
    for call in choose_path(ex, rng, 0.8):
        image, layout = run_tool(image, layout, call["name"], call["arguments"])
    pad = f"{VISION_START}{IMAGE_PAD}{VISION_END}"
    segs = prompt_segments(ex)[:2] if prefix else []
    if two:
        segs.append(Segment("image", f"{IM_START}user\n{pad}{IM_END}\n", [ex_image(ex)]))
    return [
        *segs,
        Segment("image", f"{IM_START}user\n{pad}", [image]),
        Segment("question", f"{ex.question}{IM_END}\n{IM_START}assistant\n"),
        assistant_segment(format_answer(ex.answer)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("world", type=Path)
    ap.add_argument("--types", default="value", help="comma-separated world question templates, or 'all'")
    ap.add_argument("--context", choices=["full", "short"], default="full")
    ap.add_argument("--prefix", action="store_true", help="short: add the system prompt and tool spec")
    ap.add_argument("--two", action="store_true", help="short: add the original image before the last one")
    ap.add_argument("--rope-theta", type=float, default=0.0, help="replace the model's RoPE base (0: keep)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--val", type=int, default=120, help="val demonstrations scored")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="batch order (the phase change's step varies with it)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    model, proc = load(a.model)
    if a.rope_theta:
        cfg = model.config.text_config
        cfg.rope_parameters["rope_theta"] = a.rope_theta
        lm = model.model.language_model
        lm.rotary_emb = type(lm.rotary_emb)(config=cfg)
    types = set(a.types.split(","))

    def pick(split: str) -> list[Example]:
        exs = read_jsonl(a.world / f"{split}.jsonl", root=a.world)
        return [e for e in exs if "all" in types or e.meta.get("template") in types]

    train, val = pick("train"), pick("val")[: a.val]

    def demo(ex: Example, rng: random.Random) -> list[Segment]:
        if a.context == "short":
            return short_segments(ex, rng, a.prefix, a.two)
        return sft_segments(ex, rng, tools=True, shortest_share=0.8)

    @torch.no_grad()
    def exact_final_turn() -> float:
        model.eval()
        hits = 0
        for ex in val:
            enc = encode(demo(ex, random.Random(0)), proc)
            logits = model(**collate([enc], proc.pad_token_id).model_inputs()).logits[0]  # (T, V)
            last = sum(k == "assistant" for k in enc.kinds) - 1
            pos = enc.assistant_mask(only=last).nonzero().flatten()
            hits += int((logits[pos - 1].argmax(-1) == enc.input_ids[pos]).all())
        model.train()
        return hits / len(val)

    params = [p for n, p in model.named_parameters() if "visual" not in n]
    for n, p in model.named_parameters():
        p.requires_grad_("visual" not in n)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    content = content_ids(proc.tokenizer)
    rng, t0 = random.Random(a.seed), time.time()
    print(f"train {len(train)}  val {len(val)}  step 0  exact final turn {exact_final_turn():.2f}", flush=True)
    model.train()
    for step in range(1, a.steps + 1):
        batch = collate([encode(demo(ex, rng), proc) for ex in rng.sample(train, a.batch_size)], proc.pad_token_id)
        loss = completion_loss(model, batch, content, 5.0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % a.every == 0:
            acc = exact_final_turn()
            print(
                f"step {step}  loss {loss.item():.3f}  exact final turn {acc:.2f}  {time.time() - t0:.0f}s", flush=True
            )


if __name__ == "__main__":
    main()
