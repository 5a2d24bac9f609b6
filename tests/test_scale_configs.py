"""The GPU configs parse and build the trainer objects on this CPU machine, up to the point
where a device is needed: Qwen2.5-VL-3B GRPO / IAPO configs (with tiny local models and the
ReFocus fixtures swapped in for the real paths) and the accelerate launch configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from iapo.config import load_yaml
from iapo.data.benchmarks import BenchmarkSource
from iapo.eval.policy import SplitGuard
from iapo.models.build import save
from iapo.rewards.method import make_rewards
from iapo.run import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
REFOCUS = ROOT / "tests" / "fixtures" / "refocus"


@pytest.mark.parametrize("name", ["outcome", "iapo"])
def test_qwen_configs_build_the_trainer_objects(name, tiny_models, tmp_path):
    path = ROOT / "configs" / "qwen2_5_vl_3b" / f"{name}.yaml"
    cfg = load_yaml(path, TrainConfig)
    assert cfg.model.dtype == "bfloat16" and cfg.model.device == "cuda"
    assert cfg.grpo.questions_per_step % cfg.grpo.rollout_shards == 0
    assert {"train", "val"} <= set(cfg.data.splits) and any(s.startswith("test") for s in cfg.data.splits)
    # swap the real checkpoints and data directories for local tiny ones
    student = save(*tiny_models["student"], tmp_path / "student")
    teacher = save(*tiny_models["teacher_alt"], tmp_path / "teacher")
    over = {"model.student": str(student), "data.cache": str(tmp_path / "cache"), "method.teacher": str(teacher)}
    for split, s in cfg.data.splits.items():
        over[f"data.splits.{split}.data"] = str(REFOCUS / "chartqa_vcot" if s.bench == "chartqa_vcot" else REFOCUS)
    over["data.splits.train.file"] = "train"
    over["data.splits.val.file"] = "train"  # the fixture has one split file
    cfg = load_yaml(path, TrainConfig, over)
    guard = SplitGuard(BenchmarkSource(cfg.data))
    assert [e.answer for e in guard.load("train")] == ["5"]
    with pytest.raises(RuntimeError, match="test splits are for the final evaluation"):
        guard.load("test_chartqa_v_bar")
    guard.training = False
    assert [e.answer for e in guard.load("test_chartqa_v_bar")] == ["6"]
    rewards = make_rewards(cfg.method, tmp_path, None, 0, getattr(torch, cfg.model.dtype))
    names = [r.name for r in rewards]
    assert names == (["outcome", "format", "attribution"] if name == "iapo" else ["outcome", "format"])
    if name == "iapo":
        teacher_model = rewards[-1].fn.teacher[0]
        assert teacher_model.dtype == torch.bfloat16 and not any(p.requires_grad for p in teacher_model.parameters())
    # TRL's GRPOTrainer as 1 of the 8 processes, up to the device: bf16 needs the GPU
    assert cfg.engine == "trl"
    pytest.importorskip("trl")
    from iapo.models.processor import VLProcessor
    from iapo.rl import trl_engine

    args = trl_engine.grpo_args(cfg.grpo, tmp_path / "trl", n_processes=8, use_cpu=True)
    proc = VLProcessor.from_pretrained(student)
    trainer = trl_engine.IAPOGRPOTrainer(student, proc, guard.load("train"), rewards, cfg.grpo, args)
    assert trainer.num_generations == cfg.grpo.group_size and trainer.beta == cfg.grpo.beta
    assert trainer.ref_model is not None and trainer.loss_type == "dapo"
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 8)  # 32 per GPU, micro 4
    assert trainer.reward_func_names == names


@pytest.mark.parametrize(
    ("file", "kind", "stage"),
    [
        ("cpu_2proc", "MULTI_CPU", None),
        ("ddp_gpu", "MULTI_GPU", None),
        ("zero2", "DEEPSPEED", 2),
        ("zero3", "DEEPSPEED", 3),
    ],
)
def test_accelerate_configs_parse(file, kind, stage):
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    c = load_config_from_file(str(ROOT / "configs" / "accelerate" / f"{file}.yaml"))
    assert str(c.distributed_type).endswith(kind)
    if stage is not None:
        assert c.deepspeed_config["zero_stage"] == stage and c.mixed_precision == "bf16"
