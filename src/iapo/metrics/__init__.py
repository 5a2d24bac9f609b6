"""Answer metrics: the world's (exact / relaxed / boolean) and, in submodules, the official
benchmark metrics."""

from iapo.metrics.basic import boolean_match, exact_match, normalize, relaxed_match, score, to_number

__all__ = ["boolean_match", "exact_match", "normalize", "relaxed_match", "score", "to_number"]
