"""What the server knows about itself: the index it serves, its feed, readiness, uptime.

``ready`` becomes true once, at the first successful load (health goes
NOT_SERVING -> SERVING then) and stays true: a failed reload keeps the last
good state serving, so the server is still ready but no longer ``synced``,
and ``GetStatus`` carries the feed's last error.  A feed whose thread ended
(``feed.stopped``) is not ``synced`` either, and its health is NOT_SERVING;
``feed.empty`` flags a state without a single object (every flow allowed).  Listeners registered with
:meth:`ServerState.on_ready` (the health servicer) run when it turns ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from netpol_pdp.index.kubestatus import ResourceState
from netpol_pdp.v1 import decision_pb2 as pb

try:  # the installed distribution's version; a source checkout without metadata says "dev"
    from importlib.metadata import version as _dist_version

    VERSION = _dist_version("netpol-pdp")
except Exception:  # pragma: no cover - only without package metadata
    VERSION = "dev"


@dataclass
class FeedInfo:
    """The feed's state, as GetStatus reports it (filled from the feed's own ``status``)."""

    kind: str = "none"
    sources: tuple[str, ...] = ()
    loads: int = 0
    errors: int = 0
    last_error: str = ""
    last_load_unix: float = 0.0
    last_error_unix: float = 0.0
    synced: bool = True
    #: the Kubernetes feed only: stale, and one entry per watched collection
    stale: bool = False
    resources: tuple[ResourceState, ...] = ()
    #: the feed's thread ended on this error: no change is loaded any more ("": running)
    stopped: str = ""
    #: the state served has no object at all: every flow is allowed
    empty: bool = False


class ServerState:
    """The index being served plus everything ``GetStatus`` reports about it."""

    def __init__(self, index: Any, feed_info: Callable[[], FeedInfo] | None = None) -> None:
        self.index = index
        self._feed_info = feed_info or FeedInfo
        self._started = time.monotonic()
        self._ready = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._serving_check: Callable[[], bool] | None = None

    def set_serving_check(self, check: Callable[[], bool]) -> None:
        """A condition besides readiness for answering at all: the Kubernetes feed's fail-closed."""
        self._serving_check = check

    @property
    def serving(self) -> bool:
        """Ready, and not failing closed (health SERVING; Decide answers)."""
        check = self._serving_check
        return self._ready.is_set() and (check is None or check())

    def set_feed_info(self, feed_info: Callable[[], FeedInfo]) -> None:
        """Where GetStatus reads the feed's state (set once, before serving)."""
        self._feed_info = feed_info

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def on_ready(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when the state turns ready (now, if it already is)."""
        with self._lock:
            if not self._ready.is_set():
                self._listeners.append(listener)
                return
        listener()

    def mark_ready(self) -> None:
        with self._lock:
            if self._ready.is_set():
                return
            self._ready.set()
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def feed_info(self) -> FeedInfo:
        return self._feed_info()

    def feed_counters(self) -> tuple[int, int]:
        info = self._feed_info()
        return info.loads, info.errors

    def status_pb(self) -> pb.GetStatusResponse:
        info = self._feed_info()
        counts: Iterable[tuple[str, int]] = self.index.counts().items()
        return pb.GetStatusResponse(
            generation=self.index.generation,
            ready=self.ready,
            synced=self.ready and info.synced and not info.stopped,
            object_counts=dict(counts),
            feed=pb.FeedStatus(
                kind=info.kind,
                sources=list(info.sources),
                loads=info.loads,
                errors=info.errors,
                last_error=info.last_error,
                last_load_unix=info.last_load_unix,
                last_error_unix=info.last_error_unix,
                stale=info.stale,
                resources=[_resource_pb(r) for r in info.resources],
                stopped=info.stopped,
                empty=info.empty,
            ),
            uptime_seconds=time.monotonic() - self._started,
            version=VERSION,
        )


def _resource_pb(r: ResourceState) -> pb.ResourceStatus:
    return pb.ResourceStatus(
        kind=r.kind,
        synced=r.synced,
        resource_version=r.resource_version,
        objects=r.objects,
        invalid_objects=r.invalid_objects,
        watching=r.watching,
        events=r.events,
        last_event_unix=r.last_event_time or 0.0,
        reconnects=r.reconnects,
        relists=r.relists,
        last_error=r.last_error or "",
        last_error_unix=r.last_error_time or 0.0,
        last_invalid=r.last_invalid or "",
        seconds_without_watch=r.seconds_without_watch,
        stale=r.stale,
        not_installed=not r.installed,
    )
