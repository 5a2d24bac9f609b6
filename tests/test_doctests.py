"""Docstring examples are hand-computed cases (answer checking, the basic rewards, the report's
statistics, the tools' geometry): run them as tests."""

import doctest

import pytest

from iapo import stats
from iapo.answers import charxiv, match, tablevqa, wtq
from iapo.rewards import basic as basic_rewards
from iapo.tools import layout, ops


@pytest.mark.parametrize("module", [match, charxiv, tablevqa, wtq, basic_rewards, stats, layout, ops])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
