"""The `iapo` command line, run as a user would (subprocess)."""

from __future__ import annotations

import subprocess
import sys

from iapo.world import World


def iapo(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iapo.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_world_cli_end_to_end(tmp_path, repo_root):
    out = tmp_path / "w"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("train: 50\nval: 10\ntest_per_family: 5\nood: 5\n")
    r = iapo("world", "--out", str(out), "--config", str(cfg), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert World(out).manifest["splits"]["train"] == 50
    r = iapo("world", "--out", str(out), "--config", str(cfg))
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    png = tmp_path / "g.png"
    r = iapo("world", "show", "--data", str(out), "--out", str(png), "--n", "3")
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_wrong_config_key_is_one_clear_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train: 5\nin_dist:\n  table_rowz: [3, 4]\n")
    r = iapo("world", "--out", str(tmp_path / "w"), "--config", str(cfg))
    assert r.returncode == 2
    assert "bad.yaml: in_dist.table_rowz: unknown key" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "w").exists() and not (tmp_path / "w.partial").exists()


def test_train_engine_override_is_validated(tmp_path, repo_root):
    r = iapo("train", "--config", str(repo_root / "configs" / "outcome.yaml"), "--out", str(tmp_path / "r"),
             "--world", str(tmp_path), "--engine", "vllm")  # fmt: skip
    assert r.returncode == 2 and "engine" in r.stderr and "'own' or 'trl'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "r").exists()


def test_missing_world_dir(tmp_path):
    r = iapo("world", "show", "--data", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not a world directory" in r.stderr and "Traceback" not in r.stderr


def test_eval_on_benchmark_fixtures_with_a_tiny_saved_model(tiny_models, tmp_path, shared_fixtures):
    import json

    from iapo.models.build import save

    model, proc = tiny_models["student"]
    mdir = save(model, proc, tmp_path / "m")
    shared = shared_fixtures
    for bench in ("wtq", "tabfact"):
        out = tmp_path / f"{bench}.json"
        r = iapo("eval", "--model", str(mdir), "--bench", bench, "--data", str(shared / bench),
                 "--cache", str(tmp_path / "cache"), "--limit", "4", "--max-calls", "1", "--out", str(out))  # fmt: skip
        assert r.returncode == 0, r.stderr
        res = json.loads(out.read_text())
        assert res["summary"]["benchmark"] == bench and res["summary"]["n"] == 4
        assert res["summary"]["skipped"] == 0 and len(res["episodes"]) == 4
        assert "accuracy" in r.stdout


def test_attribute_cli_writes_a_heat_map(tiny_models, small_world, tmp_path):
    import json

    from iapo.models.build import save

    model, proc = tiny_models["student"]
    mdir = save(model, proc, tmp_path / "m")
    ex = next(e for e in small_world.load("val") if e.valid_paths)
    call = ex.valid_paths[0][0]
    from iapo.tools.syntax import format_answer, format_tool_call

    ep = {
        "id": ex.id,
        "split": "val",
        "turns": [format_tool_call(call["name"], call["arguments"]), format_answer(ex.answer)],
    }
    (tmp_path / "ep.json").write_text(json.dumps(ep))
    png = tmp_path / "a.png"
    r = iapo("attribute", "--model", str(mdir), "--episode", str(tmp_path / "ep.json"),
             "--world", str(small_world.root), "--out", str(png), "--n-steps", "4")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    for comp in ("system", "tool_spec", "question", "image", "tool_output"):
        assert comp in r.stdout
    r = iapo(
        "attribute", "--model", str(mdir), "--episode", str(tmp_path / "nope.json"), "--world", str(small_world.root)
    )
    assert r.returncode == 2 and "not found" in r.stderr


def test_eval_charxiv_with_rule_grader_and_a_local_judge(tiny_models, tmp_path):
    import json
    from pathlib import Path

    from iapo.models.build import save

    model, proc = tiny_models["student"]
    mdir = save(model, proc, tmp_path / "m")
    data = Path(__file__).resolve().parent / "fixtures" / "charxiv"
    for extra, grader in (([], "rule-based"), (["--judge", str(mdir)], f"judge {mdir}")):
        out = tmp_path / f"cx{len(extra)}.json"
        r = iapo("eval", "--model", str(mdir), "--bench", "charxiv", "--data", str(data),
                 "--max-calls", "1", "--out", str(out), *extra)  # fmt: skip
        assert r.returncode == 0, r.stderr
        s = json.loads(out.read_text())["summary"]
        assert s["grader"] == grader and s["n"] == 9 and s["tools_unavailable"] == 9
        assert s["skipped"] == 3 and s["withheld"] == 1  # missing image, bad category, withheld test file
        if extra:
            assert 0 <= s["judge_unparsed"] <= 9


def test_the_grpo_progress_bar_shows_the_rollout_accuracy():
    """The bar reads the step row's own metric names (it showed `acc nan` after 0.2 renamed them)."""
    from rich.progress import Progress

    from iapo.cli import _Bars

    with Progress(disable=True) as bar:
        bars = _Bars(bar)
        bars("iapo/seed0", 3, 10, {"reward/total": 0.5, "rollout/accuracy": 0.25})
        (task,) = bar.tasks
    assert "acc 0.25" in task.description and "nan" not in task.description


def test_progress_goes_to_a_log_file_as_timestamped_lines():
    """Under nohup a bar draws nothing until it ends: a non-terminal console gets one line at each
    quarter of a stage and one for each task a pool finishes, named."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from iapo.cli import _Bars

    file = io.StringIO()
    with Progress(console=Console(file=file, force_terminal=False, width=200)) as bar:
        bars = _Bars(bar)
        for step in range(1, 9):
            bars("iapo/seed0", step, 8, {"reward/total": 0.5, "rollout/accuracy": 0.25})
        bars("GRPO runs (2 workers)", 1, 3, {"finished": "iapo/zoo1/seed2"})
        bars("GRPO runs (2 workers)", 1, 3, {"finished": "zoo 3"})
    lines = [ln for ln in file.getvalue().splitlines() if ln[:2] == "20"]  # the timestamped ones
    assert [ln.split()[3] for ln in lines[:4]] == ["2/8", "4/8", "6/8", "8/8"]
    assert "acc 0.25" in lines[0] and "(iapo/zoo1/seed2 done)" in lines[4] and "(zoo 3 done)" in lines[5]
    assert len(lines) == 6


def test_compare_and_plan_read_a_runs_csv(tmp_path):
    rows = ["method,zoo,seed,accuracy,train_minutes"]
    for z in range(6):  # 6 zoos: the least where the exact sign-flip test can reject at 5%
        for s in range(3):
            rows += [f"a,{z},{s},{0.30 + 0.01 * (z + s)},2.0", f"b,{z},{s},{0.10 + 0.01 * s},1.0"]
    (tmp_path / "runs.csv").write_text("\n".join(rows) + "\n")
    out = iapo("compare", str(tmp_path / "runs.csv"), "--primary", "a", "b")
    assert out.returncode == 0, out.stderr
    assert "a beats b (primary contrast)" in out.stdout and "6 zoos as the unit" in out.stdout
    out = iapo("plan", str(tmp_path), "--a", "a", "--b", "b", "--zoos", "2", "--zoos", "6", "--seeds", "3")
    assert out.returncode == 0, out.stderr
    assert "| 6 | 3 | 18 |" in out.stdout and "1.5 min per run" in out.stdout
    bad = iapo("compare", str(tmp_path), "--primary", "a", "nope")
    assert bad.returncode == 2 and "not in the runs: nope" in bad.stderr
