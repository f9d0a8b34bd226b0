"""Logging set-up with a filter that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import re

# Tokens look like gvm_<urlsafe>; bearer headers and database URLs with passwords too.
_SECRET_PATTERNS = (
    re.compile(r"gvm_[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[^\s'\"]+"),
    re.compile(r"(://[^:/\s]+:)[^@\s]+(@)"),
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a token or a password replaced by ``***``."""
    text = _SECRET_PATTERNS[0].sub("gvm_***", text)
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    return _SECRET_PATTERNS[2].sub(r"\1***\2", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = ()
        return True


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once: one line per event, secrets redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
