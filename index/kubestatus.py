"""What the Kubernetes feed reports about itself, per watched collection.

A :class:`ResourceStatus` is written by its watcher thread (and the applier, for
``synced`` and the object count) and read by whoever asks for the status
(``GetStatus``, the health check, the CLI); a small lock makes each read a
consistent :class:`ResourceState` snapshot.

"Stale" has one definition, used everywhere: the collection has had no working
watch (nor a successful list) for at least ``stale_after`` seconds.  A watch that
is open and simply quiet is *not* stale: the server's bookmarks and the client's
read timeout turn a silently dead connection into an error within
``watch_timeout + read_slack`` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceState:
    """One collection's status at one instant (times are Unix epoch seconds)."""

    kind: str
    synced: bool
    resource_version: str
    objects: int
    invalid_objects: int
    watching: bool
    #: watch events received (ADDED/MODIFIED/DELETED; bookmarks not counted)
    events: int
    last_event_time: float | None
    reconnects: int
    relists: int
    last_error: str | None
    last_error_time: float | None
    last_invalid: str | None
    #: seconds since the watch last worked, while it does not (0.0 while it does)
    seconds_without_watch: float
    stale: bool
    #: False while the collection's CRD is not installed (404): normal, synced, empty, not stale
    installed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResourceStatus:
    """The mutable status of one collection; every method is thread-safe."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._synced = False
        self._rv = ""
        self._objects = 0
        self._invalid_objects = 0
        self._watching = False
        self._events = 0
        self._last_event: float | None = None
        self._reconnects = 0
        self._relists = 0
        self._last_error: str | None = None
        self._last_error_time: float | None = None
        self._last_invalid: str | None = None
        self._down_since: float | None = None  # monotonic; None while the watch works
        #: None until known; False while the API server does not serve the collection (404)
        self._installed: bool | None = None

    @property
    def installed(self) -> bool:
        """Whether the collection was served at its last list (True until known otherwise)."""
        with self._lock:
            return self._installed is not False

    # written by the watcher ---------------------------------------------------------------

    def listed(self, rv: str, invalid: int) -> None:
        with self._lock:
            self._rv = rv
            self._invalid_objects = invalid
            self._down_since = None
            self._installed = True

    def absent(self) -> None:
        """404: the collection's CRD is not installed; that is normal, not a failure."""
        with self._lock:
            self._installed = False
            self._watching = False
            self._rv = ""
            self._invalid_objects = 0
            self._down_since = None

    def watching(self, rv: str) -> None:
        with self._lock:
            self._rv = rv
            self._watching = True
            self._down_since = None

    def watch_ended(self) -> None:
        """The server closed the stream cleanly (its ``timeoutSeconds``): re-watch follows at once."""
        with self._lock:
            self._watching = False

    def bookmark(self, rv: str) -> None:
        with self._lock:
            self._rv = rv
            self._last_event = time.time()

    def event(self, rv: str, invalid: int) -> None:
        with self._lock:
            self._rv = rv
            self._invalid_objects = invalid
            self._events += 1
            self._last_event = time.time()

    def invalid(self, message: str) -> None:
        with self._lock:
            self._last_invalid = message

    def expired(self, message: str) -> None:
        with self._lock:
            self._watching = False
            self._relists += 1
            self._last_error = message
            self._last_error_time = time.time()

    def failed(self, message: str) -> None:
        with self._lock:
            self._watching = False
            self._reconnects += 1
            self._last_error = message
            self._last_error_time = time.time()
            if self._down_since is None:
                self._down_since = time.monotonic()

    # written by the applier ---------------------------------------------------------------

    def applied(self, objects: int, *, synced: bool) -> None:
        with self._lock:
            self._objects = objects
            self._synced = self._synced or synced

    # read by anyone -----------------------------------------------------------------------

    def down_for(self) -> float:
        """Seconds since the watch last worked (0.0 while it works)."""
        with self._lock:
            return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def snapshot(self, stale_after: float) -> ResourceState:
        with self._lock:
            down = 0.0 if self._down_since is None else time.monotonic() - self._down_since
            return ResourceState(
                kind=self.kind,
                synced=self._synced,
                resource_version=self._rv,
                objects=self._objects,
                invalid_objects=self._invalid_objects,
                watching=self._watching,
                events=self._events,
                last_event_time=self._last_event,
                reconnects=self._reconnects,
                relists=self._relists,
                last_error=self._last_error,
                last_error_time=self._last_error_time,
                last_invalid=self._last_invalid,
                seconds_without_watch=round(down, 3),
                stale=self._down_since is not None and down >= stale_after,
                installed=self._installed is not False,
            )
