"""The run document: one JSON document per run, the contract between every part of perffarm.

It is the wire format (agent -> server), the export format, and what the local store keeps.
Every change to it is versioned through ``SCHEMA_VERSION``; readers refuse a version they do
not know instead of guessing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = "perffarm.run/1"

# Parameter values stay scalar so that a series key (params included) is hashable and
# comparable across runs and databases; a number is finite, so that every reader can
# compare it (NaN is not even equal to itself).
ParamValue = str | int | float | bool


def _finite_params(params: dict[str, ParamValue]) -> dict[str, ParamValue]:
    for name, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}: params must be finite numbers (no NaN or infinity)")
    return params


Params = Annotated[dict[str, ParamValue], AfterValidator(_finite_params)]
JsonValue = Any
# Every number of the document's own fields is finite: JSON has no NaN or infinity, so a
# non-finite figure would be written as null and the document would not read back.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    """Unknown fields are refused: a typo in an uploaded document is an error, not lost data."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Direction(StrEnum):
    """Which way is better for a metric."""

    LOWER = "lower"
    HIGHER = "higher"


class RunStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    BUILD_FAILED = "build-failed"


class MeasurementStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class Source(_Strict):
    """Where the code under test came from."""

    repository: str | None = None
    branch: str | None = None
    commit: str | None = None
    commit_time: AwareDatetime | None = None
    dirty: bool | None = None
    subject: str | None = Field(default=None, description="First line of the commit message.")


class ConfidenceInterval(_Strict):
    low: Finite
    high: Finite
    level: Finite = 0.95


class Summary(_Strict):
    """Statistics computed from a result's samples (see perffarm.analysis.statistics)."""

    n: int = Field(ge=0)
    mean: Finite | None = None
    median: Finite | None = None
    stdev: Finite | None = None
    min: Finite | None = None
    max: Finite | None = None
    cv: Finite | None = Field(default=None, description="Coefficient of variation, stdev/mean.")
    mean_ci: ConfidenceInterval | None = Field(
        default=None, description="Confidence interval of the mean (Student's t)."
    )
    median_ci: ConfidenceInterval | None = Field(
        default=None, description="Distribution-free confidence interval of the median."
    )
    q1: Finite | None = None
    q3: Finite | None = None
    outliers: int = Field(default=0, description="Samples outside 1.5 IQR of the quartiles.")
    warnings: list[str] = Field(default_factory=list)


def _finite(values: list[float]) -> list[float]:
    for value in values:
        if not math.isfinite(value):
            raise ValueError("samples must be finite numbers (no NaN or infinity)")
    return values


class Result(_Strict):
    """One measured quantity of one benchmark, with every repetition kept."""

    benchmark: str = Field(min_length=1)
    params: Params = Field(default_factory=dict)
    metric: str = Field(min_length=1)
    unit: str = Field(description="Normalised unit: s, bytes, 1/s, %, or a free unit.")
    direction: Direction = Direction.LOWER
    samples: list[float] = Field(default_factory=list)
    warmup_samples: list[float] = Field(default_factory=list)
    summary: Summary | None = None
    original_unit: str | None = Field(
        default=None, description="The unit the tool reported, when it was converted."
    )
    measurement: str | None = Field(default=None, description="The measurement that made it.")
    extra: dict[str, JsonValue] = Field(default_factory=dict)

    _check_samples = field_validator("samples", "warmup_samples")(_finite)

    def series_key(self) -> tuple[str, str, str]:
        """The part of a series identity that a result carries itself."""
        return (self.benchmark, canonical_params(self.params), self.metric)


def canonical_params(params: dict[str, ParamValue]) -> str:
    """A stable text form of params, equal for equal params whatever their order."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class Table(_Strict):
    """A free-form experiment table: field names and rows."""

    name: str
    fields: list[str] = Field(min_length=1)
    rows: list[list[JsonValue]] = Field(default_factory=list)
    measurement: str | None = None

    @model_validator(mode="after")
    def _rows_match_fields(self) -> Table:
        for index, row in enumerate(self.rows):
            if len(row) != len(self.fields):
                raise ValueError(
                    f"table {self.name!r} row {index} has {len(row)} values "
                    f"for {len(self.fields)} fields"
                )
        return self


class Attachment(_Strict):
    """A file kept with the run (a log, an output file). Content travels base64-encoded."""

    name: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Unique in the run; any text but control characters, '.' and '..'.",
    )
    media_type: str = Field(
        "application/octet-stream",
        max_length=200,
        # type/subtype and parameters, as a header carries them (RFC 9110): ASCII, no
        # control characters.
        pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+( *;[ -~]*)?$",
    )
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content: str = Field(description="Base64 of the bytes.")
    measurement: str | None = None

    @classmethod
    def from_bytes(
        cls,
        name: str,
        data: bytes,
        media_type: str = "application/octet-stream",
        measurement: str | None = None,
    ) -> Attachment:
        return cls(
            name=name,
            media_type=media_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content=base64.b64encode(data).decode("ascii"),
            measurement=measurement,
        )

    def data(self) -> bytes:
        return base64.b64decode(self.content)

    @field_validator("name")
    @classmethod
    def _not_a_step(cls, name: str) -> str:
        # Every URL reader takes "." and ".." as steps of the path: no link could name them.
        if name in (".", ".."):
            raise ValueError(f"{name!r} is not a name (a link to it would be a step up or here)")
        return name

    @model_validator(mode="after")
    def _content_matches(self) -> Attachment:
        data = base64.b64decode(self.content, validate=True)
        if len(data) != self.size:
            raise ValueError(f"attachment {self.name!r}: size {self.size} but {len(data)} bytes")
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError(f"attachment {self.name!r}: sha256 does not match its content")
        return self


class Series(_Strict):
    """A time series sampled during the run; ``t`` is seconds since the run started."""

    name: str
    unit: str
    t: list[Finite] = Field(default_factory=list)
    values: list[Finite] = Field(default_factory=list)
    measurement: str | None = None

    @model_validator(mode="after")
    def _same_length(self) -> Series:
        if len(self.t) != len(self.values):
            raise ValueError(
                f"series {self.name!r}: {len(self.t)} times, {len(self.values)} values"
            )
        return self


class Environment(_Strict):
    """What the collectors found, one section per collector, and the comparability hash."""

    sections: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    errors: dict[str, str] = Field(
        default_factory=dict, description="Collectors that failed, with their error."
    )
    fingerprint: str = Field(default="", description="Hash of the keys in fingerprint_keys.")
    fingerprint_keys: list[str] = Field(default_factory=list)

    def get(self, dotted: str) -> JsonValue:
        """Look up ``section.key`` (e.g. ``cpu.model``); None when absent."""
        section, _, key = dotted.partition(".")
        value: Any = self.sections.get(section)
        for part in key.split(".") if key else []:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


class BuildStep(_Strict):
    name: str
    command: str | None = None
    seconds: Finite | None = None
    exit_status: int | None = None
    log_attachment: str | None = None


class Build(_Strict):
    directory: str | None = None
    steps: list[BuildStep] = Field(default_factory=list)
    succeeded: bool = True


class MeasurementRecord(_Strict):
    """How one measurement of the suite went."""

    name: str
    type: str
    status: MeasurementStatus
    error: str | None = None
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    params: Params = Field(default_factory=dict)
    options: dict[str, JsonValue] = Field(
        default_factory=dict, description="Options as written in the suite (secrets unexpanded)."
    )


class Agent(_Strict):
    name: str = "perffarm"
    version: str
    command: list[str] = Field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


class RunDocument(_Strict):
    """One run of a suite on one machine."""

    schema_: Literal["perffarm.run/1"] = Field(default=SCHEMA_VERSION, alias="schema")
    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Made by the agent; idempotency key."
    )
    project: str = Field(min_length=1)
    tag: str | None = None
    suite: str | None = Field(default=None, description="Name of the suite file.")
    started_at: AwareDatetime = Field(default_factory=_now)
    finished_at: AwareDatetime | None = None
    status: RunStatus = RunStatus.OK
    error: str | None = None
    machine: str = Field(min_length=1)
    source: Source = Field(default_factory=Source)
    environment: Environment = Field(default_factory=Environment)
    build: Build | None = None
    measurements: list[MeasurementRecord] = Field(default_factory=list)
    results: list[Result] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    series: list[Series] = Field(default_factory=list)
    params: Params = Field(default_factory=dict)
    agent: Agent | None = None

    @model_validator(mode="after")
    def _attachment_names_unique(self) -> RunDocument:
        seen: set[str] = set()
        for attachment in self.attachments:
            if attachment.name in seen:
                raise ValueError(
                    f"two attachments are named {attachment.name!r}: names are unique in a run"
                )
            seen.add(attachment.name)
        return self

    def to_json(self, *, indent: int | None = None) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunDocument:
        return cls.model_validate_json(text)


# -- what a results server indexes ----------------------------------------------------------

#: The longest text a results server keeps in the columns it indexes. The server refuses a
#: run with a longer one; `perffarm import` and `ingest` refuse it before storing a run no
#: server would take.
INDEXED_LENGTHS: Final = {
    "project": 200,
    "tag": 200,
    "source.branch": 200,
    "source.commit": 100,
    "environment.fingerprint": 200,
}
RESULT_INDEXED_LENGTHS: Final = {"benchmark": 500, "metric": 200, "unit": 50}
_INDEXED_TIMES: Final = ("started_at", "finished_at", "source.commit_time")


def _at(doc: RunDocument, dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _text_problem(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        return f"longer than {limit} characters"
    if "\x00" in value:
        return "contains a NUL character"
    return None


def index_problems(doc: RunDocument) -> list[tuple[str, str]]:
    """(field, problem) of each value of ``doc`` a results server cannot index: text longer
    than its column or with a NUL character (which PostgreSQL refuses and SQLite keeps),
    a time that is out of range once in UTC. Fields are dotted (``results.3.metric``)."""
    problems = []
    for field, limit in INDEXED_LENGTHS.items():
        if (problem := _text_problem(_at(doc, field), limit)) is not None:
            problems.append((field, problem))
    for number, result in enumerate(doc.results):
        for field, limit in RESULT_INDEXED_LENGTHS.items():
            if (problem := _text_problem(getattr(result, field), limit)) is not None:
                problems.append((f"results.{number}.{field}", problem))
    for field in _INDEXED_TIMES:
        value = _at(doc, field)
        try:
            if value is not None:
                value.astimezone(UTC)
        except OverflowError:
            problems.append((field, "out of range in UTC"))
    return problems


def run_json_schema() -> dict[str, Any]:
    """JSON Schema of the run document, generated from the models."""
    schema = RunDocument.model_json_schema(by_alias=True, mode="serialization")
    schema["$id"] = f"https://perffarm.dev/schema/{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
