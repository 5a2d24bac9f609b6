"""Data flows one way: config -> world / data -> models -> rollout -> rewards -> update -> eval ->
report, with the command line and experiment runner on top. No module imports from a later
stage (read from the source with `ast`, lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "iapo"

# stage of each top-level module or package of iapo; a module may import its own stage or earlier
STAGES = {
    "errors": 0, "config": 0, "stats": 0, "calibration": 0, "provenance": 0, "store": 0, "ledger": 0, "steps": 0,
    "tools": 1, "world": 1, "data": 1, "answers": 1,  # the environment, its data and answer rules
    "models": 2,
    "rollout": 3,
    "attribution": 4, "rewards": 4,
    "supervised": 5, "rl": 5,
    "eval": 6,
    "report": 7, "viz": 7,
    "run": 8, "experiment": 8, "cli": 8, "__main__": 8, "__init__": 0,
}  # fmt: skip


def stage_of(module: str) -> tuple[str, int]:
    top = module.split(".")[0]
    return top, STAGES[top]


def imports(path: Path) -> set[str]:
    """iapo modules imported anywhere in the file, relative to the package (`rollout.loop`)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("iapo"):
            out.add(node.module.removeprefix("iapo").lstrip(".") or "__init__")
        elif isinstance(node, ast.Import):
            out.update(a.name.removeprefix("iapo.") for a in node.names if a.name.startswith("iapo."))
    return out


def edges() -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(PKG).with_suffix("")).replace("/", "."), m)
        for p in sorted(PKG.rglob("*.py"))
        for m in imports(p)
    ]


def test_every_module_has_a_stage():
    tops = {p.relative_to(PKG).parts[0].removesuffix(".py") for p in PKG.rglob("*.py")}
    assert tops <= set(STAGES), tops - set(STAGES)


def test_no_import_goes_back_up_the_data_flow():
    back = [(a, b) for a, b in edges() if stage_of(b)[1] > stage_of(a)[1]]
    assert not back, "\n".join(f"{a} (stage {stage_of(a)[1]}) imports {b} (stage {stage_of(b)[1]})" for a, b in back)


def test_the_checker_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from iapo.eval.evaluate import evaluate\n    import iapo.report\n")
    assert imports(f) == {"eval.evaluate", "report"}
