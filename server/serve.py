"""``netpol-pdp serve``: an index, its manifest feed, the gRPC server and metrics, run together.

Threads of one serving process::

    main thread   waits for SIGTERM/SIGINT, then drains and stops everything
    feed thread   ManifestFeed.start() then .watch(): the index's ONLY writer
    grpc-aio      the event loop serving DecisionService, health, reflection
    metrics       prometheus_client's HTTP server (daemon)

Keeping reloads from starving the serving path: the feed thread parses and
diffs off the serving thread, and ``Index.apply`` publishes the new generation
by one assignment, so serving never waits on a lock.  What remains is the
GIL: CPython hands it over every ``sys.getswitchinterval()`` seconds (5 ms by
default), so a long reload step can delay every call by that much per turn.
The server sets the interval to ``--switch-interval`` (1 ms by default); the
figures of docs/grpc.md show what it does to p99 during continuous reloads.
A reload is not chopped into several ``apply`` calls: that would publish the
half-applied states in between, which no call may ever see.

Readiness: health is NOT_SERVING and Decide answers UNAVAILABLE until the first
load succeeds.  A first load that fails is logged and the feed keeps watching,
so fixing the files makes the server ready without a restart.

``--workers N`` (N > 1) starts N such processes sharing the port through
SO_REUSEPORT (the kernel spreads connections over them); each has its own index
and feed, and worker *i* serves metrics on the metrics port + *i*.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.manifests import FeedReport, ManifestFeed, ManifestSource
from netpol_pdp.server.app import ConfigError, Mode, ServerHandle, TlsConfig, split_host_port, start_server
from netpol_pdp.server.logging import get_logger, log_event
from netpol_pdp.server.metrics import Metrics
from netpol_pdp.server.service import DEFAULT_MAX_BATCH, AioDecisionService, DecisionCore, DecisionService
from netpol_pdp.server.status import FeedInfo, ServerState

log = get_logger("serve")


@dataclass
class ServeOptions:
    sources: Sequence[Path]
    listen: str = "127.0.0.1:50051"
    metrics_listen: str | None = None
    tls: TlsConfig | None = None
    insecure: bool = False
    mode: Mode = "aio"
    workers: int = 1
    threads: int = 16
    max_batch: int = DEFAULT_MAX_BATCH
    grace: float = 10.0
    switch_interval: float = 0.001
    reuse_port: bool = False
    log_level: str = "info"


class FeedTracker:
    """Turns the feed's reports into readiness, logs and ``GetStatus``'s :class:`FeedInfo`."""

    def __init__(self, feed: ManifestFeed, state: ServerState) -> None:
        self.feed = feed
        self.state = state
        self.last_error_unix = 0.0
        feed.add_listener(self.on_report)

    def on_report(self, report: FeedReport) -> None:
        if report.ok:
            log_event(
                log,
                logging.INFO,
                "feed_loaded" if report.initial else "feed_reloaded",
                generation=report.generation,
                upserts=report.upserts,
                deletes=report.deletes,
                seconds=round(report.seconds, 4),
            )
            self.state.mark_ready()
        else:
            self.last_error_unix = time.time()
            log_event(
                log,
                logging.ERROR,
                "feed_load_failed" if report.initial or not self.state.ready else "feed_reload_failed",
                generation=report.generation,
                kept_last_good=self.state.ready,
                problems=list(report.problems),
            )

    def info(self) -> FeedInfo:
        st = self.feed.status
        return FeedInfo(
            kind="manifests",
            sources=tuple(str(p) for p in self.feed.source.paths),
            loads=st.loads,
            errors=st.errors,
            last_error="\n".join(st.last_error) if st.last_error else "",
            last_load_unix=st.last_good_time or 0.0,
            last_error_unix=self.last_error_unix,
            synced=st.healthy,
        )

    def run(self, stop: threading.Event) -> None:
        """The writer thread: first load, then watch until ``stop``."""
        try:
            self.feed.start()
        except SourceError:
            pass  # reported by on_report; keep watching so a fix makes the server ready
        except Exception:
            log.exception("feed_crashed")
            return
        try:
            self.feed.watch(stop)
        except Exception:
            log.exception("feed_crashed")


class Service:
    """One serving process's parts, started: index, feed thread, gRPC server, metrics.

    ``netpol-pdp serve`` runs one until a signal; tests run several in-process
    (each on port 0) and :meth:`close` them.
    """

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.index = Index()
        self.feed = ManifestFeed(ManifestSource(options.sources), self.index)
        self.state = ServerState(self.index)
        self.tracker = FeedTracker(self.feed, self.state)
        self.state.set_feed_info(self.tracker.info)
        index, state = self.index, self.state
        self.metrics = Metrics(lambda: index.generation, lambda: state.ready, state.feed_counters)
        self.core = DecisionCore(state, self.metrics, options.max_batch)
        servicer = AioDecisionService(self.core) if options.mode == "aio" else DecisionService(self.core)
        self.handle: ServerHandle = start_server(
            servicer,
            options.listen,
            mode=options.mode,
            tls=options.tls,
            insecure=options.insecure,
            threads=options.threads,
            reuse_port=options.reuse_port,
        )
        self.port = self.handle.port
        handle = self.handle
        state.on_ready(lambda: handle.set_serving(True))
        self.metrics_port: int | None = None
        if options.metrics_listen:
            host, port = split_host_port(options.metrics_listen, "--metrics-listen")
            try:
                self.metrics_port = self.metrics.serve(host, port)
            except OSError as exc:
                self.handle.stop(0)
                raise ConfigError(
                    f"--metrics-listen {options.metrics_listen}: cannot bind ({exc.strerror})"
                ) from None
        host, _ = split_host_port(options.listen)
        self.address = f"{host}:{self.port}"
        log_event(
            log,
            logging.INFO,
            "listening",
            address=self.address,
            port=self.port,
            metrics_port=self.metrics_port,
            tls=options.tls is not None,
            mutual_tls=bool(options.tls and options.tls.client_ca),
            mode=options.mode,
            pid=os.getpid(),
            sources=[str(p) for p in options.sources],
            max_batch=options.max_batch,
        )
        self._feed_stop = threading.Event()
        self._feed_thread = threading.Thread(
            target=self.tracker.run, args=(self._feed_stop,), name="feed", daemon=True
        )
        self._feed_thread.start()

    def close(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, drain in-flight calls for ``grace`` s, stop the feed and metrics."""
        grace = self.options.grace if grace is None else grace
        log_event(log, logging.INFO, "shutting_down", grace_seconds=grace, generation=self.index.generation)
        self.handle.stop(grace)
        self._feed_stop.set()
        self._feed_thread.join(timeout=5)
        self.metrics.close()
        log_event(log, logging.INFO, "stopped")


def serve(options: ServeOptions, stop: threading.Event | None = None) -> int:
    """Run one serving process until ``stop`` is set or SIGTERM/SIGINT arrives; returns the exit code."""
    if options.workers > 1:
        return _supervise(options)
    stop = stop or threading.Event()
    sys.setswitchinterval(options.switch_interval)
    service = Service(options)
    previous = _install_signals(stop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        _restore_signals(previous)
        service.close()
    return 0


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log_event(log, logging.INFO, "signal", signal=signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _supervise(options: ServeOptions) -> int:
    """Start ``options.workers`` serving processes on one SO_REUSEPORT port; forward signals; wait."""
    host, port = split_host_port(options.listen)
    # Hold the port (bound, not listening) so that port 0 resolves once for all workers.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"--listen {options.listen}: cannot bind ({exc.strerror})") from None
    port = holder.getsockname()[1]
    metrics_host, metrics_port = (
        split_host_port(options.metrics_listen, "--metrics-listen") if options.metrics_listen else ("", 0)
    )
    children: list[subprocess.Popen[bytes]] = []
    for i in range(options.workers):
        worker_metrics = (
            f"{metrics_host}:{metrics_port + i if metrics_port else 0}" if options.metrics_listen else None
        )
        argv = _worker_argv(options, f"{host}:{port}", worker_metrics)
        children.append(subprocess.Popen([sys.executable, "-m", "netpol_pdp.clients.cmd_serve", *argv]))
    log_event(log, logging.INFO, "workers_started", workers=[c.pid for c in children], port=port)

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        _restore_signals(previous)
        holder.close()
    return max(codes, default=0)


def _worker_argv(options: ServeOptions, listen: str, metrics_listen: str | None) -> list[str]:
    """The command line of one worker: the parent's options, one process, the shared port."""
    argv = ["--workers", "1", "--reuse-port", "--listen", listen, "--server-mode", options.mode]
    for path in options.sources:
        argv += ["--source", str(path)]
    if metrics_listen:
        argv += ["--metrics-listen", metrics_listen]
    if options.tls is not None:
        argv += ["--tls-cert", str(options.tls.cert), "--tls-key", str(options.tls.key)]
        if options.tls.client_ca is not None:
            argv += ["--client-ca", str(options.tls.client_ca)]
    if options.insecure:
        argv.append("--insecure")
    argv += ["--threads", str(options.threads), "--max-batch", str(options.max_batch)]
    argv += ["--grace", str(options.grace), "--switch-interval", str(options.switch_interval)]
    argv += ["--log-level", options.log_level]
    return argv
