"""`provenance.atomic`: the one way run files are written."""

from __future__ import annotations

import pytest

from iapo.provenance import atomic, write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic(path) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    with atomic(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_the_cpu_class_names_what_the_cpu_name_hides(tmp_path):
    import torch

    from iapo.provenance import _cpuinfo, environment

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 1\n\n"
        "processor\t: 1\nmodel name\t: other\n"
    )
    assert _cpuinfo(str(info)) == {"processor": "0", "model name": "AMD EPYC", "cpu family": "25", "model": "1"}
    assert _cpuinfo(str(tmp_path / "none")) == {}
    assert environment()["machine"]["cpu_class"].endswith(torch.backends.cpu.get_cpu_capability())
