"""Loading a suite: YAML + ``secure.yaml`` beside it + ``PERFFARM_*`` environment overrides.

Every mistake is reported as one line naming the file, the line and the key, before anything
runs. Secrets from ``secure.yaml`` are only ever expanded at the moment a command needs
them; the suite keeps the placeholders, so they never reach the run document.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from perffarm import redact
from perffarm.agent.build import BuildConfig
from perffarm.agent.measurement import (
    Measurement,
    MeasurementOptions,
    UnknownMeasurementType,
    load_measurement_type,
)
from perffarm.analysis.config import AnalysisConfig
from perffarm.console import UsageError
from perffarm.yamlfile import YamlFileError, dotted, line_of, load_yaml, plain

SECURE_FILE_NAME = "secure.yaml"
ENV_PREFIX = "PERFFARM_"
# Top-level suite keys that PERFFARM_<KEY> may override (values parsed as YAML scalars).
ENV_OVERRIDABLE = ("project", "tag", "machine", "repeat", "warmup", "description")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}")
# Namespaces a placeholder may use; `build` only exists once a build has run.
_NAMESPACES = ("secure", "env", "vars", "build")


class SamplerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval: float = Field(default=1.0, gt=0, le=3600)


class MeasurementEntry(BaseModel):
    """The keys every measurement has; the rest are the type's own options."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/-]+$")
    type: str = Field(min_length=1)


class SuiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str = Field(min_length=1)
    tag: str | None = None
    description: str | None = None
    machine: str | None = Field(default=None, description="Machine name; default: host name.")
    repeat: int = Field(default=5, ge=1, le=1_000_000)
    warmup: int = Field(default=1, ge=0, le=1_000_000)
    fingerprint: list[str] | None = Field(
        default=None, description="Environment keys (cpu.model, ...) that make runs comparable."
    )
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    vars: dict[str, Any] = Field(default_factory=dict)
    build: BuildConfig | None = None
    measurements: list[MeasurementEntry] = Field(min_length=1)
    analysis: AnalysisConfig | None = None


@dataclass
class PlannedMeasurement:
    """One measurement of the suite, its options checked against its type."""

    name: str
    type_name: str
    cls: type[Measurement]
    options: MeasurementOptions
    raw_options: dict[str, Any]


@dataclass
class Suite:
    path: Path
    config: SuiteConfig
    measurements: list[PlannedMeasurement]
    secrets: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def machine(self) -> str:
        return self.config.machine or socket.gethostname()

    def secret_values(self) -> list[str]:
        """The values of ``secure.yaml`` that are hidden, longest first (``redact``'s rule:
        text long and uncommon enough to be a secret)."""
        return redact.secret_values(self.secrets)

    def renderer(self, extra: Mapping[str, Any] | None = None) -> Callable[[str], str]:
        namespaces: dict[str, Any] = {
            "secure": self.secrets,
            "env": dict(os.environ),
            "vars": self.config.vars,
            **(extra or {}),
        }
        return lambda text: render(text, namespaces)


def render(text: str, namespaces: Mapping[str, Any]) -> str:
    """Replace ``{{ ns.key }}`` placeholders; an unknown one is an error naming it only."""

    def substitute(match: re.Match[str]) -> str:
        value: Any = namespaces
        for part in match.group(1).split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise UsageError(f"unknown placeholder {{{{ {match.group(1)} }}}}")
            value = value[part]
        if isinstance(value, Mapping | list):
            raise UsageError(f"placeholder {{{{ {match.group(1)} }}}} is not a single value")
        return str(value)

    return _PLACEHOLDER.sub(substitute, text)


def load_suite(
    path: Path | str,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Suite:
    """Read and check a suite; raise UsageError with ``file:line: key: problem``."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such suite file")
    data = _load_yaml(path)
    if not isinstance(data, Mapping):
        raise UsageError(f"{path}:1: a suite is a mapping of keys (project, measurements, ...)")

    secrets = _load_secrets(path.parent / SECURE_FILE_NAME)
    env_values = _environment_overrides(os.environ if environ is None else environ)
    merged = dict(data)
    merged.update(env_values)
    merged.update({key: value for key, value in (overrides or {}).items() if value is not None})

    try:
        config = SuiteConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = first["loc"][0] if first["loc"] else None
        if key in env_values and key not in (overrides or {}):
            variable = ENV_PREFIX + str(key).upper()
            raise UsageError(f"{variable}={env_values[key]!r}: {first['msg']}") from None
        raise UsageError(_describe(path, data, exc, SuiteConfig)) from None

    measurements: list[PlannedMeasurement] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(config.measurements):
        node = data["measurements"][index]
        where = ("measurements", index)
        if entry.name in seen:
            raise UsageError(
                f"{path}:{_line(data, (*where, 'name'))}: measurements[{index}].name: "
                f"{entry.name!r} is already the name of measurements[{seen[entry.name]}]"
            )
        seen[entry.name] = index
        try:
            cls = load_measurement_type(entry.type)
        except UnknownMeasurementType as exc:
            raise UsageError(
                f"{path}:{_line(data, (*where, 'type'))}: measurements[{index}].type: {exc}"
            ) from None
        raw = {k: plain(v) for k, v in node.items() if k not in ("name", "type")}
        try:
            options = cls.Options.model_validate(raw)
        except ValidationError as exc:
            raise UsageError(_describe(path, data, exc, cls.Options, prefix=where)) from None
        _check_placeholders(path, data, raw, where, secrets, config.vars, config.build is not None)
        measurements.append(PlannedMeasurement(entry.name, entry.type, cls, options, raw))
    return Suite(path=path, config=config, measurements=measurements, secrets=secrets)


def _load_yaml(path: Path) -> Any:
    try:
        return load_yaml(path)
    except YamlFileError as exc:
        raise UsageError(str(exc)) from None


def _load_secrets(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = _load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        # Never echo the content: it is secret.
        raise UsageError(f"{path}:1: secure.yaml must be a mapping of names to secret values")
    return plain(data)


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """``PERFFARM_<KEY>`` values, as text: pydantic turns "9" into 9 where a number is due."""
    return {
        key: environ[ENV_PREFIX + key.upper()]
        for key in ENV_OVERRIDABLE
        if environ.get(ENV_PREFIX + key.upper())
    }


def _check_placeholders(
    path: Path,
    data: Mapping[str, Any],
    raw: dict[str, Any],
    where: tuple[Any, ...],
    secrets: dict[str, Any],
    variables: dict[str, Any],
    has_build: bool,
) -> None:
    """Refuse a placeholder that can never be filled, before anything runs."""
    known = {"secure": secrets, "vars": variables}

    def visit(value: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, (*loc, index))
        elif isinstance(value, str):
            for match in _PLACEHOLDER.finditer(value):
                name = match.group(1)
                namespace, _, rest = name.partition(".")
                problem = None
                if namespace not in _NAMESPACES:
                    problem = (
                        f"unknown placeholder {{{{ {name} }}}} (use one of: "
                        + ", ".join(f"{name}.NAME" for name in _NAMESPACES)
                        + ")"
                    )
                elif namespace == "build" and not has_build:
                    problem = f"{{{{ {name} }}}} needs a `build:` section in the suite"
                elif namespace in known:
                    node: Any = known[namespace]
                    for part in rest.split("."):
                        if not isinstance(node, Mapping) or part not in node:
                            source = SECURE_FILE_NAME if namespace == "secure" else "vars"
                            choices = sorted(node) if isinstance(node, Mapping) else []
                            problem = f"{{{{ {name} }}}} is not defined in {source}" + _suggest(
                                part, choices
                            )
                            break
                        node = node[part]
                if problem:
                    line = _line(data, loc)
                    raise UsageError(f"{path}:{line}: {dotted(loc)}: {problem}")

    visit(raw, where)


def _describe(
    path: Path,
    data: Mapping[str, Any],
    exc: ValidationError,
    model: type[BaseModel],
    prefix: tuple[Any, ...] = (),
) -> str:
    """The first validation error as ``file:line: key: problem`` (with a did-you-mean)."""
    # A misspelt key also makes the real key "missing": name the misspelling first.
    error = sorted(exc.errors(), key=lambda item: item["type"] != "extra_forbidden")[0]
    loc = (*prefix, *error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        owner = _model_at(model, tuple(error["loc"][:-1]))
        known = list(owner.model_fields) if owner else []
        if prefix and owner is model and model is not SuiteConfig:
            known += ["name", "type"]
        message = f"unknown key{_suggest(key, known)}"
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
    line = _line(data, loc if kind != "missing" else loc[:-1])
    return f"{path}:{line}: {dotted(loc)}: {message}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the keys at ``loc`` (through lists and optionals)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = current.model_fields.get(part) if _is_model(current) else None
        if field_info is None:
            return None
        current = _inner_model(field_info.annotation)
        if current is None:
            return None
    return current if _is_model(current) else None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _inner_model(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    for argument in typing.get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _line(data: Any, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest part of ``loc`` that exists in the YAML (else 1)."""
    return line_of(data, loc) or 1
