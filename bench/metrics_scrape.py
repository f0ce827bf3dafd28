"""What a Prometheus scrape of ``serve --workers N`` costs, next to one server's.

With ``--workers N`` the supervisor answers a scrape by reading each worker's
private endpoint and relabelling the series (server/workermetrics.py).  This
measures that: a ``serve --workers N`` and a plain ``serve`` of the bundled
example run side by side, as subprocesses on 127.0.0.1 free ports, and are
scraped in interleaved rounds.  It reports the median and the worst scrape of
each, and their ratio.

Run (a few seconds)::

    python -m netpol_pdp.bench.metrics_scrape --workers 2 --scrapes 50 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from netpol_pdp.clients.client import DecisionClient
from netpol_pdp.index.flows import make_flow


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A ``serve`` subprocess on free ports; returns it and its first listening/workers_started line."""
    argv = [sys.executable, "-m", "netpol_pdp.clients.cmd_serve", "--listen", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [*argv, "--metrics-listen", "127.0.0.1:0", *args], stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        record = json.loads(line)
        if record.get("event") in ("listening", "workers_started"):
            # keep reading its log, or a full pipe would stall the server
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, record
    raise RuntimeError(f"serve {' '.join(args)} exited with {proc.wait()}")


def fetch(port: int) -> bytes:
    """One scrape of ``/metrics`` on 127.0.0.1 (what is timed: the bytes, not their decoding)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return bytes(response.read())


def wait_for_workers(port: int, workers: int, timeout: float = 30.0) -> None:
    """Until the supervisor reports every worker up."""
    deadline = time.monotonic() + timeout
    wanted = [f'netpol_pdp_worker_up{{worker="{i}"}} 1.0' for i in range(workers)]
    while time.monotonic() < deadline:
        text = fetch(port).decode()
        if all(line in text for line in wanted):
            return
        time.sleep(0.1)
    raise RuntimeError(f"not every worker came up within {timeout} s")


def scrape_times(port: int, scrapes: int) -> list[float]:
    times = []
    for _ in range(scrapes):
        began = time.perf_counter()
        fetch(port)
        times.append((time.perf_counter() - began) * 1000)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes of each server per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    supervised, started = start("--workers", str(args.workers))
    single, listening = start()
    try:
        for port in (started["port"], listening["port"]):
            with DecisionClient(f"127.0.0.1:{port}") as client:
                client.wait_ready(30)
                client.decide(make_flow("10.244.1.12", "10.244.1.20", "TCP", 8080))  # series to copy
        wait_for_workers(started["metrics_port"], args.workers)
        workers: list[float] = []
        one: list[float] = []
        for _ in range(args.rounds):
            workers += scrape_times(started["metrics_port"], args.scrapes)
            one += scrape_times(listening["metrics_port"], args.scrapes)
    finally:
        for proc in (supervised, single):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    figures = {
        "workers": args.workers,
        "scrapes": len(one),
        "supervisor_median_ms": round(statistics.median(workers), 2),
        "supervisor_max_ms": round(max(workers), 2),
        "single_median_ms": round(statistics.median(one), 2),
        "single_max_ms": round(max(one), 2),
    }
    figures["ratio_median"] = round(figures["supervisor_median_ms"] / figures["single_median_ms"], 2)
    print(
        f"scrape of serve --workers {args.workers}: median {figures['supervisor_median_ms']} ms, "
        f"max {figures['supervisor_max_ms']} ms; one server: median {figures['single_median_ms']} ms, "
        f"max {figures['single_max_ms']} ms; ratio of medians {figures['ratio_median']}x "
        f"({figures['scrapes']} scrapes each)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
