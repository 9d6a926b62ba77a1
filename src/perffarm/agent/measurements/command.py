"""The ``command`` measurement: time a command, repeatedly, and read metrics from its output.

Each repetition records wall time, user and system CPU time, peak RSS and the exit status.
The rusage comes from ``wait4`` on the child itself, so it is the command's own cost and not
perffarm's. Output goes to files rather than pipes: no reader thread competes with the
command for the CPU while it is being timed. The files are private (the run's work
directory is 0700) and removed as soon as they are read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perffarm.agent import children
from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementOptions
from perffarm.model import Direction

# Linux reports ru_maxrss in KiB.
_RSS_UNIT = 1024
_OUTPUT_KEEP = 256 * 1024
#: Formats whose adapter attachments (gRPC's merged latency histogram) are kept.
_KEEP_ATTACHMENTS = {"grpc-qps", "grpc-scenario"}
#: ``format: grpc-qps`` without ``output_file``: the driver writes its result here.
_QPS_RESULT = "scenario_result.json"


class MetricExtractor(BaseModel):
    """A number pulled out of every repetition's output."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    regex: str | None = Field(
        default=None, description="Pattern; the named group `value` or group 1 is the number."
    )
    json_path: str | None = Field(default=None, description="JSONPath into the output as JSON.")
    unit: str = ""
    direction: Direction = Direction.LOWER
    source: Literal["stdout", "stderr", "file"] = "stdout"
    scale: float = Field(default=1.0, description="Multiply the value (e.g. 0.001 for ms -> s).")

    @model_validator(mode="after")
    def _one_way(self) -> MetricExtractor:
        if (self.regex is None) == (self.json_path is None):
            raise ValueError(f"metric {self.name!r}: give exactly one of `regex` or `json_path`")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"metric {self.name!r}: bad regex: {exc}") from None
        if self.json_path is not None:
            from jsonpath_ng.ext import parse as parse_json_path

            try:
                parse_json_path(self.json_path)
            except Exception as exc:
                raise ValueError(f"metric {self.name!r}: bad JSONPath: {exc}") from None
        return self


class CommandOptions(MeasurementOptions):
    command: str | list[str] = Field(description="Shell command line, or an argument list.")
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)
    check: bool = Field(default=True, description="A non-zero exit status fails the measurement.")
    metrics: list[MetricExtractor] = Field(default_factory=list)
    format: str | None = Field(
        default=None, description="Parse the output with this adapter (hyperfine, wrk, ...)."
    )
    output_file: str | None = Field(
        default=None, description="Read `format` and `source: file` metrics from this file."
    )
    record_time: bool = Field(
        default=True, description="Record wall/user/sys time and max RSS as results."
    )


class CommandFailed(RuntimeError):
    pass


class CommandMeasurement(Measurement):
    type_name = "command"
    Options = CommandOptions
    options: CommandOptions

    def setup(self, experiment: Experiment) -> None:
        self._rows: list[dict[str, Any]] = []
        self._extracted: dict[str, list[float]] = {}
        self._parsed_results: list[Any] = []
        self._parsed_attachments: list[Any] = []
        self._parsed_other: list[Any] = []
        self._scratch = Path(tempfile.mkdtemp(prefix="perffarm-cmd-", dir=self.context.work_dir))
        self._cwd = self._resolve(self.options.cwd) if self.options.cwd else self.context.suite_dir
        self._env = {
            **os.environ,
            **{key: self.context.expand(value) for key, value in self.options.env.items()},
        }
        self._spawner = Spawner()

    def start(self, experiment: Experiment) -> None:
        total = self.warmup + self.repeat
        experiment.progress.set_total(total)
        for index in range(total):
            if self.context.stop_event.is_set():
                break
            warm = index < self.warmup
            row = self._run_once(index, warm)
            self._rows.append(row)
            experiment.progress.advance()
            if row["exit_status"] != 0 and self.options.check:
                self._attach_outputs(experiment, row, reason="failed")
                raise CommandFailed(
                    f"{_display(self.options.command)!r} exited with status {row['exit_status']} "
                    f"(repetition {index + 1}; its output is attached; set check: false to "
                    "record failing runs)"
                )
            if not warm:
                self._extract(row)

    def collect(self, experiment: Experiment) -> None:
        measured = [row for row in self._rows if not row["warmup"]]
        warm = [row for row in self._rows if row["warmup"]]
        if not measured:
            return
        if self.options.record_time:
            for metric, unit in (
                ("wall_time", "s"),
                ("user_time", "s"),
                ("sys_time", "s"),
                ("max_rss", "bytes"),
            ):
                experiment.add_result(
                    metric,
                    [row[metric] for row in measured],
                    unit=unit,
                    warmup_samples=[row[metric] for row in warm],
                    extra={"exit_statuses": [row["exit_status"] for row in measured]}
                    if metric == "wall_time"
                    else None,
                )
        for extractor in self.options.metrics:
            values = self._extracted.get(extractor.name, [])
            if len(values) != len(measured):
                raise ValueError(
                    f"metric {extractor.name!r} was found in {len(values)} of "
                    f"{len(measured)} repetitions' output"
                )
            experiment.add_result(
                extractor.name, values, unit=extractor.unit, direction=extractor.direction
            )
        for result in _merge_results(self._parsed_results):
            experiment.results.append(result)
        for attachment in self._parsed_attachments:
            experiment.add_attachment(
                f"{self.name}.{attachment.name}", attachment.data(), attachment.media_type
            )
        table = experiment.create_table(
            [
                "repetition",
                "warmup",
                "wall_time_s",
                "user_time_s",
                "sys_time_s",
                "max_rss_bytes",
                "exit_status",
            ]
        )
        for row in self._rows:
            table.add(
                row["index"] + 1,
                row["warmup"],
                row["wall_time"],
                row["user_time"],
                row["sys_time"],
                row["max_rss"],
                row["exit_status"],
            )
        self._attach_outputs(experiment, measured[-1], reason="last")

    def teardown(self, experiment: Experiment) -> None:
        spawner = getattr(self, "_spawner", None)
        if spawner is not None:
            spawner.close()
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            for child in scratch.iterdir():
                child.unlink(missing_ok=True)
            scratch.rmdir()

    # -- one repetition -------------------------------------------------------------------

    def _run_once(self, index: int, warm: bool) -> dict[str, Any]:
        stdout_path = self._scratch / "stdout"
        stderr_path = self._scratch / "stderr"
        command = self.options.command
        argv: str | list[str] = (
            self.context.expand(command)
            if isinstance(command, str)
            else [self.context.expand(part) for part in command]
        )
        if self._qps_result_file() is not None:
            # gRPC's QPS driver writes its ScenarioResult where it is told to.
            flag = f"--scenario_result_file={self._scratch / _QPS_RESULT}"
            argv = f"{argv} {shlex.quote(flag)}" if isinstance(argv, str) else [*argv, flag]
        request = {
            "argv": argv,
            "shell": isinstance(command, str),
            "cwd": str(self._cwd),
            "env": self._env,
            "stdout": str(stdout_path),
            "stderr": str(stderr_path),
            "timeout": self.options.timeout,
        }
        answer = self._spawner.run(request)
        if answer.get("timed_out"):
            raise CommandFailed(f"{_display(command)!r} timed out after {self.options.timeout:g} s")
        return {
            "index": index,
            "warmup": warm,
            "wall_time": answer["wall_time"],
            "user_time": answer["user_time"],
            "sys_time": answer["sys_time"],
            "max_rss": float(answer["max_rss_kib"] * _RSS_UNIT),
            "exit_status": answer["exit_status"],
            "stdout": _take(stdout_path),
            "stderr": _take(stderr_path),
        }

    # -- reading the output ---------------------------------------------------------------

    def _qps_result_file(self) -> Path | None:
        if self.options.format == "grpc-qps" and not self.options.output_file:
            return self._scratch / _QPS_RESULT
        return None

    def _output_file_text(self) -> str:
        if (qps := self._qps_result_file()) is not None:
            try:
                return qps.read_text(encoding="utf-8", errors="replace")
            except OSError:
                raise ValueError(
                    "the QPS driver wrote no --scenario_result_file: is the command "
                    "qps_json_driver (or a script that passes its arguments on to it)?"
                ) from None
        if not self.options.output_file:
            raise ValueError("`source: file` and `format` with a file need `output_file`")
        path = self._resolve(self.context.expand(self.options.output_file))
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ValueError(f"cannot read output_file {path}: {exc.strerror}") from None

    def _extract(self, row: dict[str, Any]) -> None:
        texts = {
            "stdout": row["stdout"].decode("utf-8", errors="replace"),
            "stderr": row["stderr"].decode("utf-8", errors="replace"),
        }
        for extractor in self.options.metrics:
            text = texts.get(extractor.source)
            if text is None:
                text = self._output_file_text()
            value = _extract_value(extractor, text)
            self._extracted.setdefault(extractor.name, []).append(value * extractor.scale)
        if self.options.format:
            from perffarm.adapters.registry import parse_text

            from_file = self.options.output_file or self._qps_result_file() is not None
            text = self._output_file_text() if from_file else texts["stdout"]
            parsed = parse_text(self.options.format, text)
            for result in parsed.results:
                result.measurement = self.name
            self._parsed_results.extend(parsed.results)
            if self.options.format in _KEEP_ATTACHMENTS:
                # The last repetition's (one histogram, not one per repetition).
                self._parsed_attachments = list(parsed.attachments)

    def _attach_outputs(self, experiment: Experiment, row: dict[str, Any], reason: str) -> None:
        for stream in ("stdout", "stderr"):
            data: bytes = row[stream]
            if data:
                if len(data) > _OUTPUT_KEEP:
                    data = data[-_OUTPUT_KEEP:]
                experiment.add_attachment(
                    f"{self.name}.{reason}.{stream}.txt", data, "text/plain; charset=utf-8"
                )

    def _resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.context.suite_dir / candidate


class Spawner:
    """The small helper process (see _spawner.py) that forks and times each repetition.

    It leads a process group of its own, shared with the commands it starts, and ends that
    group if perffarm dies (perffarm.agent.children); the group is on the machine lock's
    record while it exists. Being a group of its own, it does not get the terminal's Ctrl-C:
    an interrupt of perffarm is forwarded to it.
    """

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(children.SPAWNER), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
            preexec_fn=children.die_with_parent(),
        )
        self._record = contextlib.ExitStack()
        self._record.enter_context(children.tracked_group(self._process.pid))

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM of perffarm: the command dies of SIGINT, as it would of a
            # Ctrl-C at the terminal; the launcher ignores it and reports.
            self._signal_group(signal.SIGINT)
            raise
        if not line:
            raise CommandFailed("the command launcher stopped unexpectedly")
        answer = json.loads(line)
        if "error" in answer:
            raise CommandFailed(f"cannot run the command: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                # A command that outlived its interrupt: the whole group goes.
                self._signal_group(signal.SIGKILL)
                self._process.wait()
            # Whatever is left in the group (a command's background child, or the commands
            # of a launcher that was killed) goes with it. The launcher has been reaped, but
            # the kernel keeps its pid from reuse while the group has members.
            self._signal_group(signal.SIGKILL)
            if self._process.stdout:
                self._process.stdout.close()
        finally:
            self._record.close()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)


def _extract_value(extractor: MetricExtractor, text: str) -> float:
    if extractor.regex is not None:
        match = re.search(extractor.regex, text, re.MULTILINE)
        if not match:
            raise ValueError(f"metric {extractor.name!r}: /{extractor.regex}/ not found in output")
        group = match.groupdict().get("value") or (match.group(1) if match.groups() else match[0])
        try:
            return float(group)
        except ValueError:
            raise ValueError(
                f"metric {extractor.name!r}: matched {group!r}, which is not a number"
            ) from None
    from jsonpath_ng.ext import parse as parse_json_path

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"metric {extractor.name!r}: output is not JSON ({exc})") from None
    assert extractor.json_path is not None  # the caller chose the JSONPath extractor
    matches = parse_json_path(extractor.json_path).find(document)
    if not matches:
        raise ValueError(f"metric {extractor.name!r}: {extractor.json_path} matched nothing")
    value = matches[0].value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"metric {extractor.name!r}: {extractor.json_path} is not a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"metric {extractor.name!r}: {value!r} is not a number") from None


def _take(path: Path) -> bytes:
    """A repetition's output, removed once read: what a command prints may hold a secret,
    and only its scrubbed copy in the run document is kept."""
    data = path.read_bytes()
    path.unlink()
    return data


def _merge_results(results: list[Any]) -> list[Any]:
    """Results parsed from several repetitions' outputs: one result per series, all samples."""
    merged: dict[tuple[str, str, str], Any] = {}
    for result in results:
        key = result.series_key()
        if key in merged:
            merged[key].samples.extend(result.samples)
        else:
            merged[key] = result.model_copy(deep=True)
    return list(merged.values())


def _display(command: str | list[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)
