"""On-policy distillation (`iapo.rewards.distill`): the teacher's log-probabilities of the
student's own generated tokens, against the student's, per episode."""

from __future__ import annotations

import random

import pytest
import torch

from iapo.models.build import ModelSpec, build_model, make_processor, save
from iapo.rewards.distill import Distillation
from iapo.rewards.method import MethodConfig, make_rewards
from iapo.rollout.episode import collate, encode
from iapo.rollout.logprobs import token_logprobs
from iapo.rollout.loop import Episode
from iapo.supervised.sft import sft_segments


def _teacher(tokenizers, seed: int = 1):
    """A model with the student's tokenizer and another size (and vision tower)."""
    spec = ModelSpec(hidden=48, heads=2, layers=2, intermediate=96, vision_hidden=48)
    proc = make_processor(tokenizers["main"], spec)
    return build_model(spec, proc, seed=seed), proc


def _episodes(small_world) -> list[Episode]:
    """Demonstrations with tool calls and their image outputs, the first one twice."""
    rng = random.Random(0)
    exs = [ex for ex in small_world.load("val") if ex.valid_paths][:3]
    eps = [Episode(ex, sft_segments(ex, rng, tools=True)) for ex in exs]
    return [*eps, Episode(eps[0].example, eps[0].segments)]


def _mean_logp(model, proc, ep: Episode) -> float:
    batch = collate([encode(ep.segments, proc)], proc.pad_token_id)
    with torch.no_grad():
        lp, _ = token_logprobs(model, batch)
    return float(lp.sum() / batch.completion_mask[:, 1:].sum())


def test_reward_is_the_mean_log_ratio_of_the_students_tokens(tiny_models, tokenizers, small_world):
    teacher, student = _teacher(tokenizers), tiny_models["student"]
    r = Distillation(teacher, batch_size=2)  # batches of 2: padding must not change a row's value
    r.bind_policy(*student)
    eps = _episodes(small_world)
    out = r([""] * len(eps), [""] * len(eps), eps)
    for ep, o in zip(eps, out, strict=True):
        assert o == pytest.approx(_mean_logp(*teacher, ep) - _mean_logp(*student, ep), abs=1e-4)
    assert out[0] == out[-1] and len(set(out[:3])) == 3  # a copy is scored once, as its original
    m = r.metrics()
    assert m["distill/teacher_logp"] < 0 and m["distill/student_logp"] < 0


def test_the_student_as_its_own_teacher_earns_zero(tiny_models, small_world):
    r = Distillation(tiny_models["student"])
    r.bind_policy(*tiny_models["student"])
    eps = _episodes(small_world)
    assert r([""] * len(eps), [""] * len(eps), eps) == pytest.approx([0.0] * len(eps), abs=1e-6)


def test_a_teacher_with_another_tokenizer_is_refused(tiny_models):
    with pytest.raises(ValueError, match="tokenizer"):
        Distillation(tiny_models["teacher_alt"]).bind_policy(*tiny_models["student"])


def test_a_method_with_distill_loads_its_teacher_from_the_zoo(tokenizers, tmp_path):
    save(*_teacher(tokenizers), tmp_path / "teacher", {})
    m = MethodConfig(distill=0.3)
    assert m.needs_teacher
    (term,) = [w for w in make_rewards(m, tmp_path, None, 0) if w.name == "distill"]
    assert term.weight == 0.3 and isinstance(term.reward, Distillation)


def _token_logps(model, proc, ep: Episode) -> torch.Tensor:
    batch = collate([encode(ep.segments, proc)], proc.pad_token_id)
    with torch.no_grad():
        lp, _ = token_logprobs(model, batch)
    return lp[0][batch.completion_mask[0, 1:].bool()].double()


def test_per_token_distillation_gives_each_generated_token_its_own_log_ratio(tiny_models, tokenizers, small_world):
    """The published form: token t's value is log p_teacher(y_t) - log p_student(y_t), on the
    student's generated tokens only (tool outputs are context); its mean is the episode form."""
    teacher, student = _teacher(tokenizers), tiny_models["student"]
    eps = _episodes(small_world)
    per, mean = Distillation(teacher, 2, per_token=True), Distillation(teacher, 2)
    for r in (per, mean):
        r.bind_policy(*student)
    assert per.level == "token" and mean.level == "episode"
    tokens, means = per([""] * len(eps), [""] * len(eps), eps), mean([""] * len(eps), [""] * len(eps), eps)
    for ep, v, m in zip(eps, tokens, means, strict=True):
        want = _token_logps(*teacher, ep) - _token_logps(*student, ep)
        n_generated = sum(len(s.ids) if s.ids else 0 for s in ep.segments if s.kind == "assistant")
        assert len(v) == len(want) == encode(ep.segments, student[1]).assistant_mask().sum() > 0
        assert n_generated in (0, len(v))  # demonstrations carry text, not ids
        assert torch.allclose(v, want, atol=1e-4) and float(v.mean()) == pytest.approx(m, abs=1e-6)


def test_a_method_routes_per_token_distillation_raw_and_names_its_credit(tokenizers, tmp_path):
    from iapo.errors import ConfigError

    save(*_teacher(tokenizers), tmp_path / "teacher", {})
    (term,) = [w for w in make_rewards(MethodConfig(distill=0.3, distill_per_token=True), tmp_path, None, 0)
               if w.name == "distill"]  # fmt: skip
    assert term.reward.level == "token" and term.credit.advantage == "raw" and term.credit.tokens == "all"
    routed = MethodConfig(distill=0.3, credit={"outcome": {"advantage": "own", "tokens": "answer"}})
    by = {w.name: w.credit for w in make_rewards(routed, tmp_path, None, 0)}
    assert by["outcome"].tokens == "answer" and by["distill"].advantage == "pooled"
    with pytest.raises(ConfigError, match="attribution is not a reward"):
        make_rewards(MethodConfig(credit={"attribution": {"advantage": "own"}}), tmp_path, None, 0)
