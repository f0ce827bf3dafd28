"""Prometheus metrics of the decision service, on their own registry and HTTP port.

A per-server :class:`~prometheus_client.CollectorRegistry` (not the global one)
lets tests and ``--workers`` run several servers in one process tree without
"duplicated timeseries" errors.  Per-flow counting would cost a lock per flow
on the hot path, so a batch is tallied in a local ``Counter`` first and each
distinct (verdict, reason) is incremented once.

Exported series (prefix ``netpol_pdp_``):

- ``decisions_total{verdict,reason}``         decisions made;
- ``flow_errors_total{field}``                malformed flows refused (per field);
- ``rpc_duration_seconds{method}``            server-side latency of each call/stream message;
- ``batch_flows{method}``                     flows per DecideBatch/DecideStream message;
- ``index_generation``                        the generation being served;
- ``ready``                                   1 once the first load succeeded;
- ``feed_loads_total``, ``feed_errors_total`` successful and failed (re)loads of the feed;
- ``decision_log_lines_total{outcome}``       decision log lines written, dropped, lost to errors
                                              (``serve --decision-log``, server/decisionlog.py).

``method`` is the RPC (``Decide``, ``DecideBatch``, ``DecideStream``, ``Check``) or the
HTTP/JSON route's (``HTTP/Decide``, ``HTTP/DecideBatch``; server/http_api.py).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from netpol_pdp.index.decision import Decision, Reason, Verdict

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000)


class _FeedCollector(Collector):
    """Reads the feed's counters when scraped, so the feed needs no metrics code of its own."""

    def __init__(self, counters: Callable[[], tuple[int, int]]) -> None:
        self._counters = counters

    def collect(self) -> Iterable[Any]:
        loads, errors = self._counters()
        yield CounterMetricFamily("netpol_pdp_feed_loads", "Successful loads of the feed.", value=loads)
        yield CounterMetricFamily(
            "netpol_pdp_feed_errors", "Failed reloads of the feed (last good state kept).", value=errors
        )


class _DecisionLogCollector(Collector):
    """``decision_log_lines_total{outcome}``: the decision log's own counters, read when scraped."""

    def __init__(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Any]:
        family = CounterMetricFamily(
            "netpol_pdp_decision_log_lines",
            "Decision log lines: written, dropped (queue full: the sink is slow or stalled), errors.",
            labels=["outcome"],
        )
        for outcome, value in zip(("written", "dropped", "errors"), self._counts(), strict=True):
            family.add_metric([outcome], value)
        yield family


class Metrics:
    """The service's metrics; ``observe_*`` are called from the serving path."""

    def __init__(
        self,
        generation: Callable[[], int],
        ready: Callable[[], bool],
        feed_counters: Callable[[], tuple[int, int]],
        stale: Callable[[], bool] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("netpol_pdp_decisions", "Decisions made.", ["verdict", "reason"], registry=r)
        self.flow_errors = Counter(
            "netpol_pdp_flow_errors", "Malformed flows refused, by field.", ["field"], registry=r
        )
        self.latency = Histogram(
            "netpol_pdp_rpc_duration_seconds",
            "Server-side time to decide one call or stream message.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "netpol_pdp_batch_flows",
            "Flows per batch message.",
            ["method"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        Gauge("netpol_pdp_index_generation", "Index generation being served.", registry=r).set_function(
            lambda: float(generation())
        )
        Gauge("netpol_pdp_ready", "1 once the first load succeeded.", registry=r).set_function(
            lambda: 1.0 if ready() else 0.0
        )
        if stale is not None:
            Gauge(
                "netpol_pdp_feed_stale",
                "1 while the Kubernetes feed has had no working watch for its stale threshold.",
                registry=r,
            ).set_function(lambda: 1.0 if stale() else 0.0)
        r.register(_FeedCollector(feed_counters))
        methods = ("Decide", "DecideBatch", "DecideStream", "Check", "Reach", "Matrix")
        http = ("HTTP/Decide", "HTTP/DecideBatch", "HTTP/Reach", "HTTP/Matrix")
        self._lat = {m: self.latency.labels(m) for m in methods + http}
        self._bat = {m: self.batch.labels(m) for m in ("DecideBatch", "DecideStream", "HTTP/DecideBatch")}
        #: (verdict, reason) -> its decisions_total child, so the serving path skips labels()
        self._children: dict[tuple[Verdict, Reason], Any] = {}
        self._http: Any = None

    def observe(self, method: str, seconds: float, decisions: Sequence[Decision], flows: int | None) -> None:
        """Record one call (``flows`` is the batch size, None for unary)."""
        if len(decisions) == 1:
            d = decisions[0]
            self.observe_tally(method, seconds, {(d.verdict, d.reason): 1}, flows)
            return
        self.observe_tally(method, seconds, Tally((d.verdict, d.reason) for d in decisions), flows)

    def observe_tally(
        self, method: str, seconds: float, tally: Mapping[tuple[Verdict, Reason], int], flows: int | None
    ) -> None:
        """Record one call whose decisions are already counted by (verdict, reason).

        The wire cache (server/wirecache.py) answers repeated flows without a
        :class:`Decision` object, so it counts them this way.
        """
        self._lat[method].observe(seconds)
        if flows is not None:
            self._bat[method].observe(flows)
        children = self._children
        for key, n in tally.items():
            child = children.get(key)
            if child is None:
                child = children[key] = self.decisions.labels(key[0].value, key[1].value)
            child.inc(n)

    def watch_decision_log(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        """Export the decision log's (written, dropped, errors) line counts, read when scraped."""
        self.registry.register(_DecisionLogCollector(counts))

    def observe_query(self, method: str, seconds: float) -> None:
        """Record one Reach or Matrix call (its latency; it makes no decision to count)."""
        self._lat[method].observe(seconds)

    def flow_error(self, field: str) -> None:
        self.flow_errors.labels(field).inc()

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` over HTTP on a daemon thread; returns the bound port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = (server, thread)
        return int(server.server_address[1])

    def close(self) -> None:
        if self._http is not None:
            server, thread = self._http
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._http = None
