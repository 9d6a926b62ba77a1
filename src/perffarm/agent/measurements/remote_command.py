"""The ``remote-command`` measurement: time a command on another host over SSH.

For suites where the agent drives a VM or a remote load client. One SSH connection is
opened in ``setup`` (a wrong password fails there, before anything is measured) and reused
by every repetition; files named in ``collect`` are fetched over SFTP after the last one and
attached to the run. Each repetition's wall time is measured on the agent, from opening the
session channel to the command's exit, so it includes one network round trip or two.

Credentials come from ``secure.yaml`` through placeholders (``password: "{{ secure.vm }}"``);
they are expanded only to log in.
"""

from __future__ import annotations

import mimetypes
import posixpath
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from perffarm.agent.experiment import Experiment
from perffarm.agent.measurement import Measurement, MeasurementOptions
from perffarm.agent.remote import (
    DEFAULT_KNOWN_HOSTS,
    DEFAULT_MAX_FETCH_BYTES,
    RemoteError,
    SSHPool,
    SSHTarget,
    asyncssh_available,
)

_OUTPUT_KEEP = 256 * 1024


class RemoteCommandOptions(MeasurementOptions):
    host: str = Field(min_length=1, description="Host name or address of the remote machine.")
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, description="Default: ssh's (config or local user).")
    password: str | None = Field(
        default=None, description='Use a placeholder: "{{ secure.NAME }}" from secure.yaml.'
    )
    client_keys: list[str] | None = Field(
        default=None, description="Private key files; default: ~/.ssh keys and the ssh-agent."
    )
    passphrase: str | None = Field(default=None, description="Of the client keys.")
    known_hosts: str | None = Field(
        default=DEFAULT_KNOWN_HOSTS,
        description="Trusted host keys; null accepts any host key (open to impersonation).",
    )
    command: str = Field(min_length=1, description="Run by the remote user's shell.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds per repetition.")
    connect_timeout: float = Field(default=30.0, gt=0)
    check: bool = Field(default=True, description="A non-zero exit status fails the measurement.")
    collect: list[str] = Field(
        default_factory=list, description="Remote files fetched (SFTP) after the last repetition."
    )
    max_collect_bytes: int = Field(default=DEFAULT_MAX_FETCH_BYTES, ge=1)

    @field_validator("collect", "client_keys", mode="before")
    @classmethod
    def _one_path(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class RemoteCommandFailed(RuntimeError):
    pass


class RemoteCommandMeasurement(Measurement):
    type_name = "remote-command"
    Options = RemoteCommandOptions
    options: RemoteCommandOptions

    def setup(self, experiment: Experiment) -> None:
        self._rows: list[dict[str, Any]] = []
        self._collected: list[tuple[str, bytes]] = []
        self._pool: SSHPool | None = None
        if not asyncssh_available():
            raise RemoteCommandFailed(
                "remote-command needs asyncssh: pip install 'perffarm[remote]'"
            )
        self._target = self._make_target()
        self._pool = SSHPool()
        info = self._pool.connect(self._target)
        experiment.environment.setdefault("remote", {})[self.name] = info

    def start(self, experiment: Experiment) -> None:
        assert self._pool is not None
        command = self.context.expand(self.options.command)
        total = self.warmup + self.repeat
        experiment.progress.set_total(total)
        for index in range(total):
            if self.context.stop_event.is_set():
                break
            done = self._pool.run(self._target, command, timeout=self.options.timeout)
            row = {
                "index": index,
                "warmup": index < self.warmup,
                "wall_time": done.seconds,
                "exit_status": done.exit_status,
                "exit_signal": done.exit_signal,
                "stdout": done.stdout,
                "stderr": done.stderr,
            }
            self._rows.append(row)
            experiment.progress.advance()
            if done.exit_status != 0 and self.options.check:
                self._attach_outputs(experiment, row, reason="failed")
                how = (
                    f"was killed by {done.exit_signal}"
                    if done.exit_signal
                    else f"exited with status {done.exit_status}"
                )
                raise RemoteCommandFailed(
                    f"{self.options.command!r} on {self._target.display()} {how} "
                    f"(repetition {index + 1}; its output is attached; set check: false to "
                    "record failing runs)"
                )

    def stop(self, experiment: Experiment) -> None:
        if self._pool is None or not self._rows:
            return
        for raw_path in self.options.collect:
            path = self.context.expand(raw_path)
            data = self._pool.fetch(self._target, path, max_bytes=self.options.max_collect_bytes)
            self._collected.append((raw_path, data))

    def collect(self, experiment: Experiment) -> None:
        measured = [row for row in self._rows if not row["warmup"]]
        if not measured:
            return
        experiment.add_result(
            "wall_time",
            [row["wall_time"] for row in measured],
            unit="s",
            warmup_samples=[row["wall_time"] for row in self._rows if row["warmup"]],
            extra={"exit_statuses": [row["exit_status"] for row in measured]},
        )
        table = experiment.create_table(
            ["repetition", "warmup", "wall_time_s", "exit_status", "exit_signal"]
        )
        for row in self._rows:
            table.add(
                row["index"] + 1,
                row["warmup"],
                row["wall_time"],
                row["exit_status"],
                row["exit_signal"],
            )
        self._attach_outputs(experiment, measured[-1], reason="last")
        names: set[str] = set()
        for raw_path, data in self._collected:
            # The placeholder form names the attachment: an expanded path may hold a secret.
            base = posixpath.basename(raw_path.rstrip("/")) or "file"
            name = f"{self.name}.{base}"
            while name in names:
                name = f"{self.name}.{len(names)}.{base}"
            names.add(name)
            media_type = mimetypes.guess_type(base)[0] or "application/octet-stream"
            experiment.add_attachment(name, data, media_type)

    def teardown(self, experiment: Experiment) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()

    def _make_target(self) -> SSHTarget:
        options = self.options
        expand = self.context.expand
        known_hosts = options.known_hosts
        if known_hosts is not None:
            known_hosts = str(self._resolve(expand(known_hosts)))
        keys = options.client_keys
        return SSHTarget(
            host=expand(options.host),
            port=options.port,
            user=expand(options.user) if options.user else None,
            password=expand(options.password) if options.password is not None else None,
            client_keys=tuple(str(self._resolve(expand(k))) for k in keys) if keys else None,
            passphrase=expand(options.passphrase) if options.passphrase is not None else None,
            known_hosts=known_hosts,
            connect_timeout=options.connect_timeout,
        )

    def _resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.context.suite_dir / candidate

    def _attach_outputs(self, experiment: Experiment, row: dict[str, Any], reason: str) -> None:
        for stream in ("stdout", "stderr"):
            data: bytes = row[stream]
            if data:
                experiment.add_attachment(
                    f"{self.name}.{reason}.{stream}.txt",
                    data[-_OUTPUT_KEEP:],
                    "text/plain; charset=utf-8",
                )


__all__ = ["RemoteCommandMeasurement", "RemoteCommandOptions", "RemoteError"]
