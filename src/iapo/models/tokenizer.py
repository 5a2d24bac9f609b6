"""A byte-level BPE tokenizer trained offline on the world's text, with Qwen2.5's special tokens.

No tokenizer can be downloaded here, so tiny models get one trained with `tokenizers` on the
world's prompts, questions, tool calls and answers. It is saved as a standard
`tokenizer.json`, loaded with `AutoTokenizer.from_pretrained(dir)` exactly like a real
Qwen2.5-VL checkpoint's tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
SPECIAL_TOKENS = [
    PAD, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD,
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<answer>", "</answer>",
]  # fmt: skip

# A list argument's opening, `"columns": ["`, is one pre-token, so BPE makes it one token. A tiny
# model trained from scratch then knows at that single token which kind of name to copy from
# the question next; when `"columns"`, `":` and ` ["` were three tokens it took thousands of steps
# to learn to copy column names at all (measured, issue 5), while row names came in ~750.
ARG_OPENER = r' ?\{?"(?:rows|columns|x_values|y_values|values)": \["'
# Identifiers keep their underscores (one pre-token per tool name, so BPE can merge it whole);
# digits stay single, so numbers are spelled out digit by digit.
SPLIT_IDENTIFIERS = ARG_OPENER + r"| ?[A-Za-z_]+| ?[0-9]| ?[^\sA-Za-z0-9_]+|\s+"
# A second, GPT-2-like split (words without underscores): the different-tokenizer teacher uses it.
SPLIT_WORDS = ARG_OPENER + r"| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+"

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 600, split: str = SPLIT_IDENTIFIERS
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; every byte is in the base alphabet, so unseen text
    (OOD header letters, user input) still tokenizes."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        extra_special_tokens=SPECIAL_TOKENS,
        chat_template=CHAT_TEMPLATE,
    )
    fast.padding_side = "left"  # generation pads on the left
    return fast
