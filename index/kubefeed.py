"""The Kubernetes feed: keeps an :class:`~netpol_pdp.index.engine.Index` current from a live cluster.

Threads and who owns what::

    kube-watch-namespaces  ─┐
    kube-watch-pods        ─┤
    kube-watch-nodes       ─┤  Listed / Changed messages   ┌──────────────┐
    kube-watch-services    ─┼─────────► queue ───────────► │ kube-applier │ ──► Index.apply(batch)
    kube-watch-networkpolicies ┤  (in stream order          │ (the one     │     one generation
    kube-watch-endpointslices  ┤   per collection)          │  writer)     │     per batch
    kube-watch-<policy CRDs>   ┘                            └──────────────┘

- Each watcher (:mod:`netpol_pdp.index.kubewatch`) lists then watches one
  collection and never touches the index.
- The applier is the index's only writer.  From the first message it collects
  for ``batch_window`` seconds (20 ms; or up to ``max_batch`` messages), keeps per
  key only the last event of the batch, and applies the batch as one
  :meth:`Index.apply` call: one new generation.  The window costs each change at
  most 20 ms of latency and turns a burst into a few large batches instead of
  hundreds of small ones, each of which would publish a generation.  A
  ``Listed`` snapshot (first sync, or re-list after ``410 Gone``) is diffed
  against what the applier knows of that kind, so objects created or deleted
  during a gap become Upsert/Delete events like any other.
- **Ready** once the initial lists of all the collections have been applied.
- Services and EndpointSlices are events like any other: an EndpointSlice
  event is one Upsert/Delete of that slice (never a re-list, never a rebuild of
  its Service), and the index updates only that Service's entries.
- **Stale** when some collection has had no working watch for ``stale_after``
  seconds; answers keep coming from the last state.
- **Fail closed** (``fail_closed_after``, off by default): after that long
  without a working watch, :attr:`KubeFeed.serving` turns False; the server maps
  it to health NOT_SERVING (docs/kubernetes.md explains why this, not a DENY with
  a new reason code).

The interface matches the manifest feed: ``start()``, ``stop()``, ``ready``,
``wait_ready()``, ``status()``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client, config

from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.kubestatus import ResourceState, ResourceStatus
from netpol_pdp.index.kubewatch import (
    COLLECTIONS,
    Changed,
    Collection,
    Listed,
    Message,
    Watcher,
    WatchOptions,
)
from netpol_pdp.index.model import Delete, Event, Kind, Object, ObjectKey, Upsert

log = logging.getLogger("netpol_pdp.kube")


class EventSink(Protocol):
    """What the feed writes to: :class:`netpol_pdp.index.engine.Index` (writer side)."""

    def apply(self, events: Iterable[Upsert | Delete]) -> int: ...


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """The whole feed at one instant: what ``GetStatus`` and ``netpol-pdp`` show."""

    source: str
    ready: bool
    stale: bool
    serving: bool
    generation: int
    batches: int
    events_applied: int
    last_apply_error: str | None
    resources: tuple[ResourceState, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ready": self.ready,
            "stale": self.stale,
            "serving": self.serving,
            "generation": self.generation,
            "batches": self.batches,
            "events_applied": self.events_applied,
            "last_apply_error": self.last_apply_error,
            "resources": [r.to_dict() for r in self.resources],
        }


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An API client from a kubeconfig, or from the pod's service account inside a cluster.

    In-cluster configuration is used when neither a kubeconfig nor a context is
    given and ``KUBERNETES_SERVICE_HOST`` is set (it is, in every pod); otherwise
    the kubeconfig (``kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``)
    with ``context`` or its current context.
    """
    cfg = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
    except (config.ConfigException, OSError, ValueError, TypeError) as e:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise SourceError([f"kubernetes configuration ({where}): {e}"]) from e
    return client.ApiClient(cfg)


class KubeFeed:
    """List+watch the collections into ``index``; see the module docstring."""

    def __init__(
        self,
        index: EventSink,
        api: client.ApiClient,
        *,
        options: WatchOptions | None = None,
        stale_after: float = 30.0,
        fail_closed_after: float | None = None,
        max_batch: int = 20_000,
        batch_window: float = 0.02,
        collections: Sequence[Collection] = COLLECTIONS,
    ) -> None:
        if fail_closed_after is not None and fail_closed_after <= 0:
            raise ValueError("fail_closed_after must be positive (seconds)")
        self._index = index
        self._api = api
        self._opts = options or WatchOptions()
        self.stale_after = stale_after
        self.fail_closed_after = fail_closed_after
        self._max_batch = max_batch
        self._batch_window = batch_window
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._statuses = {c.kind: ResourceStatus(c.kind.value) for c in collections}
        self._watchers = [
            Watcher(c, api, self._queue, self._statuses[c.kind], self._opts, self._stopping)
            for c in collections
        ]
        self._applier = threading.Thread(target=self._apply_loop, name="kube-applier", daemon=True)
        self._generation = 0
        self._batches = 0
        self._events_applied = 0
        self._last_apply_error: str | None = None
        self._started = False

    @property
    def source(self) -> str:
        return f"kubernetes {self._api.configuration.host}"

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("KubeFeed.start() called twice")
        self._started = True
        self._applier.start()
        for w in self._watchers:
            w.thread.start()
        log.info("watching %s", self.source)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread (waiting ``timeout`` seconds in all); the index keeps its last state.

        An open watch is broken at once; a list or connect in flight ends at its own
        timeout, after ``timeout`` at worst on a daemon thread that exits with the process.
        """
        self._stopping.set()
        for w in self._watchers:
            w.interrupt()
        self._queue.put(None)
        if self._started:
            deadline = time.monotonic() + timeout
            for thread in [*(w.thread for w in self._watchers), self._applier]:
                thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> KubeFeed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # state --------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the initial lists of all collections have been applied."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    @property
    def stale(self) -> bool:
        downs = [s.down_for() for s in self._statuses.values()]
        return any(d > 0 and d >= self.stale_after for d in downs)

    @property
    def serving(self) -> bool:
        """Ready, and (when failing closed) not without a working watch for too long."""
        if not self.ready:
            return False
        if self.fail_closed_after is None:
            return True
        return all(s.down_for() < self.fail_closed_after for s in self._statuses.values())

    @property
    def generation(self) -> int:
        """The generation the last applied batch published (0 before the first)."""
        return self._generation

    def status(self) -> FeedStatus:
        resources = tuple(s.snapshot(self.stale_after) for s in self._statuses.values())
        return FeedStatus(
            source=self.source,
            ready=self.ready,
            stale=any(r.stale for r in resources),
            serving=self.serving,
            generation=self._generation,
            batches=self._batches,
            events_applied=self._events_applied,
            last_apply_error=self._last_apply_error,
            resources=resources,
        )

    # the applier (the index's one writer) -------------------------------------------------

    def _apply_loop(self) -> None:
        known: dict[Kind, dict[ObjectKey, Object]] = {kind: {} for kind in self._statuses}
        synced: set[Kind] = set()
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self._batch_window
            while len(batch) < self._max_batch and batch[-1] is not None:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            pending: dict[ObjectKey, Event] = {}
            touched: set[Kind] = set()
            listed: set[Kind] = set()
            stop = False
            for msg in batch:
                if msg is None:
                    stop = True
                    break
                touched.add(msg.kind)
                if isinstance(msg, Listed):
                    listed.add(msg.kind)
                    _diff(known[msg.kind], msg, pending)
                else:
                    _follow(known[msg.kind], msg, pending)
            if pending:
                self._apply(list(pending.values()))
            synced |= listed
            for kind in touched:
                self._statuses[kind].applied(len(known[kind]), synced=kind in synced)
            if not self._ready.is_set() and synced == set(self._statuses):
                self._ready.set()
                log.info("kubernetes feed synced: %s", {k.value: len(v) for k, v in known.items()})
            if stop:
                return

    def _apply(self, events: list[Event]) -> None:
        try:
            self._generation = self._index.apply(events)
        except Exception as e:  # a bug in the index must not kill the feed: report it, keep going
            self._last_apply_error = f"{type(e).__name__}: {e}"
            log.exception("applying %d events failed", len(events))
            return
        self._batches += 1
        self._events_applied += len(events)


def _diff(known: dict[ObjectKey, Object], listed: Listed, pending: dict[ObjectKey, Event]) -> None:
    """Turn a fresh list into the events that make ``known`` equal to it."""
    for key, obj in listed.objects.items():
        if known.get(key) != obj:
            known[key] = obj
            pending[key] = Upsert(obj)
    for key in [k for k in known if k not in listed.objects and k not in listed.invalid]:
        del known[key]
        pending[key] = Delete(key)


def _follow(known: dict[ObjectKey, Object], changed: Changed, pending: dict[ObjectKey, Event]) -> None:
    ev = changed.event
    if isinstance(ev, Upsert):
        known[ev.key] = ev.obj
    else:
        known.pop(ev.key, None)
    pending[ev.key] = ev
