"""The report's intervals and tests: bounded by construction, and zoo-aware."""

from __future__ import annotations

import numpy as np

from iapo.stats import bootstrap_ci, bootstrap_p, percentile_ci


def test_bootstrap_intervals_stay_in_the_metric_range():
    rng = np.random.default_rng(0)
    m = (rng.random((3, 40)) < 0.05).astype(float)  # 3 seeds near 0%: a t-interval would go below 0
    c = bootstrap_ci([m])
    assert 0.0 <= c.low <= c.mean <= c.high <= 1.0
    steps = percentile_ci([2, 30, 4])
    assert 2 <= steps.low <= steps.high <= 30  # never `5 [-3, 12]`


def test_a_zoo_that_carries_the_result_widens_the_zoo_aware_interval():
    """Two zoos: on zoo 0 every run is right on every question, on zoo 1 none is. Treating the
    8 runs as independent hides that the result hangs on which zoo was drawn."""
    m = np.vstack([np.ones((4, 30)), np.zeros((4, 30))])
    zoos = [0] * 4 + [1] * 4
    flat, clustered = bootstrap_ci([m]), bootstrap_ci([m], zoos)
    assert flat.mean == clustered.mean == 0.5
    assert (clustered.low, clustered.high) == (0.0, 1.0) and flat.low > 0.1  # [0, 100] vs [12.5, 87.5]
    # a paired difference that only one zoo shows is not significant once zoos are resampled
    d = np.vstack([np.full((4, 30), 0.5), np.zeros((4, 30))])
    assert bootstrap_p([d]) < 0.01 and bootstrap_p([d], zoos) > 0.05
