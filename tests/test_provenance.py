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
