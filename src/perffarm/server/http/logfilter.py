"""A logging filter that hides secrets (access logs show query strings)."""

from __future__ import annotations

import logging
import re

_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[hidden]"),
    (re.compile(r"\bpf[tar]_[A-Za-z0-9]{12}_[A-Za-z0-9_-]+"), "[token]"),
    (
        re.compile(
            r"(?i)\b(code|state|device_code|refresh_token|access_token|token|password|"
            r"client_secret|code_verifier|csrf_token)=[^&\s\"']+"
        ),
        r"\1=[hidden]",
    ),
    (
        re.compile(
            r"(?i)(\"(?:password|secret|token|access_token|refresh_token)\"\s*:\s*\")[^\"]*"
        ),
        r"\1[hidden]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretsFilter(logging.Filter):
    """Hides tokens, codes and passwords in log records (access logs show query strings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter() -> None:
    """Put the filter on the loggers the server writes to (idempotent)."""
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "perffarm", "httpx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretsFilter) for f in logger.filters):
            logger.addFilter(SecretsFilter())
        for handler in logger.handlers:
            if not any(isinstance(f, SecretsFilter) for f in handler.filters):
                handler.addFilter(SecretsFilter())
