"""The agent's log: one line per event to a rotating file (and to stderr), secrets hidden
(``perffarm.redact``: the suites' secure values and whatever looks like a token)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from perffarm import redact

LOGGER_NAME = "perffarm.agent.unattended"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 5


def configure_logging(
    log_file: Path,
    *,
    echo: bool = True,
    echo_level: int = logging.INFO,
    max_bytes: int = LOG_MAX_BYTES,
    backups: int = LOG_BACKUPS,
) -> logging.Logger:
    """The agent's logger: one line per event to a rotating file, and to stderr with ``echo``
    from ``echo_level`` up."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.filters.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    ]
    if echo:
        stream = logging.StreamHandler()
        stream.setLevel(echo_level)
        handlers.append(stream)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    redact.install([LOGGER_NAME])
    return logger


def set_secrets(logger: logging.Logger, secrets: list[str]) -> None:
    """The secret values the agent's log hides from now on (the suites' secure.yaml)."""
    redact.set_secrets(logger, secrets)
