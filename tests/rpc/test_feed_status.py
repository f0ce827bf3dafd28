"""A manifest feed that stops, or never loads, or loads nothing is never silent (issue 16).

Its thread ending on any error shows in ``GetStatus`` (``feed.stopped``, not
``synced``) and health (NOT_SERVING); a first load that cannot be read is a
startup error (``serve`` exits 2); a source holding no object is flagged.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.clients import DecisionClient, cmd_serve
from netpol_pdp.index.errors import SourceError
from netpol_pdp.server.serve import ServeOptions, Service, serve

from .conftest import CLIENT, WEB, flow, policy_text, replace_file, wait_for


def test_a_feed_thread_that_dies_says_so_in_status_and_health(
    service: Service, client: DecisionClient, world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.status()["feed"]["stopped"] == "" and client.health() == "SERVING"

    def broken() -> Any:
        raise RuntimeError("inotify watch limit reached")

    monkeypatch.setattr(service.feed, "reload", broken)
    replace_file(world / "policy.yaml", policy_text(9000))  # the watch calls reload(), which raises
    status = wait_for(lambda: (s := client.status())["feed"]["stopped"] and s, what="the feed's death")
    assert status["feed"]["stopped"] == "the manifest feed stopped: RuntimeError: inotify watch limit reached"
    assert status["ready"] and not status["synced"]
    assert client.health() == "NOT_SERVING"
    assert client.decide(flow(CLIENT, WEB, 8080)).allowed  # the last good state still answers


def run_serve(sources: list[Path]) -> tuple[threading.Thread, list[BaseException], threading.Event]:
    errors: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            serve(ServeOptions(sources=sources, listen="127.0.0.1:0", grace=0.2), stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors, stop


def test_a_first_load_with_an_unreadable_value_is_a_startup_error(world: Path) -> None:
    (world / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  annotations: {when: 2024-13-45}\n"
    )
    thread, errors, stop = run_serve([world])
    thread.join(15)
    stop.set()
    assert not thread.is_alive(), "serve stayed up on a first load it could not read"
    [error] = errors
    assert isinstance(error, SourceError)
    assert error.problems == [
        f"{world / 'bad.yaml'}: line 5, column 23: "
        "invalid YAML: cannot read timestamp value: month must be in 1..12"
    ]


def test_a_source_without_objects_is_flagged_in_status_and_warned_about(
    start_service: Callable[..., Service],
    tmp_path: Path,
    connect: Callable[..., DecisionClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "services.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n")
    with caplog.at_level(logging.WARNING, logger="netpol_pdp"):
        service = start_service([tmp_path])
        assert service.state.wait_ready(10)
        status = connect(service).status()
    assert status["feed"]["empty"] and status["synced"]
    [warning] = [r for r in caplog.records if r.getMessage() == "feed_empty"]
    assert "every flow is allowed" in warning.fields["warning"]  # type: ignore[attr-defined]


def test_serve_max_file_size_refuses_a_larger_file_with_a_located_problem(world: Path) -> None:
    parser = argparse.ArgumentParser(prog="netpol-pdp")
    cmd_serve.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["serve", "--source", str(world), "--listen", "127.0.0.1:0", "--max-file-size", "0.0005"]
    )
    options = cmd_serve.options_from_args(args)
    assert options.max_file_bytes == 524
    (world / "pods.yaml").write_text((world / "pods.yaml").read_text() + "#" * 600 + "\n")
    options.grace = 0.2
    thread = threading.Thread(target=lambda: errors.append(_serve_error(options)), daemon=True)
    errors: list[SourceError | None] = []
    thread.start()
    thread.join(15)
    assert not thread.is_alive()
    [error] = errors
    assert error is not None and error.problems == [
        f"{world / 'pods.yaml'}: larger than the limit of 524 bytes "
        "(split it, or raise the limit: serve --max-file-size)"
    ]


def _serve_error(options: ServeOptions) -> SourceError | None:
    try:
        serve(options, threading.Event())
    except SourceError as exc:
        return exc
    return None
