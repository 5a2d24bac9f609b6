"""The metric modules' docstring examples are hand-computed cases: run them as tests."""

import doctest

import pytest

from iapo.metrics import basic, charxiv, tablevqa, wtq


@pytest.mark.parametrize("module", [basic, charxiv, tablevqa, wtq])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
