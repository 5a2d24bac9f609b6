"""Typed configs: pydantic models that refuse unknown keys, loaded from YAML.

A wrong key or value is reported as one line naming the file and the dotted key path, e.g.
`configs/iapo.yaml: grpo.group_size: Input should be greater than or equal to 2`.

A YAML file may start from another: `extends: grpo.yaml` (relative to the file) reads that one
first and lays this one's keys over it, mappings merged key by key (the method configs share one
GRPO block that way). A mapping tagged `!replace` replaces the base's instead (a grid that
extends a recipe runs only its own `methods: !replace`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from iapo.errors import ConfigError


class StrictModel(BaseModel):
    """Base of every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


M = TypeVar("M", bound=BaseModel)


class Replace(dict):
    """A mapping tagged `!replace`: in a file that extends another, it replaces the base's."""


class YamlLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads `!replace` mappings."""


YamlLoader.add_constructor("!replace", lambda loader, node: Replace(loader.construct_mapping(node, deep=True)))


def format_validation_error(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def build(model: type[M], data: dict[str, Any], source: str = "config") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def read_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML config file, with its `extends:` chain resolved."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=YamlLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys")
    base = data.pop("extends", None)
    if base is None:
        return merged({}, data)
    if not isinstance(base, str):
        raise ConfigError(f"{path}: extends: must be a path to another YAML file")
    parent = (path.parent / base).resolve()
    if parent in _seen or parent == path.resolve():
        raise ConfigError(f"{path}: extends: {base} extends this file again (a cycle)")
    return merged(read_yaml(parent, (*_seen, path.resolve())), data)


def merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: mappings merge key by key (a `Replace` mapping replaces), anything
    else replaces. The result holds plain dicts only."""
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict):
            v = merged(out[k] if isinstance(out.get(k), dict) and not isinstance(v, Replace) else {}, v)
        out[k] = v
    return out


def load_yaml(path: str | Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Read `path` into `model`, with optional dotted-key overrides (`{"grpo.steps": 10}`)."""
    data = read_yaml(path)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return build(model, data, str(path))


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    d = data
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"override {key}: {p} is not a mapping")
    d[parts[-1]] = value


def changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += changed_keys(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out
