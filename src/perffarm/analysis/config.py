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
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnalysisConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise AnalysisConfigError(f"{path}{where}: {problem}") from None
    if not isinstance(data, dict) or data.get("analysis") is None:
        return AnalysisConfig()
    section = data["analysis"]
    try:
        return AnalysisConfig.model_validate(_plain(section))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        keys = [str(part) for part in error["loc"]]
        line = _line_of(section, error["loc"]) or _line_of(data, ["analysis"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        where = f"{path}:{line}" if line else str(path)
        raise AnalysisConfigError(f"{where}: analysis.{'.'.join(keys)}: {message}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _line_of(node: Any, loc: Any) -> int | None:
    """The 1-based line of the deepest key of ``loc`` that ruamel knows."""
    line = None
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        try:
            line = node.lc.key(part)[0] + 1
        except (AttributeError, KeyError, TypeError):
            pass
        node = node[part]
    return line
