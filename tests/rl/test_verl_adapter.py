"""The veRL adapter. Without veRL: the reward function, the parquet rows and the tool config.
With veRL importable (`pip install --no-deps --target DIR verl==0.9.1 ...`, docs/scale_out.md;
veRL pins transformers < 5.11, so it is not a dependency): veRL's own tool loader builds our
tools, a trajectory's calls return edited images and keep their state, and veRL's hydra
composes and validates configs/verl/qwen2_5_vl_3b_outcome.yaml."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import yaml
from PIL import Image

from iapo.rl.verl_adapter import compute_score, export
from iapo.rollout.episode import ex_image
from iapo.tools.registry import TOOLS

ROOT = Path(__file__).resolve().parents[2]


def test_compute_score_is_our_outcome_and_format_reward_on_the_final_turn():
    """The final turn (after the last tool call or response) is parsed by the rollout's parser
    and scored by rewards.basic with MethodConfig's weights: a malformed answer turn earns its
    outcome but no format reward, as in our engine."""
    ex = {"metric": "exact"}
    assert compute_score("w", '<tool_call>{"name": "x"}</tool_call>\nuser\n<tool_response>\nok\n</tool_response>\n'
                         "assistant\n<answer>7</answer>", "7", ex) == {"score": 1.2, "acc": 1.0, "answered": 1.0}  # fmt: skip
    assert compute_score("w", "<answer>8</answer>", "7", ex)["score"] == pytest.approx(0.2)
    assert compute_score("w", "no answer tag", "7", ex) == {"score": 0.0, "acc": 0.0, "answered": 0.0}
    assert compute_score("w", "<answer>7.1</answer>", "7", {"metric": "relaxed"})["acc"] == 1.0
    assert compute_score("w", "7 <answer>7</answer>", ["7"], ex) == {"score": 1.0, "acc": 1.0, "answered": 0.0}
    # the same rule as the rollout's: the turn's answer under parse_turn
    from iapo.tools.syntax import parse_turn

    for text in ("<answer>7</answer>", "7 <answer>7</answer>", "<think>a</think><answer>7</answer>", "seven"):
        t = parse_turn(text)
        assert compute_score("w", text, "7", ex)["answered"] == float(t.well_formed and t.kind == "answer")


@pytest.fixture(scope="module")
def exported(small_world, tmp_path_factory):
    pytest.importorskip("pandas")
    out = tmp_path_factory.mktemp("verl")
    paths = export(small_world, out, ("train", "val"), limit=6)
    return small_world, out, paths


def test_export_writes_verl_rows(exported):
    import pandas as pd

    world, out, paths = exported
    assert [p.name for p in paths] == ["train.parquet", "val.parquet", "tool_config.yaml"]
    assert sorted(p.name for p in out.iterdir()) == [
        "tool_config.yaml",
        "train.parquet",
        "val.parquet",
    ]  # no temporaries
    df = pd.read_parquet(out / "train.parquet")
    assert len(df) == 6
    for (_, row), ex in zip(df.iterrows(), world.load("train")[:6], strict=True):
        assert row.prompt[-1]["content"] == f"<image>{ex.question}" and row.prompt[-1]["role"] == "user"
        img = Image.open(io.BytesIO(row.images[0]["bytes"]))
        assert img.size == ex_image(ex).size
        gold = [ex.gold] if isinstance(ex.gold, str) else ex.gold
        assert list(row.reward_model["ground_truth"]) == gold
        kw = row.extra_info["tools_kwargs"]
        assert set(kw) == set(TOOLS) and kw["crop"]["create_kwargs"] == {"split": "train", "example_id": ex.id}
    tools = yaml.safe_load((out / "tool_config.yaml").read_text())["tools"]
    assert {t["tool_schema"]["function"]["name"] for t in tools} == set(TOOLS)
    assert all(t["class_name"] == "iapo.rl.verl_adapter.tool.IAPOVisualTool" for t in tools)


class _AgentData:  # what veRL passes as agent_data: per-trajectory extra_fields
    def __init__(self):
        self.extra_fields: dict = {}


def test_verl_loads_our_tools_and_runs_a_trajectory(exported):
    pytest.importorskip("verl.tools.base_tool")
    from verl.tools.tool_registry import initialize_tools_from_config

    world, out, _ = exported
    tools = {t.name: t for t in initialize_tools_from_config(str(out / "tool_config.yaml"))}
    assert set(tools) == set(TOOLS)
    ex = next(e for e in world.load("train")[:6] if e.valid_paths and e.valid_paths[0])
    call = ex.valid_paths[0][0]
    agent = _AgentData()

    async def run(name: str, args: dict):  # as ToolAgentLoop._call_tool: create, execute, release
        tool = tools[name]
        iid, _ = await tool.create(create_kwargs={"split": "train", "example_id": ex.id})
        try:
            return await tool.execute(iid, args, agent_data=agent)
        finally:
            await tool.release(iid)

    resp, reward, metrics = asyncio.run(run(call["name"], call["arguments"]))
    assert metrics["call_class"] == "valid_useful" and reward == 0.0
    assert resp.image and resp.image[0].size == ex_image(ex).size and resp.image[0] != ex_image(ex)
    _, _, again = asyncio.run(run(call["name"], call["arguments"]))
    assert again["call_class"] == "redundant"  # the trajectory's state survived create/release
    bad, _, cls = asyncio.run(run(call["name"], {"nonsense": ["x"]}))
    assert cls["call_class"] == "invalid_arguments" and bad.image is None and bad.text.startswith("error")


def test_verl_config_composes_and_validates():
    pytest.importorskip("verl.tools.base_tool")
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.config import omega_conf_to_dataclass

    with initialize_config_dir(config_dir=str(ROOT / "configs" / "verl"), version_base=None):
        cfg = compose(config_name="qwen2_5_vl_3b_outcome")
        with pytest.raises(ConfigCompositionException):  # unknown keys are refused: ours all exist
            compose(config_name="qwen2_5_vl_3b_outcome", overrides=["actor_rollout_ref.rollout.no_such_key=1"])
    assert cfg.algorithm.adv_estimator == "grpo" and cfg.actor_rollout_ref.rollout.multi_turn.enable
    assert type(omega_conf_to_dataclass(cfg.algorithm)).__name__ == "AlgoConfig"
    assert type(omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)).__name__ == "RolloutConfig"
    assert "ActorConfig" in type(omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)).__name__
    cfg.reward.custom_reward_function.path = str(ROOT / cfg.reward.custom_reward_function.path)
    fn = get_custom_reward_fn(cfg)
    assert fn("iapo_world/chart_value", "<answer>4</answer>", "4", {"metric": "exact"})["acc"] == 1.0
