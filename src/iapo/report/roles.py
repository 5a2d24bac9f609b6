"""Which methods a report compares, with one home for the defaults: every method against
`baseline`, the attribution variants against `proposed`, the verdict on `primary` alone (named in
the experiment config before the grid runs, written to experiment.json with the rest of it),
the `secondary` contrasts as a Holm family of their own; every other comparison is exploratory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError

from iapo.config import StrictModel
from iapo.errors import ConfigError

BASELINE, PROPOSED = "outcome", "iapo"


class ReportRoles(StrictModel):
    baseline: str = Field(BASELINE, description="the method every other is compared with")
    proposed: str = Field(PROPOSED, description="the method the ablation column compares its variants with")
    primary: tuple[str, str] | None = Field(
        None,
        description="the pre-registered primary contrast [A, B]: the verdict tests A - B alone, with the zoo as "
        "the unit; None: [proposed, baseline]",
    )
    secondary: list[tuple[str, str]] = Field(
        default_factory=list,
        description="pre-registered secondary contrasts [[A, B], ...]: Holm-adjusted as their own family; every "
        "other comparison is exploratory (Holm-adjusted apart)",
    )
    measure: Literal["accuracy", "decoy_rate"] = Field(
        "accuracy",
        description="the datum of the primary and secondary contrasts: each run's test accuracy, or its decoy-call "
        "rate (the share of its valid calls on questions that name a distractor that call the distractor; lower is "
        "better); with decoy_rate every accuracy comparison is exploratory",
    )

    @property
    def primary_contrast(self) -> tuple[str, str]:
        return self.primary or (self.proposed, self.baseline)

    def named(self) -> dict[str, str]:
        """Every role that names a method: {"baseline": .., "proposed": .., "primary[0]": .., ...}."""
        out = {"baseline": self.baseline, "proposed": self.proposed}
        out |= {f"primary[{i}]": n for i, n in enumerate(self.primary or ())}
        out |= {f"secondary[{i}][{j}]": n for i, pair in enumerate(self.secondary) for j, n in enumerate(pair)}
        return out

    @classmethod
    def of(cls, experiment: dict) -> ReportRoles:
        """The roles an experiment's record (experiment.json) names; the defaults where it has none.

        >>> ReportRoles.of({}).primary_contrast, ReportRoles.of({"config": {"report": {"baseline": "b"}}}).baseline
        (('iapo', 'outcome'), 'b')
        """
        raw = (experiment.get("config") or {}).get("report") or {}
        try:  # a key another version wrote and this one does not know is not a role: left out
            return cls.model_validate({k: v for k, v in raw.items() if k in cls.model_fields})
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise ConfigError(f"experiment.json: report.{where}: {err['msg']} (got {raw})") from None
