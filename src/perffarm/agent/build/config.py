"""The suite's ``build:`` section: the repository, the branches, the steps."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHECKOUT_STEP = "checkout"

_STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BuildStepConfig(BaseModel):
    """One step of the ``build:`` section."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name (configure, build, install); names the log.")
    run: str = Field(min_length=1, description="Shell command, run in the source directory.")
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0, description="Seconds; kill after.")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, name: str) -> str:
        if not _STEP_NAME.fullmatch(name):
            raise ValueError(
                f"step name {name!r} must be letters, digits, '.', '_' or '-' "
                "(it names the step's log file)"
            )
        if name == CHECKOUT_STEP:
            raise ValueError(f"step name {CHECKOUT_STEP!r} is reserved for the git checkout")
        return name


class BuildConfig(BaseModel):
    """The suite's ``build:`` section."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(min_length=1, description="URL or path of the git repository.")
    branches: list[str] = Field(
        min_length=1, description="Branch names or fnmatch patterns such as REL_*_STABLE."
    )
    steps: list[BuildStepConfig] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="For every step.")
    work_dir: str | None = Field(
        default=None, description="Where mirrors and build directories live."
    )
    clean: bool = Field(
        default=True,
        description="Remove untracked files (git clean -ffdx) before building; false keeps "
        "the previous build's products for an incremental build.",
    )

    @field_validator("branches", mode="before")
    @classmethod
    def _one_branch(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("branches")
    @classmethod
    def _no_empty_branch(cls, branches: list[str]) -> list[str]:
        for branch in branches:
            if not branch.strip():
                raise ValueError("a branch name must not be empty")
        return branches

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[BuildStepConfig]) -> list[BuildStepConfig]:
        names = [step.name for step in steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique; repeated: {', '.join(duplicates)}")
        return steps
