"""One ``/metrics`` for ``serve --workers N``: the supervisor reads its workers' series.

Worker processes share nothing, so each keeps its own counters.  Rather than
ask the operator to scrape N ports, the supervisor serves ``--metrics-listen``
itself; every worker serves its metrics on a private loopback port, which it
writes to a file the supervisor gave it.  On each scrape the supervisor reads
every worker and re-exposes its series with a ``worker`` label, the shape
Prometheus federation gives, so ``sum without (worker) (...)`` is the whole
service.  Summing here instead would be wrong for the gauges: each worker has
its own index, so its own generation and readiness.

``netpol_pdp_worker_up{worker}`` says whether that worker answered this scrape
(0 while it is still starting, or after it died), so a missing worker shows
as a value, not as series that silently vanish.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample


def write_port_file(path: Path, port: int) -> None:
    """Publish a worker's metrics port; the rename makes a half-written file impossible to read."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n", encoding="ascii")
    os.replace(partial, path)


class WorkerMetrics(Collector):
    """Scrapes worker *i*'s endpoint (its port read from ``port_files[i]``) and labels it ``worker=i``."""

    def __init__(self, port_files: Sequence[Path], timeout: float = 2.0) -> None:
        self._files = list(port_files)
        self._ports: dict[int, int] = {}
        self._timeout = timeout
        # All workers are read at once, so one stuck worker costs a scrape `timeout`, not N of them.
        self._pool = ThreadPoolExecutor(max_workers=max(len(self._files), 1), thread_name_prefix="scrape")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _port(self, worker: int) -> int | None:
        port = self._ports.get(worker)
        if port is None:
            try:
                port = int(self._files[worker].read_text(encoding="ascii"))
            except (OSError, ValueError):
                return None  # not written yet: the worker is still starting
            self._ports[worker] = port
        return port

    def _scrape(self, worker: int) -> str | None:
        port = self._port(worker)
        if port is None:
            return None
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/metrics", timeout=self._timeout
            ) as response:
                return str(response.read().decode("utf-8"))
        except OSError:
            return None  # the worker is gone or stuck; worker_up says so

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        up = GaugeMetricFamily(
            "netpol_pdp_worker_up",
            "1 if the worker's metrics could be read in this scrape.",
            labels=["worker"],
        )
        for worker, text in enumerate(self._pool.map(self._scrape, range(len(self._files)))):
            up.add_metric([str(worker)], 0.0 if text is None else 1.0)
            if text is None:
                continue
            label = str(worker)
            for family in text_string_to_metric_families(text):
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                merged.samples.extend(
                    Sample(s.name, {**s.labels, "worker": label}, s.value, s.timestamp, s.exemplar)
                    for s in family.samples
                )
        yield from families.values()
        yield up


class SupervisorMetrics:
    """The supervisor's ``/metrics`` on ``host:port``; raises OSError when it cannot bind."""

    def __init__(self, host: str, port: int, port_files: Sequence[Path], timeout: float = 2.0) -> None:
        registry = CollectorRegistry()
        self._workers = WorkerMetrics(port_files, timeout)
        registry.register(self._workers)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError:
            self._workers.close()
            raise
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._workers.close()
