"""Docstring examples are hand-computed cases (metrics, the basic rewards, the report's
statistics, the tools' geometry): run them as tests."""

import doctest

import pytest

from iapo import stats
from iapo.metrics import basic, charxiv, tablevqa, wtq
from iapo.rewards import basic as basic_rewards
from iapo.tools import layout, ops


@pytest.mark.parametrize("module", [basic, charxiv, tablevqa, wtq, basic_rewards, stats, layout, ops])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
