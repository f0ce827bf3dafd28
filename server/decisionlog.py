"""The decision log: JSON lines of the decisions made, counted and written off the serving path.

``serve --decision-log FILE|-`` (``-``: stdout) writes, for the decisions the
filter keeps (``all``, ``deny``, or ``sample:N``, one in about N), one line per
distinct flow of each (method, caller, generation) every second, with its
``count`` of decisions and
the flow, both ends by name, the verdict and reason, the policies that isolated
the pod(s) and the rule that decided, the generation, the call's latency and its
caller (peer address; with mutual TLS the client certificate's subject) and
method.  docs/decision-log.md shows a line and what each field means.

Shape and why:

- **Counted, not copied.**  A line stands for every decision of one flow in one
  window (:data:`FLUSH_SECONDS`) of one (method, caller, generation): the
  writer counts flows in C (``Counter.update`` over their wire bytes), so the
  per-decision cost is a hash and an increment, never a rendered line.
- **The serving path only enqueues.**  A call hands over what it already holds
  (the request's flow wire bytes and the cached result entries, or its
  :class:`Decision` objects) as ONE record per call; no per-decision work or
  object is added for the log on the hot path.  The count of lines the record
  will make is known up front (``all``: the flows; ``deny``: the wire cache's
  tally, or a pass over the decisions; ``sample:N``: a counter).
- **Bounded, never blocking.**  Records wait in a :class:`queue.SimpleQueue`;
  the lines waiting are counted against :data:`QUEUE_LINES`.  A call whose
  lines would pass the bound drops them and counts them (``dropped``, the
  ``netpol_pdp_decision_log_lines_total{outcome="dropped"}`` series): a stalled
  sink (a pipe nobody reads, a full disk) costs decisions nothing.
- **Explained by the writer, once per flow and generation.**  The isolating
  policies and the deciding rule need an explained decision; the writer thread
  explains each distinct flow once per generation (at THE generation that
  decided it: :meth:`Index.decide` ``gen=``) and keeps its rendered JSON
  fragment.
- **Rotation is left to the log collector**: ``-`` for the container's stdout,
  or a file that logrotate renames; SIGHUP makes the server reopen the file
  (:meth:`DecisionLog.reopen`), as collectors expect.
- Shutdown flushes: :meth:`close` writes what is queued (bounded by a timeout,
  so a stalled sink cannot hold the exit; what is left is counted dropped).
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import IO, Any

from google.protobuf.message import DecodeError

from netpol_pdp.index.decision import Decision, DirectionTrace, Reason, Verdict
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.server.config import ConfigError
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1.convert import flow_from_pb

#: Lines waiting for the writer before calls drop theirs.
QUEUE_LINES = 100_000
#: Rendered flows kept by the writer, and distinct flows a window holds before it is written.
FRAGMENT_LIMIT = 1 << 16
#: How often the writer writes the window's lines (one per distinct flow, with its count).
FLUSH_SECONDS = 1.0
#: How long :meth:`DecisionLog.close` waits for the writer to drain the queue.
CLOSE_TIMEOUT = 5.0

_DENY = Verdict.DENY


@dataclass(frozen=True)
class LogFilter:
    """Which decisions are logged: ``all``, ``deny``, or ``sample:N`` (every N-th decision)."""

    mode: str = "all"
    every: int = 1

    @classmethod
    def parse(cls, text: str) -> LogFilter:
        if text in ("all", "deny"):
            return cls(text)
        head, sep, number = text.partition(":")
        if head == "sample" and sep and number.isdigit() and 1 <= int(number) <= 1 << 30:
            return cls("sample", int(number))
        raise ConfigError(f"--decision-log-filter: must be all, deny or sample:N with N >= 1 (got {text!r})")

    def __str__(self) -> str:
        return f"sample:{self.every}" if self.mode == "sample" else self.mode


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called: the transport's peer (``ipv4:10.0.0.1:5123``) and the client certificate's subject."""

    peer: str
    subject: str = ""


def peer_of(name: object) -> str:
    """A socket's ``peername`` in gRPC's spelling (``ipv4:1.2.3.4:5678``, ``ipv6:[fd00::1]:5678``),
    for the callers of the HTTP servers; empty when the transport gives none."""
    if isinstance(name, tuple) and len(name) >= 2:
        host, port = name[0], name[1]
        return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"
    return ""


class _Record:
    """One call's decisions, as the serving path had them (the writer renders them)."""

    __slots__ = (
        "caller",
        "decisions",
        "denied",
        "flows",
        "gen",
        "index",
        "lines",
        "method",
        "request_id",
        "results",
        "sample",
        "seconds",
        "unix",
    )

    def __init__(
        self, method: str, caller: Caller | None, seconds: float, request_id: int, lines: int
    ) -> None:
        self.method = method
        self.caller = caller
        self.seconds = seconds
        self.request_id = request_id
        self.unix = time.time()
        self.lines = lines
        self.index: Any = None
        self.gen: Any = None
        #: wire bytes of each flow (cached path) or the Flow objects (decided path)
        self.flows: Sequence[bytes] | Sequence[Flow] = ()
        #: the cached path: results entries and the slot's entry -> (verdict, reason)
        self.results: Sequence[bytes] = ()
        #: the slot's entries of denials (``deny``: only their flows are counted)
        self.denied: set[bytes] | frozenset[bytes] = frozenset()
        #: the decided path: one decision per flow
        self.decisions: Sequence[Decision] = ()
        #: sample:N: the first position logged (every N-th after it); -1: filter by mode
        self.sample = -1


def endpoint_json(ip: str, end: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ip": ip}
    out.update(end.to_dict())
    return out


def _trace_json(trace: DirectionTrace) -> dict[str, Any]:
    out = trace.to_dict()
    out.pop("near_misses", None)  # why-not belongs to explain, not to every logged line
    return out


def render(flow: Flow, d: Decision) -> str:
    """The per-flow part of a line (no braces): the same for every call deciding ``flow`` at one generation.

    ``policies`` names what decided: for a denial the policies isolating each
    denied direction (or the cluster policy whose Deny rule decided), for an
    allowed isolated direction its isolating policies; ``rules`` the rules that
    allowed it (NetworkPolicy) or the cluster policy rule that decided it.
    """
    policies: list[str] = []
    rules: list[dict[str, Any]] = []
    traces: dict[str, Any] = {}
    for trace in (d.egress, d.ingress):
        if trace is None:
            continue
        traces[trace.direction] = _trace_json(trace)
        decided = trace.decided_by
        if decided is not None:
            rules.append({"direction": trace.direction, **decided.to_dict()})
            if decided.action == "Deny" or d.verdict is not _DENY:
                policies.append(decided.policy)
            continue
        if d.verdict is _DENY and trace.allowed:
            continue  # the other direction denied it
        policies.extend(p for p in trace.isolating if p not in policies)
        rules.extend(
            {"direction": trace.direction, "policy": r.policy, "rule": r.rule} for r in trace.allowed_by
        )
    body: dict[str, Any] = {
        "verdict": d.verdict.value,
        "reason": d.reason.value,
        "protocol": flow.protocol,
        "dst_port": flow.dst_port,
        "src": endpoint_json(flow.src_ip, d.src),
        "dst": endpoint_json(flow.dst_ip, d.dst),
        "policies": policies,
        "rules": rules,
        **traces,
    }
    if d.notes:
        body["notes"] = list(d.notes)
    return json.dumps(body, separators=(",", ":"))[1:-1]


_TICK = object.__new__(object)  # the writer's "time to flush" (a record that never comes from a call)


class _Group:
    """The decisions of one (method, caller, generation) in the current window, counted per flow."""

    __slots__ = ("calls", "counts", "decisions", "first", "gen", "index", "last", "max_seconds", "seconds")

    def __init__(self, index: Any, gen: Any, unix: float) -> None:
        self.index = index
        self.gen = gen
        #: flow wire bytes (cached answers) or Flow objects -> decisions counted
        self.counts: Counter[Any] = Counter()
        #: Flow -> its decision (calls that had Decision objects)
        self.decisions: dict[Flow, Decision] = {}
        self.calls = 0
        self.seconds = 0.0
        self.max_seconds = 0.0
        self.first = self.last = unix


def _stamp(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)) + f".{int(unix % 1 * 1e6):06d}Z"


def _prefix(method: str, caller: Caller | None, generation: int, group: _Group) -> str:
    """The part of a line its group shares: times, method, generation, calls and their latency, caller."""
    head: dict[str, Any] = {
        "ts": _stamp(group.first),
        "ts_last": _stamp(group.last),
        "method": method,
        "generation": generation,
        "calls": group.calls,
        "latency_us": round(group.seconds / group.calls * 1e6, 1),
        "latency_max_us": round(group.max_seconds * 1e6, 1),
    }
    if caller is not None:
        head["caller"] = (
            {"peer": caller.peer, "subject": caller.subject} if caller.subject else {"peer": caller.peer}
        )
    return "{" + json.dumps(head, separators=(",", ":"))[1:-1] + ","


class _Sink:
    """The file or stdout lines go to; reopened on SIGHUP (a file), flushed after each record."""

    def __init__(self, target: str, stream: IO[str] | None = None) -> None:
        self.target = target
        self._stream = stream
        self.stream = self._open()

    def _open(self) -> IO[str]:
        if self._stream is not None:
            return self._stream
        if self.target == "-":
            return sys.stdout
        try:
            return open(Path(self.target), "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--decision-log {self.target}: cannot open: {exc.strerror or exc}") from None

    def reopen(self) -> None:
        if self._stream is None and self.target != "-":
            old, self.stream = self.stream, self._open()
            old.close()

    def close(self) -> None:
        if self._stream is None and self.target != "-":
            with contextlib.suppress(OSError):  # a pipe whose reader left: what was lost is counted
                self.stream.close()


class DecisionLog:
    """The bounded queue and its writer thread; ``cached``/``decided`` are called by serving threads."""

    def __init__(
        self,
        target: str,
        log_filter: LogFilter | None = None,
        *,
        stream: IO[str] | None = None,
        queue_lines: int = QUEUE_LINES,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.target = target
        self.filter = log_filter or LogFilter()
        self._mode = self.filter.mode
        self._every = self.filter.every
        self._sink = _Sink(target, stream)
        self._queue: queue.SimpleQueue[_Record | None] = queue.SimpleQueue()
        self._capacity = queue_lines
        self._lock = threading.Lock()
        self._pending = 0
        self._seen = 0  # decisions counted for sample:N (approximate under concurrent calls)
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self.lines = 0
        self.flush_seconds = flush_seconds
        #: (method, caller, generation, from the wire cache) -> its group, until the next flush
        self._window: dict[tuple[str, Caller | None, int, bool], _Group] = {}
        self._window_lines = 0
        self._writing = 0  # decisions of the window being written now
        self._distinct = 0
        #: (generation, flow bytes or Flow) -> (rendered part of a line, denied)
        self._fragments: dict[tuple[int, Any], tuple[str, bool]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- serving threads

    def _lines(self, n: int, denies: int) -> tuple[int, int]:
        """(lines, first sampled position) a call of ``n`` decisions (``denies`` of them denials) makes."""
        if self._mode == "all":
            return n, -1
        if self._mode == "deny":
            return denies, -1
        seen = self._seen
        self._seen = seen + n
        first = (-seen) % self._every
        if first >= n:
            return 0, -1
        return (n - first - 1) // self._every + 1, first

    def _admit(self, record: _Record) -> None:
        with self._lock:
            if self._closed or self._pending + record.lines > self._capacity:
                self.dropped += record.lines
                return
            self._pending += record.lines
        self._queue.put(record)

    def cached(
        self,
        method: str,
        caller: Caller | None,
        seconds: float,
        request_id: int,
        slot: Any,
        chunks: Sequence[bytes],
        results: Sequence[bytes],
        tally: Mapping[tuple[Verdict, Reason], int],
    ) -> None:
        """A call answered through the wire cache: flow bytes, results entries, the slot's denials."""
        n = sum(tally.values())
        denies = sum(c for (v, _), c in tally.items() if v is _DENY) if self._mode == "deny" else 0
        lines, first = self._lines(n, denies)
        if not lines:
            return
        record = _Record(method, caller, seconds, request_id, lines)
        record.index, record.gen = slot.index, slot.gen
        record.flows, record.results, record.denied = chunks, results, slot.denied
        record.sample = first
        self._admit(record)

    def decided(
        self,
        method: str,
        caller: Caller | None,
        seconds: float,
        request_id: int,
        index: Any,
        gen: Any,
        flows: Sequence[Flow],
        decisions: Sequence[Decision],
    ) -> None:
        """A call with its :class:`Decision` objects (uncached, explained, or by name)."""
        n = len(decisions)
        denies = sum(1 for d in decisions if d.verdict is _DENY) if self._mode == "deny" else 0
        lines, first = self._lines(n, denies)
        if not lines:
            return
        record = _Record(method, caller, seconds, request_id, lines)
        record.index, record.gen = index, gen
        record.flows, record.decisions = flows, decisions
        record.sample = first
        self._admit(record)

    # ----------------------------------------------------------------- writer thread

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_seconds
        while True:
            record: _Record | object | None
            try:
                record = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                record = _TICK
            if record is None:
                self._flush()
                return
            while isinstance(record, _Record):
                try:
                    self._add(record)
                except Exception as exc:  # a bug must not end the writer: it is counted
                    self._failed(record.lines, f"adding a call: {exc!r}", queued=True)
                # Take what else is queued without blocking: a blocking get gives the GIL
                # away and waits up to a switch interval to get it back, once per record.
                try:
                    record = self._queue.get_nowait()
                except queue.Empty:
                    break
            if record is None:
                self._flush()
                return
            if time.monotonic() >= next_flush or self._distinct >= FRAGMENT_LIMIT:
                self._flush()
                next_flush = time.monotonic() + self.flush_seconds

    def _add(self, record: _Record) -> None:
        """Count the record's decisions into the window: C-speed counting, no per-decision Python step."""
        gen_number = record.gen.number if record.gen is not None else record.index.generation
        wire = bool(record.results)
        key = (record.method, record.caller, gen_number, wire)
        group = self._window.get(key)
        if group is None:
            group = self._window[key] = _Group(record.index, record.gen, record.unix)
        items: Sequence[Any] = record.flows
        if record.sample >= 0:
            items = items[record.sample :: self._every]
        elif wire and self._mode == "deny":
            # in C: the flows whose cached result is a denial
            items = list(compress(items, map(record.denied.__contains__, record.results)))
        before = len(group.counts)
        group.counts.update(items)
        self._distinct += len(group.counts) - before
        if not wire:
            flows: Sequence[Flow] = record.flows  # type: ignore[assignment]  # Flow objects off the wire path
            group.decisions.update(zip(flows, record.decisions, strict=True))
        group.calls += 1
        group.seconds += record.seconds
        group.max_seconds = max(group.max_seconds, record.seconds)
        group.last = record.unix
        with self._lock:  # out of the queue (which bounds the callers), into the window
            self._pending -= record.lines
            self._window_lines += record.lines

    def _flush(self) -> None:
        """One line per distinct flow of each (method, caller, generation) of the window, with its count."""
        with self._lock:
            window, self._window = self._window, {}
            taken, self._window_lines = self._window_lines, 0
            self._writing = taken
        self._distinct = 0
        if not window:
            return
        deny_only = self._mode == "deny"
        lines: list[str] = []
        written = 0
        try:
            for (method, caller, gen_number, wire), group in window.items():
                prefix = _prefix(method, caller, gen_number, group)
                for item, count in group.counts.items():
                    rendered = self._fragment(group, gen_number, item, wire)
                    if rendered is None or (deny_only and not rendered[1]):
                        continue
                    lines.append(f'{prefix}"count":{count},{rendered[0]}}}\n')
                    written += count
        except Exception as exc:
            self._failed(taken, f"rendering: {exc!r}")
            return
        try:
            self._sink.stream.write("".join(lines))
            self._sink.stream.flush()
        except (OSError, ValueError) as exc:
            self._failed(taken, f"writing {self.target}: {exc}")
            return
        with self._lock:
            self._writing = 0
            self.written += written
            self.lines += len(lines)

    def _failed(self, decisions: int, message: str, queued: bool = False) -> None:
        """``decisions`` lost (``queued``: still counted in the queue; else: the window being written)."""
        with self._lock:
            if queued:
                self._pending -= decisions
            else:
                self._writing = 0
            self.errors += decisions
            self.last_error = message

    def _fragment(self, group: _Group, gen_number: int, item: Any, wire: bool) -> tuple[str, bool] | None:
        """(the flow's part of a line, whether denied), once per flow and generation; None: no decision."""
        key = (gen_number, item)
        hit = self._fragments.get(key)
        if hit is not None:
            return hit
        if len(self._fragments) >= FRAGMENT_LIMIT:
            self._fragments = {}
        if wire:
            try:
                flow = flow_from_pb(pb.Flow.FromString(item))
            except (FlowError, DecodeError):
                return None  # a malformed flow's error entry: not a decision
            decision = self._explain(group, flow)
        else:
            flow = item
            decision = group.decisions[item]
            if not decision.explained:
                decision = self._explain(group, flow)
        out = self._fragments[key] = (render(flow, decision), decision.verdict is _DENY)
        return out

    @staticmethod
    def _explain(group: _Group, flow: Flow) -> Decision:
        if group.gen is not None:
            return group.index.decide(flow, explain=True, gen=group.gen)  # type: ignore[no-any-return]
        return group.index.decide(flow, explain=True)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- control

    def reopen(self) -> None:
        """Reopen the file (SIGHUP, after logrotate renamed it); stdout stays."""
        try:
            self._sink.reopen()
        except ConfigError as exc:
            with self._lock:
                self.last_error = str(exc)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Write what is queued (up to ``timeout`` s) and stop; True if the queue was drained."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        drained = not self._thread.is_alive()
        if drained:
            self._sink.close()
        else:
            with self._lock:  # the writer is stuck (a stalled sink): what it holds is lost
                self.dropped += self._pending + self._window_lines + self._writing
                self._pending = self._window_lines = self._writing = 0
        return drained

    def status_pb(self) -> pb.DecisionLogStatus:
        with self._lock:
            return pb.DecisionLogStatus(
                path=self.target,
                filter=str(self.filter),
                written=self.written,
                dropped=self.dropped,
                errors=self.errors,
                last_error=self.last_error,
                queued=self._pending + self._window_lines + self._writing,
                queue_limit=self._capacity,
            )

    def counts(self) -> tuple[int, int, int]:
        """(written, dropped, errors): the metrics' counters."""
        return self.written, self.dropped, self.errors
