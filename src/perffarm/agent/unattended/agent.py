"""The agent's rounds: for each suite, build and benchmark the new heads (or run it once),
then upload what the server lacks; signals stop it between steps."""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import logging.handlers
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from perffarm.agent.config import Suite, load_suite
from perffarm.agent.prune import prune
from perffarm.agent.runner import BuildTarget, RunSettings, build_root, plan_builds, run_suite
from perffarm.agent.store import LocalStore
from perffarm.agent.unattended.log import set_secrets
from perffarm.agent.unattended.state import BenchmarkedHeads
from perffarm.console import UserError
from perffarm.model import RunDocument, RunStatus

DEFAULT_EVERY = "1h"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_every(text: str) -> float:
    """``30s``, ``10m``, ``1h``, ``1d`` (or ``1.5h``) -> seconds; ValueError otherwise."""
    match = _EVERY.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"--every {text!r} is not an interval: give a number and a unit, "
            "e.g. 30s, 10m, 1h or 1d"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class AgentOptions:
    suite_files: list[Path]
    every: float | None = 3600.0
    once: bool = False
    branches: list[str] = field(default_factory=list)
    server: str | None = None
    creds_dir: Path | None = None
    probe_seconds: float = 1.0
    #: Prune after each round: uploaded runs and idle build directories older than this,
    #: and whatever it takes to stay under the budget (bytes); see agent/prune.py.
    prune_after: timedelta | None = None
    disk_budget: int | None = None


@dataclass
class RoundOutcome:
    runs: list[RunDocument] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        bad = {RunStatus.FAILED, RunStatus.BUILD_FAILED}
        return bool(self.errors) or any(run.status in bad for run in self.runs)


class _WakeUp(Exception):
    """Raised by the signal handler to end the sleep between rounds at once."""


class Agent:
    """Rounds of benchmarking until stopped; ``serve`` is the command, ``run_round`` one round."""

    def __init__(
        self,
        options: AgentOptions,
        suites: list[Suite],
        store: LocalStore,
        state: BenchmarkedHeads,
        logger: logging.Logger,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.suites = list(suites)
        self.store = store
        self.state = state
        self.log = logger
        self.stop_requested = False
        self.stop_reason: str | None = None
        self._sleep_impl = sleep
        self._sleeping = False
        self._warned: set[str] = set()
        self._previous_handlers: dict[int, Any] = {}
        set_secrets(self.log, self._secrets())

    # -- stopping ------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        self.stop_requested = True
        self.stop_reason = self.stop_reason or reason

    def _on_signal(self, signum: int, frame: Any) -> None:
        again = self.stop_requested
        self.request_stop(signal.Signals(signum).name)
        if self._sleeping:
            raise _WakeUp
        if again:
            # A second signal while a step (git fetch, upload) runs: the user insists.
            raise KeyboardInterrupt

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(signum, self._on_signal)
            self._previous_handlers.setdefault(signum, previous)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._sleeping = True
        try:
            if not self.stop_requested:
                self._sleep_impl(seconds)
        except _WakeUp:
            pass
        finally:
            self._sleeping = False

    # -- the loop ------------------------------------------------------------------------

    def serve(self) -> int:
        """Run rounds until stopped (or one with ``once``); the process's exit code."""
        self._install_handlers()
        try:
            names = ", ".join(str(path) for path in self.options.suite_files)
            every = (
                "once"
                if self.options.once
                else f"every {timedelta(seconds=self.options.every or 0.0)}"
            )
            self.log.info("agent started: %s, %s, store %s", names, every, self.store.path)
            number = 0
            while not self.stop_requested:
                number += 1
                started = time.monotonic()
                outcome = self.run_round(number)
                if self.options.once:
                    if self.stop_requested:
                        self.log.info("agent stopped (%s)", self.stop_reason)
                    return 1 if outcome.failed else 0
                if self.stop_requested:
                    break
                wait = max(0.0, started + (self.options.every or 0) - time.monotonic())
                at = (datetime.now() + timedelta(seconds=wait)).strftime("%Y-%m-%d %H:%M:%S")
                self.log.info("next round at %s", at)
                try:
                    self._sleep(wait)
                except _WakeUp:
                    # The signal landed just outside the guarded sleep; stopping all the same.
                    pass
            self.log.info("agent stopped (%s)", self.stop_reason)
            return 0
        except KeyboardInterrupt:
            self.log.warning("agent stopped at once (a second signal)")
            raise
        finally:
            self._restore_handlers()

    def run_round(self, number: int = 1) -> RoundOutcome:
        outcome = RoundOutcome()
        self.log.info("round %d started", number)
        t0 = time.monotonic()
        self._reload_suites()
        for suite in self.suites:
            if self.stop_requested:
                break
            try:
                self._round_for_suite(suite, outcome)
            except UserError as exc:
                self._error(outcome, f"{suite.path.name}: {exc}")
            except Exception as exc:
                outcome.errors.append(f"{suite.path.name}: {type(exc).__name__}: {exc}")
                self.log.exception("%s: unexpected error", suite.path.name)
        if self.stop_requested:
            pending = "" if not outcome.runs else " (new runs stay in the store until next time)"
            self.log.info("stopping: upload skipped%s", pending)
        else:
            try:
                self._upload(outcome)
            except Exception as exc:
                outcome.errors.append(f"upload: {type(exc).__name__}: {exc}")
                self.log.exception("upload: unexpected error")
        if not self.stop_requested and (
            self.options.prune_after is not None or self.options.disk_budget is not None
        ):
            try:
                self._prune()
            except Exception as exc:
                outcome.errors.append(f"prune: {type(exc).__name__}: {exc}")
                self.log.exception("prune: unexpected error")
        failed = sum(
            run.status in (RunStatus.FAILED, RunStatus.BUILD_FAILED) for run in outcome.runs
        )
        self.log.info(
            "round %d finished in %.1f s: runs %d, failed %d, errors %d",
            number,
            time.monotonic() - t0,
            len(outcome.runs),
            failed,
            len(outcome.errors),
        )
        return outcome

    def _prune(self) -> None:
        roots = sorted({root for suite in self.suites if (root := build_root(suite))})
        report = prune(
            self.store,
            roots,
            older_than=self.options.prune_after,
            budget=self.options.disk_budget,
        )
        if report.runs_removed or report.builds_removed:
            self.log.info(
                "pruned %d runs and %d build directories: %.1f MiB -> %.1f MiB",
                report.runs_removed,
                len(report.builds_removed),
                report.bytes_before / 2**20,
                report.bytes_after / 2**20,
            )

    def _error(self, outcome: RoundOutcome, message: str) -> None:
        outcome.errors.append(message)
        self.log.error("%s", message)

    def _secrets(self) -> list[str]:
        return [secret for suite in self.suites for secret in suite.secret_values()]

    def _reload_suites(self) -> None:
        """Pick up edits to the suite files; a broken edit keeps the last good version."""
        fresh = []
        for path, previous in zip(self.options.suite_files, self.suites, strict=True):
            try:
                fresh.append(load_suite(path))
            except UserError as exc:
                self.log.error("%s (keeping the last good version of the suite)", exc)
                fresh.append(previous)
        self.suites = fresh
        set_secrets(self.log, self._secrets())

    # -- one suite -----------------------------------------------------------------------

    def _round_for_suite(self, suite: Suite, outcome: RoundOutcome) -> None:
        name = suite.path.name
        if suite.config.build is None:
            self._run(suite, None, outcome, name)
            return
        targets = self._plan(suite)
        key = str(suite.path.resolve())
        new = [
            target
            for target in targets
            if not self.state.seen(key, target.config.repository, target.branch, target.commit)
        ]
        if not new:
            heads = ", ".join(f"{t.branch}@{t.commit[:10]}" for t in targets) or "none"
            self.log.info("%s: nothing new (benchmarked already: %s)", name, heads)
            return
        for target in new:
            if self.stop_requested:
                return
            label = f"{name} {target.branch}@{target.commit[:10]}"
            self.log.info("%s: new head, building and benchmarking", label)
            run = self._run(suite, target, outcome, label)
            if run is not None and run.status != RunStatus.INTERRUPTED:
                self.state.record(
                    key,
                    target.config.repository,
                    target.branch,
                    target.commit,
                    str(run.id),
                    run.status.value,
                )

    def _run(
        self, suite: Suite, target: BuildTarget | None, outcome: RoundOutcome, label: str
    ) -> RunDocument | None:
        t0 = time.monotonic()
        try:
            run = run_suite(
                suite,
                self.store,
                settings=RunSettings(build=target),
            )
        except UserError as exc:
            self._error(outcome, f"{label}: {exc}")
            return None
        finally:
            # The runner swaps in its own SIGINT/SIGTERM handlers; ours must be back after it,
            # whichever way it ended.
            self._install_handlers()
        outcome.runs.append(run)
        message = f"{label}: run {run.id} {run.status.value} ({time.monotonic() - t0:.1f} s)"
        if run.error:
            message += f": {run.error}"
        if run.status == RunStatus.OK:
            self.log.info("%s", message)
        else:
            self.log.warning("%s", message)
        if run.status == RunStatus.INTERRUPTED:
            self.request_stop("a signal interrupted the run")
        return run

    def _plan(self, suite: Suite) -> list[BuildTarget]:
        if self.options.branches:
            return plan_builds(suite, self.options.branches)
        wanted = self._server_branches(suite.config.project)
        if wanted is None:
            return plan_builds(suite)
        # Every head of the repository, then the server's names and patterns picked from them:
        # a branch the server names but the repository lacks is a warning, not a dead round.
        build = suite.config.build
        assert build is not None
        everything = dataclasses.replace(
            suite,
            config=suite.config.model_copy(
                update={"build": build.model_copy(update={"branches": ["*"]})}
            ),
        )
        heads = {target.branch: target for target in plan_builds(everything)}
        chosen: dict[str, BuildTarget] = {}
        for pattern in wanted:
            matches = [name for name in heads if fnmatch.fnmatchcase(name, pattern)]
            if not matches:
                self._warn_once(
                    f"{suite.path.name}: the server asks for branch {pattern!r}, which "
                    f"{build.repository} does not have"
                )
            for branch in sorted(matches):
                chosen.setdefault(branch, heads[branch])
        return list(chosen.values())

    # -- the server ----------------------------------------------------------------------

    def _credentials(self) -> Any:
        from perffarm.agent.upload import NoCredentials, config_dir, load_credentials

        try:
            return load_credentials(config_dir(self.options.creds_dir), self.options.server)
        except NoCredentials as exc:
            message = f"not uploading, runs stay in the local store: {exc}"
            if self.options.server:
                self._warn_once(message)
            elif message not in self._warned:
                # No server named anywhere: a local-only farm, not a problem to shout about.
                self._warned.add(message)
                self.log.info("%s", message)
            return None

    def _server_branches(self, project: str) -> list[str] | None:
        """The server's branches of interest for ``project``; None when it publishes none."""
        from perffarm.agent.upload import ServerClient, UploadError, normalize_server

        credentials = self._credentials()
        server = credentials.server if credentials else self.options.server
        if not server:
            return None
        token = credentials.token if credentials else None
        try:
            with ServerClient(normalize_server(server), token=token, retries=1) as client:
                response = client.request(
                    "GET", f"/projects/{quote(project, safe='')}/branches", check=False
                )
        except UploadError as exc:
            self.log.warning("cannot ask for branches of interest, using the suite's: %s", exc)
            return None
        if response.status_code == 404:
            return None
        try:
            branches = response.json()["branches"] if response.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            branches = None
        if not isinstance(branches, list) or not all(isinstance(b, str) for b in branches):
            self.log.warning(
                "%s answered HTTP %d without a list of branches for %s; using the suite's",
                server,
                response.status_code,
                project,
            )
            return None
        if not branches:
            return None
        self.log.info("branches of interest from %s: %s", server, ", ".join(branches))
        return branches

    def _upload(self, outcome: RoundOutcome) -> None:
        from perffarm.agent.upload import UploadError, upload

        credentials = self._credentials()
        if credentials is None:
            return
        pending = self.store.pending_uploads(credentials.server)
        if not pending:
            return
        try:
            report = upload(self.store, credentials, probe_seconds=self.options.probe_seconds)
        except UploadError as exc:
            self._error(outcome, f"upload to {credentials.server} failed: {exc}")
            return
        self.log.info(
            "uploaded to %s: %d stored, %d already there, %d refused",
            credentials.server,
            len(report.stored),
            len(report.already_stored),
            len(report.refused),
        )
        for run_id, reason in report.refused.items():
            self._error(outcome, f"{credentials.server} refused run {run_id}: {reason}")

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.log.warning("%s", message)
