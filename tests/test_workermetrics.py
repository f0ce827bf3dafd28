"""The ``--workers`` supervisor's ``/metrics``: every worker's series, labelled, and who answered.

Workers here are in-process prometheus_client endpoints on 127.0.0.1 port 0 (the
end-to-end version with real worker processes is in tests/rpc/test_serve_process.py).
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from netpol_pdp.server.workermetrics import SupervisorMetrics, write_port_file


def worker_endpoint(decisions: int, generation: int) -> tuple[int, Any]:
    registry = CollectorRegistry()
    Counter("netpol_pdp_decisions", "Decisions made.", ["verdict"], registry=registry).labels("ALLOW").inc(
        decisions
    )
    Gauge("netpol_pdp_index_generation", "Generation.", registry=registry).set(generation)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    return int(server.server_address[1]), server


@pytest.fixture
def stuck_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_workers_series_come_back_labelled_and_unreachable_ones_say_so(
    tmp_path: Path, stuck_port: int
) -> None:
    servers = []
    files = [tmp_path / f"worker-{i}.port" for i in range(4)]
    for i, (decisions, generation) in enumerate([(3, 7), (5, 9)]):
        port, server = worker_endpoint(decisions, generation)
        servers.append(server)
        write_port_file(files[i], port)
    write_port_file(files[2], stuck_port)  # worker 2 hangs; worker 3 has not started (no file)
    metrics = SupervisorMetrics("127.0.0.1", 0, files, timeout=0.3)
    try:
        samples = scrape(metrics.port)
    finally:
        metrics.close()
        for server in servers:
            server.shutdown()
            server.server_close()
    decisions = "netpol_pdp_decisions_total"
    assert samples[(decisions, (("verdict", "ALLOW"), ("worker", "0")))] == 3
    assert samples[(decisions, (("verdict", "ALLOW"), ("worker", "1")))] == 5
    assert samples[("netpol_pdp_index_generation", (("worker", "0"),))] == 7
    assert samples[("netpol_pdp_index_generation", (("worker", "1"),))] == 9
    up = {
        dict(labels)["worker"]: v for (name, labels), v in samples.items() if name == "netpol_pdp_worker_up"
    }
    assert up == {"0": 1, "1": 1, "2": 0, "3": 0}
    assert not any(name == decisions and "worker" not in dict(labels) for name, labels in samples)


def test_a_port_file_is_never_seen_half_written(tmp_path: Path) -> None:
    path = tmp_path / "worker-0.port"
    write_port_file(path, 41234)
    write_port_file(path, 5)
    assert path.read_text() == "5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["worker-0.port"]


def test_the_supervisor_port_must_be_free(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(OSError):
            SupervisorMetrics("127.0.0.1", sock.getsockname()[1], [tmp_path / "w0.port"])
