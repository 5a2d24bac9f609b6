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


def test_missing_world_dir(tmp_path):
    r = iapo("world", "show", "--data", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not a world directory" in r.stderr and "Traceback" not in r.stderr
