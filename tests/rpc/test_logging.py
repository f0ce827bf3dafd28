"""The server's JSON logs: one object per line, on the stderr of the moment."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from netpol_pdp.server.logging import LOGGER_NAME, configure, get_logger, log_event


@pytest.fixture(autouse=True)
def restore_the_package_logger() -> Iterator[None]:
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_a_log_line_is_one_json_object_with_the_event_and_its_fields() -> None:
    out = io.StringIO()
    configure("info", out)
    log_event(get_logger("test"), 20, "feed_loaded", generation=3)
    record = json.loads(out.getvalue())
    assert (record["event"], record["generation"], record["level"]) == ("feed_loaded", 3, "info")


def test_logs_go_to_the_stderr_current_when_written_not_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread logging after stderr was replaced (and the old one closed) must not hit a closed file."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure("info")
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    log_event(get_logger("test"), 20, "after_the_swap")
    assert json.loads(second.getvalue())["event"] == "after_the_swap"
