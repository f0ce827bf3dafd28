"""Structured logs: one JSON object per line on stderr, through the standard library.

Why JSON: the server runs under Kubernetes, whose log pipelines (Loki, Cloud
Logging, ...) index fields of JSON lines; a reload error must be findable by
``event="reload_failed"``, not by grepping prose.  Any stdlib logger works;
fields travel in ``extra={"fields": {...}}``, and :func:`log_event` is the short
form the server uses.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "netpol_pdp"


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "event": ..., **fields}``; exceptions as text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when configured.

    A feed thread may log after stderr was replaced (a test's capture, a daemon
    re-opening it); a handler bound to the old object would then write to a
    closed stream.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # StreamHandler.__init__ assigns it; the property always answers sys.stderr


def configure(level: str = "info", stream: Any = None) -> logging.Logger:
    """Send the package's logs as JSON lines to ``stream`` (stderr); idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    for old in list(logger.handlers):
        if getattr(old, "_netpol_pdp_json", False):
            logger.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler._netpol_pdp_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    return logger


def get_logger(name: str = "server") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` (a short snake_case name) with structured ``fields``."""
    logger.log(level, event, extra={"fields": fields})
