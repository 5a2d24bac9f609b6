"""The TRL engine (`iapo.rl.trl_engine`): TRL's GRPOTrainer sees exactly the tokens, images
and loss mask of our episodes, trains on episodes whose tool outputs are images, resumes, and
runs under `accelerate launch` with the same per-step metrics on 2 processes as on 1."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("trl")

from iapo.models.build import load, save
from iapo.rewards import format_reward, outcome
from iapo.rewards.contract import WeightedReward
from iapo.rl import grpo, trl_engine
from iapo.rl.grpo import GRPOSettings, train_grpo
from iapo.rollout.episode import collate, encode
from iapo.rollout.logprobs import token_logprobs
from iapo.rollout.loop import Episode, RolloutConfig, new_episode, step_episode
from iapo.store import read_metrics
from iapo.tools.syntax import format_answer, format_tool_call
from tests.rl.conftest import KEYS

ROOT = Path(__file__).resolve().parents[2]


def scripted(examples, processor, answers=None) -> list[Episode]:
    """Episodes that follow each example's first valid tool path, then answer (gold, or the
    given answers): every episode carries image tool outputs, which untrained models never emit."""
    cfg = RolloutConfig(max_calls=3)
    out = []
    for i, ex in enumerate(examples):
        ep, sess = new_episode(ex, cfg)
        path = ex.valid_paths[0] if ex.valid_paths else []
        texts = [format_tool_call(c["name"], c["arguments"]) for c in path]
        texts.append(format_answer(answers[i] if answers else ex.gold))
        for t in texts:
            ids = [*processor.tokenizer.encode(t, add_special_tokens=False), processor.eos_token_id]
            step_episode(ep, sess, ids, False, processor, cfg)
        out.append(ep)
    return out


@pytest.fixture()
def student_dir(tiny_models, tmp_path):
    save(*tiny_models["student"], tmp_path / "student")
    return tmp_path / "student"


def make_trainer(student_dir, examples, tmp_path, steps=2, **grpo):
    _, proc = load(student_dir)
    cfg = GRPOSettings(steps=steps, questions_per_step=2, group_size=2, lr=1e-3, checkpoint_every=1, **grpo)
    args = trl_engine.grpo_args(cfg, tmp_path / "trl", 1, use_cpu=True)
    args.disable_tqdm = True
    rewards = [WeightedReward("outcome", outcome, 1.0), WeightedReward("format", format_reward, 0.2)]
    return trl_engine.IAPOGRPOTrainer(student_dir, proc, examples, rewards, cfg, args), proc


def test_trl_batch_is_our_episode(student_dir, small_world, tmp_path):
    """Same tokens, images and per-token log-probs as our own teacher-forced pass; the loss
    mask is exactly the policy's generated turns (never prompt, image or tool-output tokens)."""
    exs = [ex for ex in small_world.load("train") if ex.valid_paths and ex.valid_paths[0]][:4]
    trainer, proc = make_trainer(student_dir, exs, tmp_path)
    eps = scripted(exs, proc)
    assert all(sum(len(s.images) for s in e.segments) >= 2 for e in eps)  # image tool outputs present
    b = trl_engine.trl_batch(eps, proc, "cpu")
    assert b["num_images"] == [sum(len(s.images) for s in e.segments) for e in eps]
    ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
    attn = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
    n_gen = [sum(len(t.ids) for t in e.turns) for e in eps]
    assert b["tool_mask"].sum(1).tolist() == n_gen
    assert not ((b["tool_mask"] == 1) & (b["completion_ids"] == proc.image_token_id)).any()
    with torch.no_grad():
        lp, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, attn, b["completion_ids"].shape[1], 4, num_images=b["num_images"],
            pixel_values=b["pixel_values"], image_grid_thw=b["image_grid_thw"], mm_token_type_ids=b["mm_token_type_ids"],
        )  # fmt: skip
        model, _ = load(student_dir)
        own, _ = token_logprobs(model, collate([encode(e.segments, proc) for e in eps], proc.pad_token_id))
    own_batch = collate([encode(e.segments, proc) for e in eps], proc.pad_token_id)
    for i in range(len(eps)):
        theirs = lp[i][b["tool_mask"][i].bool()]
        ours = own[i][own_batch.completion_mask[i, 1:].bool()]
        assert torch.allclose(theirs, ours, atol=1e-4), (theirs - ours).abs().max()


def test_trl_engine_trains_on_image_tool_episodes(student_dir, small_world, tmp_path, monkeypatch):
    """Two GRPOTrainer steps on episodes with image tool outputs: rewards reach TRL, the policy
    moves, checkpoints are loadable model directories, metrics.jsonl has one row per step, and
    a rerun resumes from the last checkpoint instead of starting over."""
    exs = [ex for ex in small_world.load("train") if ex.valid_paths and ex.valid_paths[0]][:8]
    gen = torch.Generator().manual_seed(0)

    def fake_rollout(self, policy, examples):  # half right, half wrong: nonzero advantages
        wrong = [ex.gold if torch.rand(1, generator=gen) < 0.5 else "0" for ex in examples]
        return scripted(examples, self.vl_processor, wrong)

    monkeypatch.setattr(trl_engine.IAPOGRPOTrainer, "_rollout", fake_rollout)
    trainer, _ = make_trainer(student_dir, exs, tmp_path, steps=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trl_engine.train(trainer)
    rows = [json.loads(x) for x in (tmp_path / "trl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(0 <= r["rollout/accuracy"] <= 1 and r["format/well_formed"] == 1.0 for r in rows)
    assert all(r["tools/calls_per_episode"] > 0 and torch.isfinite(torch.tensor(r["losses/policy"])) for r in rows)
    moved = sum(float((v - before[k]).abs().sum()) for k, v in trainer.model.state_dict().items())
    assert moved > 0
    ck = tmp_path / "trl" / "checkpoint-2"
    assert (ck / "preprocessor_config.json").exists()
    model, proc = load(ck)  # a checkpoint is a model directory
    assert model is not None and proc.image_token_id == trainer.vl_processor.image_token_id

    trainer2, _ = make_trainer(student_dir, exs, tmp_path, steps=3)
    trl_engine.train(trainer2)
    assert trainer2.state.global_step == 3
    rows = [json.loads(x) for x in (tmp_path / "trl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # resumed at 2, not restarted


CONFIG = {
    "engine": "trl",
    "method": {"teacher": "teacher", "attribution": {"n_steps": 2, "lam": 0.5}},
    "grpo": {
        "steps": 2, "questions_per_step": 2, "group_size": 2, "rollout_shards": 2, "lr": 1e-3,
        "rollout": {"max_calls": 1, "max_new_tokens": 6, "batch_size": 8},
    },
    "eval": {"val_examples": 2, "eval_every": 0, "test_limit": 2, "attribution_episodes": 0},
    "model": {"device": "cpu"},
}  # fmt: skip


def cpu_variant(name: str, tmp_path) -> str:
    """configs/accelerate/NAME.yaml with only what a GPU needs swapped for CPU: 2 processes,
    no bf16 (DeepSpeed runs on CPU with gloo here); every DeepSpeed setting kept."""
    cfg = yaml.safe_load((ROOT / "configs" / "accelerate" / f"{name}.yaml").read_text())
    cfg.update(use_cpu=True, mixed_precision="no", num_processes=2)
    path = tmp_path / f"{name}_cpu.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.slow
def test_trl_two_processes_match_one(tiny_zoo, small_world, tmp_path):
    """`accelerate launch` on 2 CPU processes (gloo) of IAPO on TRL's GRPOTrainer, as plain DDP
    and with the repo's DeepSpeed ZeRO-2 and ZeRO-3 configs: each has the same per-step metrics
    as 1 process with the same global batch and seed (and 2 micro-batches), and evaluates."""
    pytest.importorskip("deepspeed")
    zoo = tiny_zoo
    cfg = tmp_path / "iapo_trl.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    micro = tmp_path / "iapo_trl_micro.yaml"
    micro.write_text(yaml.safe_dump({**CONFIG, "grpo": {**CONFIG["grpo"], "micro_batch": 1}}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}

    def run(prefix: list[str], config, out: str) -> list[dict]:
        args = ["-m", "iapo.cli", "train", "--config", str(config), "--world", str(small_world.root), "--zoo", str(zoo)]
        r = subprocess.run([*prefix, *args, "--out", str(tmp_path / out)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        result = json.loads((tmp_path / out / "result.json").read_text())
        assert result["engine"] == "trl" and (tmp_path / out / "policy" / "model.safetensors").exists()
        return read_metrics(tmp_path / out)  # the run's own log, as the CPU loop writes it

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no"]
    one = run([sys.executable], cfg, "one")
    assert [r["step"] for r in one] == [1, 2]
    others = {
        "micro-batches": run([sys.executable], micro, "micro"),
        "ddp": run([*launch, "--num_processes", "2", "--mixed_precision", "no", "--cpu"], cfg, "ddp"),
        "zero2": run([*launch, "--config_file", cpu_variant("zero2", tmp_path)], cfg, "zero2"),
        "zero3": run([*launch, "--config_file", cpu_variant("zero3", tmp_path)], cfg, "zero3"),
    }
    for name, rows in others.items():
        assert [r["step"] for r in rows] == [1, 2], name
        for a, b in zip(one, rows, strict=True):
            for k in KEYS:
                assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-4), (name, a["step"], k, a[k], b[k])


def test_nonfinite_loss_is_skipped_and_counted(student_dir, small_world, tmp_path, monkeypatch):
    """A NaN loss (here forced) leaves the weights as they were and is logged, not a crash."""
    exs = [ex for ex in small_world.load("train") if ex.valid_paths and ex.valid_paths[0]][:8]
    monkeypatch.setattr(trl_engine.IAPOGRPOTrainer, "_rollout", lambda self, p, e: scripted(e, self.vl_processor))
    monkeypatch.setattr(trl_engine.GRPOTrainer, "_compute_loss", lambda self, m, i: torch.tensor(float("nan")))
    trainer, _ = make_trainer(student_dir, exs, tmp_path, steps=1)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trl_engine.train(trainer)
    after = trainer.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    rows = [json.loads(x) for x in (tmp_path / "trl" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["guard/skipped_steps"] == 1.0


def test_a_nonfinite_reward_gives_no_gradient_as_docs_say(student_dir, small_world, tmp_path, monkeypatch):
    """A reward that returns NaN (not dropped: a bug of the reward) makes its group's advantages NaN;
    the loss is then non-finite and the update is skipped and counted, as docs/grpo.md says."""
    exs = [ex for ex in small_world.load("train") if ex.valid_paths and ex.valid_paths[0]][:8]
    monkeypatch.setattr(trl_engine.IAPOGRPOTrainer, "_rollout", lambda self, p, e: scripted(e, self.vl_processor))
    trainer, _ = make_trainer(student_dir, exs, tmp_path, steps=1)
    trainer.iapo_rewards.append(WeightedReward("broken", lambda episodes, **_: [math.nan] * len(episodes), 1.0))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trl_engine.train(trainer)
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    rows = [json.loads(x) for x in (tmp_path / "trl" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["guard/skipped_steps"] >= 1.0


def test_both_engines_log_the_same_metrics(student_dir, small_world, tmp_path, monkeypatch):
    """One contract: on the same episodes and rewards, the CPU loop and the TRL engine write
    metrics.jsonl rows with the same keys, and the same values where nothing is sampled (two
    questions: each engine's one step draws both)."""
    exs = [ex for ex in small_world.load("train") if ex.valid_paths and ex.valid_paths[0]][:2]
    monkeypatch.setattr(trl_engine.IAPOGRPOTrainer, "_rollout", lambda self, p, e: scripted(e, self.vl_processor))
    monkeypatch.setattr(
        grpo,
        "rollout_groups",
        lambda m, proc, e, cfg, *_: scripted([x for x in e for _ in range(cfg.group_size)], proc),
    )
    trainer, proc = make_trainer(student_dir, exs, tmp_path, steps=1)
    trl_engine.train(trainer)
    model, _ = load(student_dir)
    cfg = GRPOSettings(steps=1, questions_per_step=2, group_size=2, lr=1e-3, beta=0.0, seed=trainer.cfg.seed)
    rewards = [WeightedReward("outcome", outcome, 1.0), WeightedReward("format", format_reward, 0.2)]
    train_grpo(model, None, proc, exs, rewards, cfg, tmp_path / "own")
    [theirs] = [json.loads(x) for x in (tmp_path / "trl" / "metrics.jsonl").read_text().splitlines()]
    [ours] = [json.loads(x) for x in (tmp_path / "own" / "metrics.jsonl").read_text().splitlines()]
    assert set(theirs) == set(ours), set(theirs) ^ set(ours)
    for k in ("reward/total", "reward/outcome", "rollout/accuracy", "tools/calls_per_episode", "episode/tokens"):
        assert theirs[k] == pytest.approx(ours[k]), k


# TRL's methods the engine overrides or relies on, as read when the override was last checked
# against them (trl 1.16.0): a subclass that overrides `_generate_and_score_completions` breaks
# silently when TRL moves work into or out of it (TRL PR #6001 moved environment set-up there).
TRL_CHECKED = {
    "__init__": "18f01b7a46c9544b",
    "_generate_and_score_completions": "1fa48922792dcd5c",
    "compute_loss": "a2d6ef8bd29c3e26",
    "log": "1e7772819cc8cf09",
    "_prepare_inputs": "f824e7fb07147956",  # calls the override and buffers what it returns
}


def test_the_trl_methods_we_override_are_the_ones_we_checked():
    """Fails when the installed TRL's source of a method the engine overrides (or the caller of
    the override) differs from the version the engine was checked against."""
    import hashlib
    import inspect

    import trl
    from trl import GRPOTrainer

    overridden = {k for k, v in vars(trl_engine.IAPOGRPOTrainer).items() if callable(v) and hasattr(GRPOTrainer, k)}
    assert overridden <= set(TRL_CHECKED), f"new overrides {overridden - set(TRL_CHECKED)}: add them to TRL_CHECKED"
    changed = [k for k, h in TRL_CHECKED.items()
               if hashlib.sha256(inspect.getsource(getattr(GRPOTrainer, k)).encode()).hexdigest()[:16] != h]  # fmt: skip
    assert not changed, (
        f"trl {trl.__version__} changed GRPOTrainer.{', '.join(changed)}: re-read them against "
        "iapo.rl.trl_engine.IAPOGRPOTrainer (what the override must still set up, return and log; "
        "tests/rl/test_trl_engine.py's training tests), then record the new hashes in TRL_CHECKED"
    )
