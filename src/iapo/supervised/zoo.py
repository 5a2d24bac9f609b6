"""The model zoo of the embedded default: tokenizers, a shared vision tower, and the SFT'd
teacher, student, weaker teacher and different-tokenizer teacher, each saved as an ordinary
checkpoint directory.

    tokenizers/{main,alt}/      BPE tokenizers trained on the world's text
    and the rest of a zoo's layout (`iapo.store.ZooDir`): the pretrained vision tower per width, the
    SFT stages per role (resumable), the final model per role, zoo.json (sizes, budgets and val
    accuracy of every role).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator
from transformers import AutoTokenizer

from iapo.config import StrictModel
from iapo.data.example import Example
from iapo.models.build import ModelSpec, build_model, load, make_processor, n_params, save
from iapo.models.tokenizer import SPLIT_IDENTIFIERS, SPLIT_WORDS, train_tokenizer
from iapo.provenance import record
from iapo.rollout.loop import RolloutConfig, rollout
from iapo.rollout.summary import summarize
from iapo.steps import OnProgress, seed_everything, set_threads
from iapo.store import RunDir, ZooDir
from iapo.supervised.corpus import world_texts
from iapo.supervised.pretrain import PretrainConfig, load_vision, pretrain_vision
from iapo.supervised.sft import CurriculumSFTConfig, train_sft
from iapo.world.dataset import World

log = logging.getLogger(__name__)


class TokenizerConfig(StrictModel):
    """The one description of a zoo tokenizer (a role names `main` or `alt`; a model's vocabulary
    is its tokenizer's length)."""

    vocab_size: int = Field(600, ge=300, description="BPE vocabulary (incl. 256 bytes + specials)")
    split: Literal["identifiers", "words"] = Field("identifiers", description="BPE pre-tokenizer split")


class ZooSFTConfig(CurriculumSFTConfig):
    """The curriculum of the tiny models trained from scratch here: a language stage that teaches
    copying names from the question into calls, a high learning rate, and content tokens (single
    letters / digits) weighted 5x in the loss (measured: a 2-layer model then copies a column name
    after ~250 steps instead of 750-2,500+). The reading stage and demonstrator knobs
    (`reading_*`, `direct_share`, `rationale`) are set per role in the zoo configs."""

    text_steps: int = Field(1200, ge=0, description="language stage: short text-only episodes")
    batch_size: int = Field(32, ge=1, description="episodes per step")
    lr: float = Field(2e-3, gt=0, description="peak learning rate of the reading and multimodal stages")
    content_weight: float = Field(5.0, ge=1, description="loss weight of content tokens")


class RoleConfig(StrictModel):
    spec: ModelSpec = Field(default_factory=ModelSpec, description="the model's size")
    sft: ZooSFTConfig = Field(default_factory=ZooSFTConfig, description="its SFT curriculum")
    tokenizer: Literal["main", "alt"] = Field("main", description="which of the zoo's tokenizers it uses")
    vision_pretraining: bool = Field(True, description="start from the pretrained vision tower")
    init_from: str | None = Field(
        None,
        description="start from another role's final weights (same spec and tokenizer): a teacher that is the "
        "student trained longer costs only its extra steps",
    )


def _default_roles() -> dict[str, RoleConfig]:
    """The tiny zoo (configs/models.yaml is this, written out; a test keeps the two equal)."""
    teacher = ModelSpec(layers=4, intermediate=512)
    return {
        "teacher": RoleConfig(spec=teacher, sft=ZooSFTConfig(text_steps=600, steps=1500, batch_size=16)),
        "student": RoleConfig(spec=ModelSpec(layers=2), sft=ZooSFTConfig(text_steps=600, steps=400, batch_size=16)),
        "weak_teacher": RoleConfig(
            spec=ModelSpec(layers=1), sft=ZooSFTConfig(text_steps=300, steps=200, batch_size=16)
        ),
        "teacher_alt": RoleConfig(
            spec=teacher, sft=ZooSFTConfig(text_steps=600, steps=1500, batch_size=16), tokenizer="alt"
        ),
    }


class ZooConfig(StrictModel):
    seed: int = Field(0, description="the zoo's seed (ZooConfig.with_seed offsets every role's and the pretraining's)")
    tokenizer: TokenizerConfig = Field(
        default_factory=TokenizerConfig, description="the main tokenizer (BPE on the world's text)"
    )
    alt_tokenizer: TokenizerConfig = Field(
        default_factory=lambda: TokenizerConfig(vocab_size=400, split="words"),
        description="a second tokenizer (a teacher with another vocabulary)",
    )
    pretrain: PretrainConfig = Field(
        default_factory=lambda: PretrainConfig(steps=300),
        description="vision pretraining shared by every role of one width",
    )
    roles: dict[str, RoleConfig] = Field(default_factory=_default_roles, description="role name -> its model and SFT")
    eval_examples: int = Field(200, ge=1, description="val examples for the accuracy printed during SFT")
    eval_every: int = Field(250, ge=0, description="greedy val evaluation every N multimodal steps (0 = end only)")
    threads: int | None = Field(
        None, ge=1, description="torch threads for pretraining and SFT (default: torch's choice)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "cpu", description="where pretraining and SFT run (auto: cuda if any)"
    )

    def with_seed(self, seed: int) -> ZooConfig:
        """The same zoo recipe under another seed: model initialisation, vision pretraining and
        every role's SFT data order move together (seed = this config's seed leaves it as is)."""
        k = seed - self.seed
        roles = {n: r.model_copy(update={"sft": r.sft.model_copy(update={"seed": r.sft.seed + k})})
                 for n, r in self.roles.items()}  # fmt: skip
        pretrain = self.pretrain.model_copy(update={"seed": self.pretrain.seed + k})
        return self.model_copy(update={"seed": seed, "roles": roles, "pretrain": pretrain})

    def torch_device(self) -> str:
        return "cuda" if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()) else "cpu"

    @model_validator(mode="after")
    def _roles(self) -> ZooConfig:
        if not self.roles:
            raise ValueError("define at least one role")
        for name, rc in self.roles.items():
            src = self.roles.get(rc.init_from) if rc.init_from else None
            if rc.init_from and src is None:
                raise ValueError(f"roles.{name}.init_from: unknown role {rc.init_from!r}")
            if src is not None and (src.spec != rc.spec or src.tokenizer != rc.tokenizer):
                raise ValueError(f"roles.{name}.init_from: {rc.init_from!r} has another spec or tokenizer")
        return self


def vision_key(spec: ModelSpec) -> str:
    return f"v{spec.vision_hidden}x{spec.vision_depth}h{spec.vision_heads}-out{spec.hidden}"


def train_tokenizers(train: list[Example], cfg: ZooConfig, out: Path) -> dict[str, Path]:
    paths = {}
    for name, tc in (("main", cfg.tokenizer), ("alt", cfg.alt_tokenizer)):
        p = out / "tokenizers" / name
        if not (p / "tokenizer.json").exists():
            split = SPLIT_IDENTIFIERS if tc.split == "identifiers" else SPLIT_WORDS
            train_tokenizer(world_texts(train), tc.vocab_size, split).save_pretrained(p)
        paths[name] = p
    return paths


def build_zoo(
    world: World,
    cfg: ZooConfig,
    out: ZooDir | Path,
    roles: list[str] | None = None,
    progress: OnProgress | None = None,
) -> dict:
    """Train (or resume) every requested role; returns the zoo summary written to zoo.json."""
    zoo = out if isinstance(out, ZooDir) else ZooDir(out)
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    zoo.path.mkdir(parents=True, exist_ok=True)
    train, val = world.load("train"), world.load("val")
    tok_paths = train_tokenizers(train, cfg, zoo.path)
    summary_path = zoo.record
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"roles": {}}
    for role in training_order(cfg, roles or list(cfg.roles)):
        if (zoo.role(role) / "config.json").exists():
            log.info("%s: already trained, skipping", role)
            continue
        tokenizer = AutoTokenizer.from_pretrained(tok_paths[cfg.roles[role].tokenizer])
        summary["roles"][role] = _train_role(role, cfg, tokenizer, train, val, zoo, progress)
        summary_path.write_text(json.dumps(summary, indent=2))
    return summary


def training_order(cfg: ZooConfig, roles: list[str]) -> list[str]:
    """`roles` with each role's `init_from` source (and its source's) trained before it."""
    for role in roles:
        if role not in cfg.roles:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(cfg.roles)}")
    order: list[str] = []
    for role in roles:
        chain = [role]
        while (src := cfg.roles[chain[-1]].init_from) is not None and src not in chain:
            chain.append(src)
        order.extend(r for r in reversed(chain) if r not in order)
    return order


def _train_role(
    role: str, cfg: ZooConfig, tokenizer, train: list, val: list, zoo: ZooDir, progress: OnProgress | None
) -> dict:
    """Build one role (its vision tower pretrained once per spec, or its `init_from` weights), run
    its SFT stages, evaluate it greedily on val and save it as the zoo's `role`; returns its zoo.json entry."""
    rc = cfg.roles[role]
    t0 = time.perf_counter()
    val_eval = val[: cfg.eval_examples]
    processor = make_processor(tokenizer, rc.spec)
    vision = None
    if rc.vision_pretraining:
        vdir = zoo.vision(vision_key(rc.spec)).path
        if not RunDir(vdir).vision_weights.exists():
            pretrain_vision(
                train, val, rc.spec, processor, cfg.pretrain, vdir,
                (lambda s, n, row: progress("vision", s, n, row)) if progress else None, cfg.torch_device(),
            )  # fmt: skip
        vision = RunDir(vdir).vision_weights
    model = build_model(rc.spec, processor, seed=cfg.seed + rc.sft.seed)  # a role with its own sft.seed: own init
    if vision is not None:
        load_vision(model, vision)
    if rc.init_from is not None:
        model.load_state_dict(load(zoo.role(rc.init_from))[0].state_dict())
    model.to(cfg.torch_device())

    def on_eval(step: int) -> dict:
        eps = rollout(model, processor, val_eval, RolloutConfig(greedy=True))
        return {"val/accuracy": summarize(eps)["accuracy"]["mean"]}

    train_sft(
        model, processor, train, rc.sft, zoo.stage(role),
        (lambda stage, s, n, row: progress(f"{role}:{stage}", s, n, row)) if progress else None,
        on_eval, cfg.eval_every,
    )  # fmt: skip
    final_eval = summarize(rollout(model, processor, val_eval, RolloutConfig(greedy=True)))
    meta = {
        "role": role,
        "spec": rc.spec.model_dump(),
        "sft": rc.sft.model_dump(),
        "tokenizer": rc.tokenizer,
        "vision_pretraining": rc.vision_pretraining,
        "init_from": rc.init_from,
        "params": n_params(model),
        "val_accuracy": final_eval["accuracy"],
        "val_tools": {k: v for k, v in final_eval.items() if k.startswith("tools/")},  # incl. the decoy rate
        "seconds": round(time.perf_counter() - t0, 1),
        "provenance": record(cfg, role=role),
    }
    save(model, processor, zoo.role(role), meta)
    return meta
