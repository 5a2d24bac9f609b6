"""Every YAML under configs/ (top level) and research/ parses into the typed config it is written for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from iapo.config import YamlLoader, build, load_yaml, read_yaml
from iapo.experiment import ExperimentConfig
from iapo.run import TrainConfig
from iapo.supervised.finetune import FinetuneConfig
from iapo.supervised.zoo import ZooConfig
from iapo.world import WorldConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    *sorted((ROOT / "configs").glob("*.yaml")),
    *sorted((ROOT / "configs" / "qwen2_5_vl_3b").glob("*.yaml")),
    *sorted((ROOT / "research").rglob("*.yaml")),
]


def kind(data: dict) -> type:
    if "methods" in data or ("world" in data and "zoo" in data):  # a grid, or a recipe that grids extend
        return ExperimentConfig
    if "method" in data or "grpo" in data:
        return TrainConfig
    if "roles" in data:
        return ZooConfig
    if "student" in data and "sft" in data:
        return FinetuneConfig
    return WorldConfig


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_parses(path):
    data = read_yaml(path)
    model = kind(data)
    if model is ExperimentConfig and "methods" not in data:  # a recipe: complete it with one method
        methods = {"outcome": {}, "iapo": {"teacher": "teacher", "attribution": {}}}
        cfg = build(ExperimentConfig, {**data, "methods": methods}, str(path))
    else:
        cfg = load_yaml(path, model)
    assert isinstance(cfg, model)


def test_research_configs_extend_the_sparse_recipe_instead_of_copying_it():
    """The sparse regime's world and zoo are written once (research/sparse_recipe_0.2.yaml for the
    0.2 grids, configs/sparse.yaml since 0.2.2); a research grid that runs them extends one."""
    recipes = [ROOT / "research" / "sparse_recipe_0.2.yaml", ROOT / "configs" / "sparse.yaml"]
    worlds = [read_yaml(r)["world"] for r in recipes]
    for path in sorted((ROOT / "research").rglob("*.yaml")):
        raw = yaml.load(path.read_text(), Loader=YamlLoader) or {}
        if path not in recipes and raw.get("world") in worlds:
            raise AssertionError(f"{path.relative_to(ROOT)} copies the sparse world: extend a recipe instead")


def test_research_configs_state_the_attribution_level_they_ran():
    """A research grid reruns what it ran from its YAML: every attribution term in research/ states
    `regions`, whose default became 1 (components + regions) in 0.3.1; the grids before ran 0."""
    for path in sorted((ROOT / "research").rglob("*.yaml")):
        raw = yaml.load(path.read_text(), Loader=YamlLoader) or {}
        methods = {**(raw.get("methods") or {}), "method": raw.get("method")}
        for name, m in methods.items():
            if isinstance(m, dict) and isinstance(m.get("attribution"), dict):
                assert "regions" in m["attribution"], f"{path.relative_to(ROOT)}: {name}.attribution: state regions"


@pytest.mark.parametrize(
    ("base", "grid"),
    [("research/six_family/config.yaml", "research/six_family/grid.yaml"),
     ("configs/quickstart.yaml", "research/quickstart_grid/config.yaml")],
)  # fmt: skip
def test_grid_reuses_a_finished_base_run(base, grid):
    """A grid config says pointing --out at a finished run of its base reuses the world, zoo and
    runs: that holds only while the settings that name those directories agree."""
    six = load_yaml(ROOT / base, ExperimentConfig)
    grid = load_yaml(ROOT / grid, ExperimentConfig)
    assert grid.world == six.world and grid.grpo == six.grpo and grid.eval == six.eval
    assert grid.zoo.pretrain == six.zoo.pretrain
    assert {r: grid.zoo.roles[r] for r in six.zoo.roles} == six.zoo.roles
    assert {m: grid.methods[m] for m in six.methods} == six.methods


def test_method_configs_share_one_grpo_block():
    """configs/{outcome,exact_match,trm,iapo}.yaml extend configs/grpo.yaml: one budget, four rewards."""
    base = load_yaml(ROOT / "configs" / "grpo.yaml", TrainConfig)
    for name in ("outcome", "exact_match", "trm", "iapo"):
        cfg = load_yaml(ROOT / "configs" / f"{name}.yaml", TrainConfig)
        assert cfg.grpo == base.grpo and cfg.eval == base.eval and cfg.seed == base.seed
        assert "\ngrpo:" not in (ROOT / "configs" / f"{name}.yaml").read_text()  # not copied
    assert load_yaml(ROOT / "configs" / "iapo.yaml", TrainConfig).method.attribution is not None


def test_extends_merges_mappings_and_names_the_broken_file(tmp_path):
    from iapo.errors import ConfigError

    (tmp_path / "base.yaml").write_text("grpo: {steps: 5, lr: 0.1}\nseed: 3\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ngrpo: {steps: 7}\n")
    cfg = load_yaml(tmp_path / "child.yaml", TrainConfig)
    assert (cfg.grpo.steps, cfg.grpo.lr, cfg.seed) == (7, 0.1, 3)  # merged key by key
    (tmp_path / "loop.yaml").write_text("extends: loop2.yaml\n")
    (tmp_path / "loop2.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        read_yaml(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        read_yaml(tmp_path / "orphan.yaml")


def test_a_run_has_one_seed():
    """grpo.seed was silently replaced by the run's seed; set apart from it, it is refused."""
    from iapo.experiment import ExperimentConfig
    from iapo.run import TrainConfig

    assert TrainConfig.model_validate({"seed": 3, "grpo": {"seed": 3}}).seed == 3
    with pytest.raises(ValueError, match="set seed: 5 instead"):
        TrainConfig.model_validate({"seed": 0, "grpo": {"seed": 5}})
    with pytest.raises(ValueError, match=r"remove grpo\.seed"):
        ExperimentConfig.model_validate({"grpo": {"seed": 1}, "methods": {"outcome": {}, "iapo": {}}})


def test_every_config_field_says_what_it_is():
    """Every field of every config model has a description (what `--help`, the docs and a
    reader of a run.json see)."""
    import importlib
    import inspect
    import pkgutil

    from pydantic import BaseModel

    import iapo

    missing = []
    for info in pkgutil.walk_packages(iapo.__path__, "iapo."):
        try:
            mod = importlib.import_module(info.name)
        except ImportError:  # optional integrations (veRL)
            continue
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls.__module__ == mod.__name__:
                missing += [f"{name}.{f}" for f, field in cls.model_fields.items() if not field.description]
    assert not missing, f"fields without a description: {missing}"


def test_replace_swaps_a_mapping_instead_of_merging_it(tmp_path):
    (tmp_path / "base.yaml").write_text("methods: {outcome: {outcome: 1.0}, iapo: {format: 0.1}}\nseeds: [0]\n")
    (tmp_path / "merge.yaml").write_text("extends: base.yaml\nmethods: {bonus: {tool_bonus: 0.5}}\n")
    (tmp_path / "swap.yaml").write_text("extends: base.yaml\nmethods: !replace\n  bonus: {tool_bonus: 0.5}\n")
    assert set(read_yaml(tmp_path / "merge.yaml")["methods"]) == {"outcome", "iapo", "bonus"}
    swapped = read_yaml(tmp_path / "swap.yaml")
    assert swapped == {"methods": {"bonus": {"tool_bonus": 0.5}}, "seeds": [0]}
    assert type(swapped["methods"]) is dict  # plain mappings: records dump as JSON and YAML alike


def test_a_secondary_contrast_names_methods_of_the_grid():
    from iapo.errors import ConfigError

    base = {"methods": {"outcome": {}, "iapo": {"attribution": {"target": "random"}}}}
    ok = build(ExperimentConfig, {**base, "report": {"secondary": [["iapo", "outcome"], ["iapo", "sft"]]}})
    assert ok.report.secondary == [("iapo", "outcome"), ("iapo", "sft")]
    with pytest.raises(ConfigError, match=r"report.secondary\[0\]\[1\]: 'bonus' is not one of the methods"):
        build(ExperimentConfig, {**base, "report": {"secondary": [["iapo", "bonus"]]}})


def test_the_student_is_a_zoo_role():
    from iapo.errors import ConfigError

    base = {"methods": {"outcome": {}, "iapo": {}}}
    assert build(ExperimentConfig, {**base, "student": "teacher"}).student == "teacher"
    with pytest.raises(ConfigError, match=r"student: 'pupil' is not a zoo role \(teacher, student"):
        build(ExperimentConfig, {**base, "student": "pupil"})
