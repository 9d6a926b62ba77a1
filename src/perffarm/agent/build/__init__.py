"""Builds of the software under test from git, branch by branch.

The workspace keeps one mirror clone per repository (``git clone --mirror``, refreshed with
``git fetch --prune``) and one build directory per branch, checked out from the mirror
(a local clone, so the network is used once per fetch, not once per branch). A build runs
the suite's steps one after the other in the branch's source directory; each step's output
(stdout and stderr interleaved, as a terminal would show it) becomes a log attachment, and
the first failing step ends the build, which is then recorded as failed with every log so
far. Everything about git goes through ``perffarm.agent.git.run_git``.

- ``config``: the suite's ``build:`` section (``BuildConfig``, ``BuildStepConfig``);
- ``workspace``: mirrors, build directories, branches, checkouts (``BuildWorkspace``);
- ``steps``: a build run step by step (``run_build``, ``BuildOutcome``, ``build_variables``).

Layout under the workspace root::

    mirrors/<repo-key>.git                the mirror
    builds/<repo-key>/<branch>/source     the checkout; steps run here
    builds/<repo-key>/<branch>/install    {{ build.prefix }}
    builds/<repo-key>/<branch>/logs       one log per step of the last build
"""

from __future__ import annotations

from perffarm.agent.build.config import CHECKOUT_STEP, BuildConfig, BuildStepConfig
from perffarm.agent.build.steps import BuildOutcome, build_variables, run_build
from perffarm.agent.build.workspace import GIT_TIMEOUT, BuildError, BuildWorkspace, git

__all__ = [
    "CHECKOUT_STEP",
    "GIT_TIMEOUT",
    "BuildConfig",
    "BuildError",
    "BuildOutcome",
    "BuildStepConfig",
    "BuildWorkspace",
    "build_variables",
    "git",
    "run_build",
]
