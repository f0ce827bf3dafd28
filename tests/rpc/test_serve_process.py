"""``netpol-pdp serve`` as a real process: JSON logs, SIGTERM drains a stream in flight, --workers.

The server runs as ``python -m netpol_pdp.clients.cmd_serve`` on 127.0.0.1 port 0;
its ``listening`` log line tells the port.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from netpol_pdp.clients import cmd_serve
from netpol_pdp.clients.client import DecisionClient
from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.decision import Verdict
from netpol_pdp.server.app import ConfigError
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

from .conftest import CLIENT, WEB, flow, scrape_metrics


class ServerProcess:
    """A ``serve`` subprocess whose JSON log lines are collected by a reader thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", "--listen", "127.0.0.1:0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"event": "non-json", "text": line})

    def wait_event(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                record = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.log.append(record)
            if record.get("event") == event:
                return record
        raise AssertionError(f"no {event!r} log line; saw {[r.get('event') for r in self.log]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(5)  # EOF once the process is gone
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.fixture
def launch() -> Iterator[Any]:
    procs: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        proc = ServerProcess(*args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.mark.parametrize("mode", ["sync", "aio"])
def test_sigterm_drains_a_stream_in_flight_then_exits_cleanly(launch: Any, world: Path, mode: str) -> None:
    server = launch("--source", str(world), "--grace", "10", "--server-mode", mode)
    port = server.wait_event("listening")["port"]
    server.wait_event("feed_loaded")
    address = f"127.0.0.1:{port}"
    batches = 40
    answered: list[int] = []
    signalled = threading.Event()

    def requests() -> Iterator[pb.DecideBatchRequest]:
        for rid in range(1, batches + 1):
            if rid == 11:  # ten batches answered or in flight: ask the server to stop
                server.proc.send_signal(signal.SIGTERM)
                signalled.set()
            time.sleep(0.02)
            yield pb.DecideBatchRequest(
                request_id=rid, flows=[pb.Flow(src_ip=CLIENT, dst_ip=WEB, dst_port=8080)] * 100
            )

    with grpc.insecure_channel(address) as channel:
        for response in pb_grpc.DecisionServiceStub(channel).DecideStream(requests(), timeout=30):
            assert len(response.results) == 100
            assert all(r.decision.verdict == pb.VERDICT_ALLOW for r in response.results)
            answered.append(response.request_id)
            if signalled.is_set() and len(answered) == 15:  # draining: new calls are refused meanwhile
                with grpc.insecure_channel(address) as fresh, pytest.raises(grpc.RpcError) as err:
                    pb_grpc.DecisionServiceStub(fresh).GetStatus(pb.GetStatusRequest(), timeout=2)
                assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    assert answered == list(range(1, batches + 1))  # every batch sent was answered, in order
    assert server.proc.wait(15) == 0
    events = [server.wait_event(e)["event"] for e in ("signal", "shutting_down", "stopped")]
    assert events == ["signal", "shutting_down", "stopped"]


def test_the_log_is_json_lines_that_name_the_reload_problem(launch: Any, world: Path) -> None:
    server = launch("--source", str(world))
    server.wait_event("listening")
    server.wait_event("feed_loaded")
    time.sleep(0.5)  # let the feed arm its watch (see conftest.wait_watching)
    (world / "policy.yaml").write_text("kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: 7}\n")
    record = server.wait_event("feed_reload_failed")
    assert record["level"] == "error" and record["kept_last_good"] is True
    assert any("policy.yaml" in p and "podSelector" in p for p in record["problems"])
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(15) == 0


def two_workers(launch: Any, world: Path, *args: str) -> tuple[ServerProcess, dict[str, Any]]:
    """``serve --workers 2``, once both workers have loaded; also returns ``workers_started``."""
    server = launch("--source", str(world), "--workers", "2", *args)
    started = server.wait_event("workers_started")
    for _ in range(2):
        server.wait_event("feed_loaded")
    return server, started


def test_workers_share_one_port_and_stop_together(launch: Any, world: Path) -> None:
    server, started = two_workers(launch, world)
    with DecisionClient(f"127.0.0.1:{started['port']}") as client:
        client.wait_ready(10)
        assert client.status()["ready"]
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0


def test_workers_metrics_are_one_endpoint_labelled_by_worker(launch: Any, world: Path) -> None:
    server, started = two_workers(launch, world, "--metrics-listen", "127.0.0.1:0")
    calls = 40
    for _ in range(calls):  # one channel per call, so the kernel spreads them over the workers
        with DecisionClient(f"127.0.0.1:{started['port']}") as client:
            client.wait_ready(10)
            assert client.decide(flow(CLIENT, WEB)).verdict is Verdict.ALLOW
    samples = scrape_metrics(started["metrics_port"])
    assert samples['netpol_pdp_worker_up{worker="0"}'] == 1
    assert samples['netpol_pdp_worker_up{worker="1"}'] == 1
    per_worker = [
        samples.get(
            f'netpol_pdp_decisions_total{{reason="allowed-by-policy",verdict="ALLOW",worker="{w}"}}', 0
        )
        for w in ("0", "1")
    ]
    assert sum(per_worker) == calls
    assert samples['netpol_pdp_ready{worker="0"}'] == samples['netpol_pdp_ready{worker="1"}'] == 1
    assert not any(
        name.startswith("netpol_pdp_decisions_total") and "worker=" not in name for name in samples
    )
    # The workers' own endpoints are private: loopback only, never the operator's port.
    ports = {r["metrics_port"] for r in server.log if r.get("event") == "listening"}
    assert len(ports) == 2 and started["metrics_port"] not in ports
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0


def test_a_worker_exits_when_its_supervisor_dies(launch: Any, world: Path) -> None:
    server, started = two_workers(launch, world)
    workers = started["workers"]
    server.proc.kill()  # no signal forwarded: the workers must notice on their own
    server.proc.wait(10)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline and any(alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
    finally:
        for pid in filter(alive, workers):  # or they would hold the log pipe open forever
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Running, not merely a zombie: an orphan's exit is reaped by whatever adopted it, maybe never."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --------------------------------------------------------------------------- the command modules


def parse(module: Any, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netpol-pdp")
    module.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together", id="a cert without a key"
        ),
        pytest.param(["--client-ca", "ca.pem"], "--client-ca needs --tls-cert", id="a client CA without TLS"),
        pytest.param(["--workers", "0"], "--workers: must be at least 1", id="no workers"),
        pytest.param(["--source", "/nonexistent/dir"], "--source /nonexistent/dir", id="a missing source"),
    ],
)
def test_serve_names_the_bad_option(argv: list[str], message: str) -> None:
    args = parse(cmd_serve, "serve", *argv)
    with pytest.raises(ConfigError, match=message):
        cmd_serve.options_from_args(args)


def test_serve_without_a_source_serves_the_bundled_example() -> None:
    assert list(cmd_serve.options_from_args(parse(cmd_serve, "serve")).sources) == [CLUSTER]


@pytest.mark.parametrize("mode", ["sync", "aio"])
def test_hundreds_of_signal_pairs_drain_once_and_exit_zero(launch: Any, world: Path, mode: str) -> None:
    """The issue's hang (a handler's Event.set under Event.wait) and its second-signal traceback:
    SIGTERM and SIGINT 1 ms apart, 300 pairs, before and during the drain."""
    server = launch("--source", str(world), "--grace", "1", "--server-mode", mode)
    server.wait_event("feed_loaded")
    for _ in range(300):
        if server.proc.poll() is not None:
            break
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.001)
        server.proc.send_signal(signal.SIGINT)
        time.sleep(0.001)
    assert server.proc.wait(15) == 0  # grace 1 s + STOP_MARGIN 2 s + exit; a hang never ends
    server.reader.join(5)
    events = []
    while not server.lines.empty():
        events.append(server.lines.get())
    names = [e.get("event") for e in events]
    # no traceback (it would be non-JSON lines)
    assert "non-json" not in names, [e["text"] for e in events if e.get("event") == "non-json"]
    assert [n for n in names if n != "signal"][-2:] == ["shutting_down", "stopped"]  # one drain, finished
    assert names.count("shutting_down") == 1
