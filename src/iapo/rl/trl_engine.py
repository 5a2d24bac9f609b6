"""IAPO and the baselines on TRL's `GRPOTrainer`: the scale-out engine.

TRL owns the training loop, the GRPO loss (clipping, k3 KL to its reference model, loss
normalisation), gradient accumulation, DDP / DeepSpeed ZeRO / FSDP through `accelerate launch`,
checkpoints and logging. We own what TRL cannot carry for a multi-turn agent whose tools return
images: the episode loop and how an episode becomes model inputs. So one method is
overridden, `_generate_and_score_completions`: it runs `iapo.rollout` (the same function as
the CPU loop in `iapo.rl.grpo`), scores episodes through `iapo.rewards.contract.score` (the
same call the CPU loop makes), gathers the scores over processes, and returns the batch in
TRL's layout: left-padded prompt, right-padded completion that holds every later turn, tool
outputs (text and images) masked out of the loss by `tool_mask`, and the pixel values of every
image of the episode. metrics.jsonl holds the CPU loop's keys (`step_metrics`, the rewards'
own metrics, loss / kl / clip_frac / entropy / grad_norm, time/*, guard/skipped_steps), so
runs of either engine read the same; TRL's own names go to TensorBoard only.

Why not TRL's own tool loop (`tools=` / `environment_factory=`): it renders tool calls and
responses with the tokenizer's chat template and parses them with a `response_template`, both
made for Qwen/Llama chat templates; our agents speak the world's compact format, and the
component spans the attribution reward needs must be exact, which only our segment encoder
guarantees. Why not `rollout_func`: its contract returns token ids and log-probs, and TRL then
feeds only the dataset's images to the forward pass, so image tool outputs are lost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from iapo.data.example import Example
from iapo.errors import ConfigError
from iapo.models.processor import VLProcessor
from iapo.rewards.contract import WeightedReward, bind_policy, prepare, score
from iapo.rewards.contract import weights as reward_weights
from iapo.rl.credit import fill_dropped, group_advantages
from iapo.rl.grpo import GRPOSettings, seeded_rollout, step_metrics
from iapo.rollout.episode import encode
from iapo.rollout.loop import Episode, rollout
from iapo.store import METRICS, keep_metrics

try:  # the `scale` extra
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from trl.models import unwrap_model_for_generation
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('the TRL engine needs the scale extra: pip install -e ".[scale]"') from e

PROMPT_SEGMENTS = 4  # system, tool_spec, image, question: the first turn's input (iapo.rollout.episode)


def trl_batch(episodes: list[Episode], processor: VLProcessor, device: torch.device | str) -> dict:
    """Episodes -> the tensors `GRPOTrainer._compute_loss` reads.

    prompt_ids / prompt_mask: (B, P), left padded; completion_ids / completion_mask / tool_mask:
    (B, C), right padded, tool_mask 1 on the policy's own tokens only; mm_token_type_ids:
    (B, P+C); pixel_values / image_grid_thw: every image of the batch in episode order;
    num_images: images per episode (prompt image + image tool outputs)."""
    encs = [encode(e.segments, processor) for e in episodes]
    cut = [enc.spans[PROMPT_SEGMENTS - 1][1] for enc in encs]
    P = max(cut)
    C = max(len(enc) - c for enc, c in zip(encs, cut, strict=True))
    B, pad = len(encs), processor.pad_token_id
    prompt_ids = torch.full((B, P), pad, dtype=torch.long)
    prompt_mask = torch.zeros((B, P), dtype=torch.long)
    completion_ids = torch.full((B, C), pad, dtype=torch.long)
    completion_mask = torch.zeros((B, C), dtype=torch.long)
    tool_mask = torch.zeros((B, C), dtype=torch.long)
    for i, (enc, c) in enumerate(zip(encs, cut, strict=True)):
        prompt_ids[i, P - c :], prompt_mask[i, P - c :] = enc.input_ids[:c], 1
        n = len(enc) - c
        completion_ids[i, :n], completion_mask[i, :n] = enc.input_ids[c:], 1
        tool_mask[i, :n] = enc.assistant_mask()[c:]
    full = torch.cat([prompt_ids, completion_ids], 1)
    out = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "tool_mask": tool_mask,
        "mm_token_type_ids": (full == processor.image_token_id).long() * torch.cat([prompt_mask, completion_mask], 1),
        "num_images": [sum(len(s.images) for s in e.segments) for e in episodes],
    }
    pvs = [enc.pixel_values for enc in encs if enc.pixel_values is not None]
    if pvs:
        out["pixel_values"] = torch.cat(pvs)
        out["image_grid_thw"] = torch.cat([enc.image_grid_thw for enc in encs if enc.image_grid_thw is not None])
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in out.items()}


def refuse_credit(rewards: list[WeightedReward]) -> None:
    """TRL's loss takes one advantage per sequence: a reward with its own credit (`Credit`: own
    or raw advantage, routed tokens, turn- or token-level values) needs the CPU loop."""
    routed = [r.name for r in rewards if not r.pooled]
    if routed:
        raise ConfigError(
            f"rewards {', '.join(routed)}: per-token credit (credit: own/raw, turn- or token-level values) runs "
            "in the CPU engine only (iapo.rl.grpo); TRL's GRPOTrainer takes one advantage per sequence"
        )


def _named(r: WeightedReward):
    """The reward under our name for it (TRL reads names and weights from `reward_funcs`;
    scoring goes through `iapo.rewards.contract.score`)."""

    def fn(prompts, completions, **kwargs):
        return r.reward(prompts, completions, **kwargs)

    fn.__name__ = r.name
    return fn


TRL_NAMES = {
    "loss": "losses/policy",
    "kl": "losses/kl",
    "entropy": "policy/entropy",
    "grad_norm": "optim/grad_norm",
    "clip_ratio/region_mean": "policy/clip_frac",
}
OUR_PREFIXES = ("reward/", "attr/", "tools/", "format/", "adv/", "episode/", "time/", "guard/", "rollout/")


def our_row(logs: dict) -> dict:
    """A TRL log row under the CPU loop's metric names (TRL-only keys dropped)."""
    row = {ours: logs[k] for k, ours in TRL_NAMES.items() if k in logs}
    row.update({k: v for k, v in logs.items() if k.startswith(OUR_PREFIXES)})
    return row


class _SaveProcessor(TrainerCallback):
    """TRL saves the tokenizer with each checkpoint; the image processor must go along, or the
    checkpoint is not a model directory `from_pretrained` can load."""

    def __init__(self, processor: VLProcessor):
        self.processor = processor

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.processor.image_processor.save_pretrained(Path(args.output_dir) / f"checkpoint-{state.global_step}")


class _JsonlLog(TrainerCallback):
    """Every logged step as one JSON line (metrics.jsonl, as the CPU loop writes); rows past the
    step a resumed run restarts from are dropped first."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            keep_metrics(self.path, lambda r: r["step"] <= state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, **our_row(logs)}) + "\n")


class IAPOGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` whose samples are multi-turn image-tool episodes.

    The dataset holds one row per question (`prompt`, `example_id`); TRL repeats each row
    `num_generations` times over the processes, so the G rollouts of a question form a group
    after TRL's gather, as in `iapo.rl.grpo`."""

    def __init__(
        self,
        model: str | Path,
        processor: VLProcessor,
        examples: list[Example],
        rewards: list[WeightedReward],
        cfg: GRPOSettings,
        args: GRPOConfig,
        callbacks: list | None = None,
        metrics: Path | None = None,
    ):
        """`metrics`: where the step rows go (a run directory's metrics.jsonl; default: in
        `args.output_dir`)."""
        refuse_credit(rewards)
        args.reward_weights = [r.weight for r in rewards]
        args.temperature = cfg.rollout.temperature or 1.0  # TRL divides logits by it when scoring tokens
        dataset = Dataset.from_list([{"prompt": ex.question, "example_id": ex.id} for ex in examples])
        super().__init__(
            model=str(model),
            reward_funcs=[_named(r) for r in rewards],
            args=args,
            train_dataset=dataset,
            processing_class=processor.tokenizer,
            callbacks=[
                _SaveProcessor(processor),
                _JsonlLog(metrics or Path(args.output_dir) / METRICS),
                *(callbacks or []),
            ],
        )
        self.vl_processor = processor
        self.examples = {ex.id: ex for ex in examples}
        self.cfg = cfg
        self.iapo_rewards = rewards
        self._skipped, self._step_t0, self._scored_s = 0, None, 0.0
        prepare(rewards, examples)  # per-question work once, before RL (TRL's sampler: any question)

    def _rollout(self, policy, examples: list[Example]) -> list[Episode]:
        """This process's share of the step's episodes; with `rollout_shards` a multiple of the
        process count, each shard is seeded by (seed, step, shard) as in `iapo.rl.grpo`, so N
        processes sample the same episodes as one."""
        c, n, rank = self.cfg, self.accelerator.num_processes, self.accelerator.process_index
        if c.rollout_shards == 1:
            return rollout(policy, self.vl_processor, examples, c.rollout)
        if c.rollout_shards % n:
            raise ValueError(f"grpo.rollout_shards={c.rollout_shards} must be a multiple of the {n} processes")
        per = c.rollout_shards // n
        return seeded_rollout(
            policy, self.vl_processor, examples, c, self.state.global_step, range(rank * per, (rank + 1) * per)
        )

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        device = self.accelerator.device
        mode = "train" if self.model.training else "eval"
        examples = [self.examples[x["example_id"]] for x in inputs]
        t0 = time.perf_counter()
        # Under ZeRO-3 the context gathers the sharded weights: generation and the attribution
        # term's input gradients (torch.autograd.grad, no parameter gradients) need whole layers.
        with unwrap_model_for_generation(
            self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation
        ) as policy:
            episodes = self._rollout(policy, examples)
            t1 = time.perf_counter()
            bind_policy(self.iapo_rewards, policy, self.vl_processor)
            local_scores, local_dropped, reward_row, _ = score(self.iapo_rewards, episodes)  # (n, F) here
        per_func = self.accelerator.gather(local_scores.to(device)).cpu()  # (N_all, F), group order
        dropped = self.accelerator.gather(local_dropped.to(device)).cpu()
        total = fill_dropped(per_func, dropped, self.num_generations) @ reward_weights(self.iapo_rewards)
        adv_all = group_advantages(total, self.num_generations, scale=self.scale_rewards != "none")
        rank = self.accelerator.process_index
        adv = adv_all[rank * len(inputs) : (rank + 1) * len(inputs)].float().to(device)
        t2 = time.perf_counter()

        batch = trl_batch(episodes, self.vl_processor, device)
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
        attn = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
        fwd = {k: batch[k] for k in ("pixel_values", "image_grid_thw", "mm_token_type_ids") if k in batch}
        keep = batch["completion_ids"].shape[1]
        bs = self.args.per_device_train_batch_size
        with torch.no_grad():
            if self.args.gradient_accumulation_steps % (self.args.steps_per_generation * self.num_iterations):
                old, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, ids, attn, keep, bs, num_images=batch["num_images"], **fwd
                )
                batch["old_per_token_logps"] = old
            if self.beta != 0.0 and self.ref_model is not None:
                ref, _, _ = self._get_per_token_logps_and_entropies(
                    self.ref_model, ids, attn, keep, bs, num_images=batch["num_images"], **fwd
                )
                batch["ref_per_token_logps"] = ref
        loss_mask = batch["completion_mask"] * batch["tool_mask"]
        batch["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        batch["advantages"] = adv

        local = {**reward_row, **step_metrics(episodes, total[rank * len(inputs) : (rank + 1) * len(inputs)],
                 adv.cpu(), self.num_generations)}  # fmt: skip
        local.update({"reward/total": float(total.mean()), "time/rollout_s": t1 - t0, "time/reward_s": t2 - t1})
        m = self._metrics[mode]
        for k, v in self._process_mean(local).items():
            m[k].append(v)
        self._step_t0 = self._step_t0 or t0
        self._scored_s += t2 - t0
        return batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's loss, with the guard of the CPU loop: a non-finite loss contributes a zero
        gradient instead (every process still joins the all-reduce) and is counted."""
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if not bool(torch.isfinite(loss.detach())):
            self._skipped += 1
            return sum((p * 0.0).sum() for p in model.parameters() if p.requires_grad)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the step's wall time split and the skipped-update count, as the CPU loop logs them."""
        if "loss" in logs and self._step_t0 is not None:
            step_s = time.perf_counter() - self._step_t0
            mode = "train" if self.model.training else "eval"
            m = self._metrics[mode]
            m["time/step_s"].append(step_s)
            m["time/update_s"].append(step_s - self._scored_s)
            m["guard/skipped_steps"].append(float(self._skipped))
            self._step_t0, self._scored_s = None, 0.0
        super().log(logs, start_time)

    def _process_mean(self, row: dict[str, float]) -> dict[str, float]:
        """Every process's metrics averaged (NaN-aware), so the log describes the whole batch."""
        keys = sorted(row)
        t = torch.tensor([row[k] for k in keys], dtype=torch.float64, device=self.accelerator.device)
        allv = self.accelerator.gather(t.unsqueeze(0))  # (processes, K)
        return dict(zip(keys, allv.nanmean(0).tolist(), strict=True))


def grpo_args(cfg: GRPOSettings, out: Path, n_processes: int, use_cpu: bool, bf16: bool = False) -> GRPOConfig:
    """Our GRPO settings as TRL's: Q*G completions per optimizer step over all processes, one
    generation per step (rolled out at once, back-propagated in `micro_batch` chunks by gradient
    accumulation), DAPO (global token) normalisation, group-std scaled advantages."""
    per_step = cfg.questions_per_step * cfg.group_size
    if per_step % n_processes:
        raise ValueError(f"questions_per_step*group_size = {per_step} must divide over {n_processes} processes")
    local = per_step // n_processes
    micro = min(cfg.micro_batch, local)
    if local % micro:
        raise ValueError(f"grpo.micro_batch={micro} must divide the {local} completions per process and step")
    return GRPOConfig(
        output_dir=str(out),
        max_steps=cfg.steps,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=local // micro,
        steps_per_generation=local // micro,
        num_generations=cfg.group_size,
        num_iterations=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        beta=cfg.beta,
        epsilon=cfg.clip_eps,
        loss_type=cfg.loss_type,
        scale_rewards="group" if cfg.scale_rewards else "none",
        save_steps=cfg.checkpoint_every,
        logging_steps=1,
        seed=cfg.seed,
        use_cpu=use_cpu,
        bf16=bf16,
        activation_checkpointing=False,
        remove_unused_columns=False,
        report_to=["tensorboard"],
        disable_tqdm=False,
    )


def train(trainer: IAPOGRPOTrainer) -> None:
    """Train, resuming from the newest checkpoint-N/ in the output directory if there is one."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(trainer.args.output_dir)
    trainer.train(resume_from_checkpoint=get_last_checkpoint(str(out)) if out.is_dir() else None)
