"""A local chat model as the CharXiv grader (the official grader is GPT-4o, out of reach here).

It lives in eval, not in `iapo.answers`, because it loads a model: the metrics themselves are
plain rules that the data and rollout stages use."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from iapo.models.build import load


class ChatModelJudge:
    """Any local chat model directory as the grader (the official one is GPT-4o): it reads the
    question, gold answer and response and replies 0 or 1. A reply with neither scores 0 and is
    counted in `unparsed`."""

    def __init__(self, model_dir: Path, max_new_tokens: int = 4) -> None:
        self.model, self.processor = load(model_dir)
        self.model.eval()
        self.name = str(model_dir)
        self.max_new_tokens = max_new_tokens
        self.unparsed = 0

    def prompt(self, question: str, gold: str, response: str, rubric: str) -> str:
        return (
            f"Grade a response to a chart question (rubric: {rubric}). Reply 1 if its final answer "
            f"equals the ground truth, else 0.\nQuestion: {question}\nGround truth: {gold}\n"
            f"Response: {response}\nScore:"
        )

    def __call__(self, question: str, gold: str, response: str, rubric: str) -> float:
        tok = self.processor.tokenizer
        msgs = [{"role": "user", "content": self.prompt(question, gold, response, rubric)}]
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False)
        reply = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        m = re.search(r"[01]", reply)
        if m is None:
            self.unparsed += 1
            return 0.0
        return float(m.group(0))
