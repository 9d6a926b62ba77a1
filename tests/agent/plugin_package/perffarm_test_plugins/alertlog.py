"""A notifier: one line per new alert group, appended to the file ``$ALERT_LOG`` names."""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

from perffarm.server.services.notifiers import NotifierContext


class AlertLogNotifier:
    def __init__(self, context: NotifierContext) -> None:
        self.path = os.environ.get("ALERT_LOG")  # unset: this notifier does nothing
        self.queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="alert-log", daemon=True)

    def notify(self, groups: list[dict[str, Any]]) -> None:
        # Called by change-point detection: only queue, never block or raise.
        if self.path:
            for group in groups:
                self.queue.put(group)

    def start(self) -> None:
        if self.path:
            self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join(timeout)

    def _run(self) -> None:
        while (group := self.queue.get()) is not None:
            with open(self.path or os.devnull, "a") as log:
                log.write(f"{group['project']} {group['branch']}: {group['regressions']} "
                          f"regression(s), {group['improvements']} improvement(s)\n")  # fmt: skip
