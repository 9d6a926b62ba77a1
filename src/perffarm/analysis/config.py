"""The ``analysis:`` section of a suite: the CI gate's limit and per-benchmark overrides.

```yaml
analysis:
  max_regression: 5%
  overrides:
    "pgbench-*": {min_effect: 3%}          # a tighter threshold for these
    "api": {direction: higher}              # the tool got the direction wrong
    "flaky-*": {ignore: true}               # never gate on these
```

``SuiteConfig`` validates the suite with ``analysis: AnalysisConfig | None = None``;
``perffarm check --suite FILE`` reads only this section (``load_analysis``), so the gate
works on a suite file whatever else it holds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from perffarm.analysis.compare import Override
from perffarm.model import Direction
from perffarm.yamlfile import YamlFileError, load_yaml, located, plain

_PERCENT = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(%?)\s*$")


def _fraction(value: Any) -> Any:
    """``5%`` or ``0.05`` → 0.05; a bare number above 1 is refused as ambiguous."""
    if isinstance(value, bool):
        raise ValueError("write a percentage like 5% (or a fraction, 0.05)")
    if isinstance(value, int | float):
        number, percent = float(value), False
    elif isinstance(value, str) and (match := _PERCENT.match(value)):
        number, percent = float(match.group(1)), bool(match.group(2))
    else:
        raise ValueError("write a percentage like 5% (or a fraction, 0.05)")
    if percent:
        number /= 100
    elif number > 1:
        raise ValueError(f"did you mean {value}%? Write 5% or 0.05")
    if number < 0:
        raise ValueError("cannot be negative")
    return number


Fraction = Annotated[float, BeforeValidator(_fraction)]


class BenchmarkOverride(BaseModel):
    """Settings for the benchmarks whose name matches the key (exact name or glob)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    min_effect: Fraction | None = Field(
        default=None,
        validation_alias=AliasChoices("min_effect", "max_regression"),
        description="Smallest change that counts for these benchmarks (e.g. 3%).",
    )
    direction: Literal["lower", "higher"] | None = Field(
        default=None, description="Which way is better, when the results say it wrongly."
    )
    ignore: bool = Field(default=False, description="Leave these benchmarks out of the gate.")

    def to_override(self) -> Override:
        return Override(
            min_effect=self.min_effect,
            direction=Direction(self.direction) if self.direction else None,
            ignore=self.ignore,
        )


class AnalysisConfig(BaseModel):
    """The suite's ``analysis:`` section."""

    model_config = ConfigDict(extra="forbid")

    max_regression: Fraction | None = Field(
        default=None, description="The CI gate's limit (default 5%); --max-regression wins."
    )
    overrides: dict[str, BenchmarkOverride] = Field(default_factory=dict)

    def override_map(self) -> dict[str, Override]:
        """For ``compare_runs``: in file order, the first matching glob wins."""
        return {pattern: item.to_override() for pattern, item in self.overrides.items()}


class AnalysisConfigError(ValueError):
    """The section cannot be used; the message names the file, line and key."""


def load_analysis(path: Path) -> AnalysisConfig:
    """Read the ``analysis:`` section of a suite file (the rest is not looked at)."""
    try:
        data = load_yaml(path)
    except YamlFileError as exc:
        raise AnalysisConfigError(str(exc)) from None
    if not isinstance(data, dict) or data.get("analysis") is None:
        return AnalysisConfig()
    try:
        return AnalysisConfig.model_validate(plain(data["analysis"]))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        raise AnalysisConfigError(
            located(path, data, ("analysis", *error["loc"]), message)
        ) from None
