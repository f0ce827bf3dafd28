"""``netpol-pdp serve``: an index, its manifest feed, the gRPC server and metrics, run together.

Threads of one serving process::

    main thread   waits for SIGTERM/SIGINT, then drains and stops everything
    feed thread   ManifestFeed.start() then .watch(): the index's ONLY writer
    grpc          the server's thread pool (or, with --server-mode aio, one event
                  loop thread) serving DecisionService, health, reflection
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

With ``kube=True`` the feed is the Kubernetes watch instead
(:mod:`netpol_pdp.server.kubeserve`: ready after all four initial lists; stale
and fail-closed handling).

Readiness: health is NOT_SERVING and Decide answers UNAVAILABLE until the first
load succeeds.  A first load that fails is a startup error (SEMANTICS.md): the
problems are logged and ``serve`` exits with status 2.  With
``--wait-for-source`` it stays up instead, NOT_SERVING, and the feed keeps
watching, so fixing the files makes the server ready without a restart.

``--workers N`` (N > 1) starts N such processes sharing the port through
SO_REUSEPORT (the kernel spreads connections over them); each has its own index
and feed.  With ``--metrics-listen`` the supervisor serves that port itself,
every worker's series labelled ``worker`` (server/workermetrics.py).
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.kubefeed import KubeFeed, load_api_client
from netpol_pdp.index.manifests import DEFAULT_MAX_FILE_BYTES, FeedReport, ManifestFeed, ManifestSource
from netpol_pdp.server import envoy as ext_authz
from netpol_pdp.server.app import STOP_MARGIN, Mode, ServerHandle, TlsConfig, split_host_port, start_server
from netpol_pdp.server.config import DEFAULT_MAX_BATCH, ConfigError
from netpol_pdp.server.decisionlog import DecisionLog, LogFilter
from netpol_pdp.server.envoy_http import HttpAuthorizer
from netpol_pdp.server.http_api import HttpApi
from netpol_pdp.server.kubeserve import Health, KubeTracker
from netpol_pdp.server.limits import max_streams
from netpol_pdp.server.logging import get_logger, log_event
from netpol_pdp.server.metrics import Metrics
from netpol_pdp.server.service import AioDecisionService, DecisionCore, DecisionService
from netpol_pdp.server.status import FeedInfo, ServerState
from netpol_pdp.server.workermetrics import SupervisorMetrics, write_port_file

log = get_logger("serve")


@dataclass
class ServeOptions:
    sources: Sequence[Path]
    listen: str = "127.0.0.1:50051"
    metrics_listen: str | None = None
    #: Envoy's HTTP ext_authz (``http_service``) over plain HTTP here (server/envoy_http.py)
    envoy_http_listen: str | None = None
    tls: TlsConfig | None = None
    insecure: bool = False
    mode: Mode = "sync"
    workers: int = 1
    threads: int = 16
    max_batch: int = DEFAULT_MAX_BATCH
    grace: float = 10.0
    switch_interval: float = 0.001
    reuse_port: bool = False
    #: set by the ``--workers`` supervisor: where this worker publishes its metrics port
    metrics_port_file: Path | None = None
    #: set by the ``--workers`` supervisor: its pid, so a worker can tell when it is gone
    supervisor_pid: int | None = None
    log_level: str = "info"
    #: follow a Kubernetes cluster instead of ``sources`` (server/kubeserve.py)
    kube: bool = False
    kubeconfig: str | None = None
    kube_context: str | None = None
    stale_after: float = 30.0
    fail_closed_after: float | None = None
    #: a failed first load of ``sources`` keeps the server up (NOT_SERVING) waiting for
    #: a fix, instead of being a startup error (SEMANTICS.md's default)
    wait_for_source: bool = False
    #: the largest manifest file read (``--max-file-size``); a larger one is a load problem
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: ``--decision-log FILE|-`` and its filter (server/decisionlog.py); None: off
    decision_log: str | None = None
    decision_log_filter: LogFilter = field(default_factory=LogFilter)
    #: ``--http-listen``: the HTTP/JSON API (server/http_api.py); None: off
    http_listen: str | None = None
    #: the verdict of a flow to a Service that some endpoints allow and some deny
    service_partial: Verdict = Verdict.DENY


class FeedTracker:
    """Turns the feed's reports into readiness, logs and ``GetStatus``'s :class:`FeedInfo`."""

    def __init__(self, feed: ManifestFeed, state: ServerState, *, wait_for_source: bool = False) -> None:
        self.feed = feed
        self.state = state
        self.wait_for_source = wait_for_source
        self.last_error_unix = 0.0
        #: the problems of a failed first load, when that is a startup error
        self.startup_error: list[str] | None = None
        #: the server's health (set once the server exists): NOT_SERVING if the feed dies
        self.health: Health | None = None
        feed.add_listener(self.on_report)

    def on_report(self, report: FeedReport) -> None:
        if report.ok:
            log_event(
                log,
                logging.INFO if report.initial or report.changed else logging.DEBUG,
                "feed_loaded" if report.initial else "feed_reloaded",
                generation=report.generation,
                upserts=report.upserts,
                deletes=report.deletes,
                files=report.files,
                parsed=report.parsed,
                seconds=round(report.seconds, 4),
                **({"waiting_for": report.waiting} if report.waiting else {}),
            )
            if report.empty and (report.initial or report.changed):
                log_event(
                    log,
                    logging.WARNING,
                    "feed_empty",
                    generation=report.generation,
                    files=report.files,
                    warning="the sources hold no object: every flow is allowed (no-pod-involved)",
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
            stopped=st.stopped or "",
            empty=st.loads > 0 and st.empty,
        )

    def run(self, stop: threading.Event) -> None:
        """The writer thread: first load, then watch until ``stop``.

        A load's problems never end it (they are reported, the last good state kept);
        if it ends anyway, on any exception, that is never silent: the feed's status
        says ``stopped`` (GetStatus ``feed.stopped``, ``synced`` false), health turns
        NOT_SERVING, and before the first load it is a startup error (exit 2).
        """
        try:
            self.feed.start()
        except SourceError as exc:
            # reported by on_report; a startup error unless asked to wait for a fix
            if not self.wait_for_source:
                self.startup_error = list(exc.problems)
                return
        except BaseException as exc:
            self._stopped(exc)
            return
        try:
            self.feed.watch(stop)
        except BaseException as exc:
            self._stopped(exc)

    def _stopped(self, exc: BaseException) -> None:
        self.feed.mark_stopped(exc)
        log.error("feed_crashed", exc_info=exc)
        error = self.feed.status.stopped
        log_event(log, logging.ERROR, "feed_stopped", error=error, kept_last_good=self.state.ready)
        if not self.state.ready:
            self.startup_error = [self.feed.status.stopped or "the manifest feed stopped"]
        if self.health is not None:
            self.health.set_serving(False)


class Service:
    """One serving process's parts, started: index, feed thread, gRPC server, metrics.

    ``netpol-pdp serve`` runs one until a signal; tests run several in-process
    (each on port 0) and :meth:`close` them.
    """

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.index = Index(options.service_partial)
        self.state = ServerState(self.index)
        self.feed: ManifestFeed | KubeFeed
        self.tracker: FeedTracker | KubeTracker
        stale = None
        if options.kube:
            self.feed = _kube_feed(options, self.index)
            self.tracker = KubeTracker(self.feed, self.state)
            stale = self.tracker.stale
            sources = [self.feed.source]
        else:
            source = ManifestSource(options.sources, max_file_bytes=options.max_file_bytes)
            self.feed = ManifestFeed(source, self.index)
            self.tracker = FeedTracker(self.feed, self.state, wait_for_source=options.wait_for_source)
            sources = [str(p) for p in options.sources]
        self.state.set_feed_info(self.tracker.info)
        index, state = self.index, self.state
        self.metrics = Metrics(lambda: index.generation, lambda: state.ready, state.feed_counters, stale)
        self.decision_log: DecisionLog | None = None
        if options.decision_log is not None:
            self.decision_log = DecisionLog(options.decision_log, options.decision_log_filter)
            self.metrics.watch_decision_log(self.decision_log.counts)
        self.core = DecisionCore(
            state,
            self.metrics,
            options.max_batch,
            streams=max_streams(options.mode, options.threads),
            decision_log=self.decision_log,
        )
        servicer = AioDecisionService(self.core) if options.mode == "aio" else DecisionService(self.core)
        self.handle: ServerHandle = start_server(
            servicer,
            options.listen,
            mode=options.mode,
            tls=options.tls,
            insecure=options.insecure,
            threads=options.threads,
            reuse_port=options.reuse_port,
            # Envoy's ext_authz Authorization/Check on the same port, UNAVAILABLE until ready.
            extra_services=[
                ext_authz.service(lambda: index if state.ready else None, self.metrics, self.decision_log)
            ],
        )
        self.port = self.handle.port
        handle = self.handle
        state.on_ready(lambda: handle.set_serving(True))
        self.tracker.health = handle
        self.envoy_http: HttpAuthorizer | None = None
        self.envoy_http_port: int | None = None
        if options.envoy_http_listen:
            self.envoy_http, self.envoy_http_port = self._start_envoy_http(options)
        self.http: HttpApi | None = None
        self.http_port: int | None = None
        if options.http_listen:
            self.http, self.http_port = self._start_http(options)
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
            if options.metrics_port_file is not None:
                write_port_file(options.metrics_port_file, self.metrics_port)
        host, _ = split_host_port(options.listen)
        self.address = f"{host}:{self.port}"
        log_event(
            log,
            logging.INFO,
            "listening",
            address=self.address,
            port=self.port,
            metrics_port=self.metrics_port,
            envoy_http_port=self.envoy_http_port,
            http_port=self.http_port,
            decision_log=options.decision_log,
            tls=options.tls is not None,
            mutual_tls=bool(options.tls and options.tls.client_ca),
            mode=options.mode,
            pid=os.getpid(),
            sources=sources,
            max_batch=options.max_batch,
        )
        self._feed_stop = threading.Event()
        self._feed_thread = threading.Thread(
            target=self.tracker.run, args=(self._feed_stop,), name="feed", daemon=True
        )
        self._feed_thread.start()

    def _start_http(self, options: ServeOptions) -> tuple[HttpApi, int]:
        """The HTTP/JSON API on the same core (options checked by ``cmd_serve.check_http_listen``)."""
        assert options.http_listen is not None
        host, port = split_host_port(options.http_listen, "--http-listen")
        api = HttpApi(self.core, options.tls)
        try:
            return api, api.start(host, port)
        except OSError as exc:
            self._abort()
            raise ConfigError(f"--http-listen {options.http_listen}: cannot bind ({exc.strerror})") from None
        except ConfigError:
            self._abort()
            raise

    def _abort(self) -> None:
        """Undo a start that failed after the gRPC server started."""
        if self.envoy_http is not None:
            self.envoy_http.stop()
        self.handle.stop(0)
        if self.decision_log is not None:
            self.decision_log.close(0.5)

    def reopen_logs(self) -> None:
        """SIGHUP: reopen the decision log's file (after logrotate moved it)."""
        if self.decision_log is not None:
            self.decision_log.reopen()
            log_event(log, logging.INFO, "decision_log_reopened", path=self.decision_log.target)

    def _start_envoy_http(self, options: ServeOptions) -> tuple[HttpAuthorizer, int]:
        """The HTTP authorizer (options checked by ``cmd_serve.check_envoy_http_listen``)."""
        assert options.envoy_http_listen is not None
        host, port = split_host_port(options.envoy_http_listen, "--envoy-http-listen")
        index, state = self.index, self.state
        authorizer = HttpAuthorizer(
            lambda: index if state.ready else None,
            self.metrics,
            reuse_port=options.reuse_port,
            decision_log=self.decision_log,
        )
        try:
            return authorizer, authorizer.start(host, port)
        except OSError as exc:
            self.handle.stop(0)
            raise ConfigError(
                f"--envoy-http-listen {options.envoy_http_listen}: cannot bind ({exc.strerror})"
            ) from None

    def close(self, grace: float | None = None) -> bool:
        """Health NOT_SERVING, drain in-flight calls for ``grace`` s, stop the feed and metrics.

        Returns within ``grace`` + :data:`STOP_MARGIN` + 1 s whatever the load; False if
        calls were still running then (``stop_overrun`` is logged).
        """
        grace = self.options.grace if grace is None else grace
        log_event(log, logging.INFO, "shutting_down", grace_seconds=grace, generation=self.index.generation)
        if self.envoy_http is not None:
            self.envoy_http.stop()
        if self.http is not None:
            self.http.stop()
        clean = self.handle.stop(grace)
        if self.decision_log is not None:
            flushed = self.decision_log.close()
            status = self.decision_log.status_pb()
            log_event(
                log,
                logging.INFO if flushed else logging.WARNING,
                "decision_log_closed",
                flushed=flushed,
                written=status.written,
                dropped=status.dropped,
                errors=status.errors,
            )
        if not clean:
            log_event(log, logging.WARNING, "stop_overrun", seconds=grace + STOP_MARGIN)
        self._feed_stop.set()
        self._feed_thread.join(timeout=1)  # a daemon thread: one busy parsing does not hold the exit
        self.metrics.close()
        log_event(log, logging.INFO, "stopped")
        return clean


def serve(options: ServeOptions, stop: threading.Event | None = None) -> int:
    """Run one serving process until ``stop`` is set or SIGTERM/SIGINT arrives; returns the exit code.

    A second (or hundredth) signal while the drain runs waits for that drain: it
    is logged (``signal`` with ``draining: true``) and the exit code stays 0.
    Called on the main thread (the command), it returns with SIGTERM and SIGINT
    ignored: the process is ending, and a signal then must not cut its exit short
    (a default SIGTERM would end it with -15, a SIGINT with a traceback).
    """
    if options.workers > 1:
        return _supervise(options)
    stop = stop or threading.Event()
    sys.setswitchinterval(options.switch_interval)
    signals = SignalWatch()  # before anything starts: a signal during startup is not lost
    try:
        service = Service(options)
    except BaseException:
        signals.restore()
        raise
    failed: list[str] | None = None
    # A --workers child stops when its supervisor is gone (killed without forwarding a
    # signal), rather than live on as an orphan holding the port.  The pid comes from the
    # supervisor itself: reading getppid() here would race with a supervisor dying first.
    supervisor = options.supervisor_pid
    clean = True
    try:
        while not stop.is_set():
            if signals.wait(0.1):
                names = signals.take()
                for name in names:
                    log_event(log, logging.INFO, "signal", signal=name)
                if all(name == "SIGHUP" for name in names):
                    service.reopen_logs()
                    continue
                break
            failed = getattr(service.tracker, "startup_error", None)
            if failed is not None:
                break
            if supervisor is not None and os.getppid() != supervisor:
                log_event(log, logging.WARNING, "supervisor_gone", supervisor=supervisor)
                break
    finally:
        # the handlers stay installed while draining: a second signal only waits for it
        clean = service.close(0 if failed is not None else None)
        for name in signals.take():
            log_event(log, logging.INFO, "signal", signal=name, draining=True)
        signals.restore(ignore=True)
    if failed is not None:
        raise SourceError(failed)
    if not clean and signals.installed:
        # Calls still running past --grace + STOP_MARGIN would hold the interpreter's
        # exit (it joins the server's pool threads): end the process now.
        logging.shutdown()
        os._exit(0)
    return 0


class SignalWatch:
    """SIGTERM/SIGINT noticed without a lock: the handler only appends to a list.

    ``threading.Event.set`` in a handler can deadlock (issue 16): the handler runs
    on the main thread, possibly inside ``Event.wait``, which holds the lock
    ``set`` needs.  Here the handler appends the signal number (a list append is
    atomic) and :func:`signal.set_wakeup_fd` writes one byte to a socket pair, so
    :meth:`wait` (a ``select`` on it) returns at once.  Only on the main thread
    (the only one Python delivers signals to); elsewhere :meth:`wait` just sleeps.
    """

    def __init__(self) -> None:
        self._received: list[int] = []
        self._taken = 0
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
            handler = self._on_signal
            self._previous = {
                sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            }

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._received.append(signum)

    def wait(self, timeout: float) -> bool:
        """True once a signal has arrived (waiting up to ``timeout`` s for one)."""
        if len(self._received) == self._taken:
            select.select([self._reader], [], [], timeout)
            try:
                while self._reader.recv(4096):
                    pass
            except OSError:  # drained (BlockingIOError)
                pass
        return len(self._received) > self._taken

    def take(self) -> list[str]:
        """Names of the signals not taken before."""
        new = self._received[self._taken :]
        self._taken += len(new)
        return [signal.Signals(n).name for n in new]

    def restore(self, ignore: bool = False) -> None:
        """Put back the previous handlers, or with ``ignore`` ignore the signals from now on."""
        if self.installed:
            if ignore:
                for sig in self._previous:
                    signal.signal(sig, signal.SIG_IGN)
            else:
                _restore_signals(self._previous)
            signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


def _kube_feed(options: ServeOptions, index: Index) -> KubeFeed:
    try:
        api = load_api_client(options.kubeconfig, options.kube_context)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    return KubeFeed(index, api, stale_after=options.stale_after, fail_closed_after=options.fail_closed_after)


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
    port_dir: Path | None = None
    port_files: list[Path] = []  # one per worker when there are metrics to serve
    metrics: SupervisorMetrics | None = None
    if options.metrics_listen:
        metrics_host, metrics_port = split_host_port(options.metrics_listen, "--metrics-listen")
        port_dir = Path(tempfile.mkdtemp(prefix="netpol-pdp-workers-"))
        port_files = [port_dir / f"worker-{i}.port" for i in range(options.workers)]
        try:
            metrics = SupervisorMetrics(metrics_host, metrics_port, port_files)
        except OSError as exc:
            holder.close()
            shutil.rmtree(port_dir, ignore_errors=True)
            raise ConfigError(
                f"--metrics-listen {options.metrics_listen}: cannot bind ({exc.strerror})"
            ) from None
    children: list[subprocess.Popen[bytes]] = []
    for i in range(options.workers):
        argv = _worker_argv(options, f"{host}:{port}", port_files[i] if port_files else None)
        children.append(subprocess.Popen([sys.executable, "-m", "netpol_pdp.clients.cmd_serve", *argv]))
    log_event(
        log,
        logging.INFO,
        "workers_started",
        workers=[c.pid for c in children],
        port=port,
        metrics_port=metrics.port if metrics else None,
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous: dict[int, Any] = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        _restore_signals(previous)
        holder.close()
        if metrics is not None:
            metrics.close()
        if port_dir is not None:
            shutil.rmtree(port_dir, ignore_errors=True)
    return max(codes, default=0)


def _worker_argv(options: ServeOptions, listen: str, metrics_port_file: Path | None) -> list[str]:
    """The command line of one worker: the parent's options, one process, the shared port.

    A worker's metrics go to a private loopback port (published in ``metrics_port_file``)
    that only the supervisor reads; the operator scrapes the supervisor.
    """
    argv = ["--workers", "1", "--reuse-port", "--listen", listen, "--server-mode", options.mode]
    argv += ["--supervisor-pid", str(os.getpid())]
    for path in options.sources:
        argv += ["--source", str(path)]
    if options.kube:
        argv += ["--kube", "--stale-after", str(options.stale_after)]
        if options.kubeconfig:
            argv += ["--kubeconfig", options.kubeconfig]
        if options.kube_context:
            argv += ["--context", options.kube_context]
        if options.fail_closed_after is not None:
            argv += ["--fail-closed-after", str(options.fail_closed_after)]
    if metrics_port_file is not None:
        argv += ["--metrics-listen", "127.0.0.1:0", "--metrics-port-file", str(metrics_port_file)]
    if options.tls is not None:
        argv += ["--tls-cert", str(options.tls.cert), "--tls-key", str(options.tls.key)]
        if options.tls.client_ca is not None:
            argv += ["--client-ca", str(options.tls.client_ca)]
    if options.insecure:
        argv.append("--insecure")
    if options.envoy_http_listen:
        argv += ["--envoy-http-listen", options.envoy_http_listen]
    if options.wait_for_source:
        argv.append("--wait-for-source")
    argv += ["--max-file-size", repr(options.max_file_bytes / (1 << 20))]
    argv += ["--service-partial", options.service_partial.value.lower()]
    argv += ["--threads", str(options.threads), "--max-batch", str(options.max_batch)]
    argv += ["--grace", str(options.grace), "--switch-interval", str(options.switch_interval)]
    argv += ["--log-level", options.log_level]
    return argv
