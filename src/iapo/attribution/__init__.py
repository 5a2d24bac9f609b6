"""Input attribution of a model turn, summed per input component.

- `ig`: Integrated Gradients w.r.t. the LM input embeddings (the method's definition) and the
  one-backward gradient x delta;
- `games`: exact component-level Shapley values and occlusion from forward passes;
- `episodes`: component shares of episodes' turns under one `AttributionSettings`;
- `regions`: where inside the images (the original's cells or chart values, through each tool's
  geometry) a turn's token attribution falls.
"""

from iapo.attribution.episodes import (
    ESTIMATORS,
    IG_REFERENCE,
    AttributionSettings,
    EstimatorSpec,
    TurnAttribution,
    attribute_episodes,
    attribute_passes,
    component_scores,
    describe,
    mean_shares,
    register,
    shares,
    target_turns,
    token_level,
)
from iapo.attribution.games import component_game, shapley_from_values
from iapo.attribution.ig import (
    RULES,
    Baseline,
    EmbeddedBatch,
    IGResult,
    Rule,
    baseline_embeddings,
    embed,
    gradient_times_delta,
    integrated_gradients,
    quadrature,
    sequence_logprob,
)
from iapo.attribution.regions import (
    OTHER,
    attribute_regions,
    components_and_regions,
    mean_region_shares,
    region_shares,
    regions_of,
)

__all__ = [
    "ESTIMATORS",
    "IG_REFERENCE",
    "OTHER",
    "RULES",
    "AttributionSettings",
    "Baseline",
    "EmbeddedBatch",
    "EstimatorSpec",
    "IGResult",
    "Rule",
    "TurnAttribution",
    "attribute_episodes",
    "attribute_passes",
    "attribute_regions",
    "baseline_embeddings",
    "component_game",
    "component_scores",
    "components_and_regions",
    "describe",
    "embed",
    "gradient_times_delta",
    "integrated_gradients",
    "mean_region_shares",
    "mean_shares",
    "quadrature",
    "region_shares",
    "regions_of",
    "register",
    "sequence_logprob",
    "shapley_from_values",
    "shares",
    "target_turns",
    "token_level",
]
