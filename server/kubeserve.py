"""``netpol-pdp serve --kube``: the Kubernetes feed's side of serving.

:class:`KubeTracker` plays the part :class:`~netpol_pdp.server.serve.FeedTracker`
plays for manifests: it starts the :class:`~netpol_pdp.index.kubefeed.KubeFeed`,
marks the server ready once all four initial lists are applied, turns the feed's
status into ``GetStatus``'s :class:`FeedInfo` (with one entry per collection),
and follows the feed's health:

- **stale** (no working watch for ``--stale-after`` seconds): logged, shown in
  ``GetStatus`` and the ``netpol_pdp_feed_stale`` metric; answers keep coming
  from the last state and health stays SERVING;
- **failing closed** (``--fail-closed-after`` seconds without a working watch,
  off by default): health turns NOT_SERVING and Decide answers UNAVAILABLE, until
  the watch works again.  docs/kubernetes.md says why this and not a DENY.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from netpol_pdp.index.kubefeed import KubeFeed
from netpol_pdp.server.logging import get_logger, log_event
from netpol_pdp.server.status import FeedInfo, ServerState

log = get_logger("serve")

#: how often the tracker looks at the feed (seconds): the delay of a health change
POLL_INTERVAL = 0.25


class Health(Protocol):
    def set_serving(self, serving: bool) -> None: ...


class KubeTracker:
    """Readiness, health and ``GetStatus`` for a :class:`KubeFeed`; :meth:`run` is its thread."""

    def __init__(self, feed: KubeFeed, state: ServerState) -> None:
        self.feed = feed
        self.state = state
        #: the server's health (set once the server exists, before :meth:`run` starts)
        self.health: Health | None = None
        state.set_serving_check(lambda: feed.serving)

    def stale(self) -> bool:
        return self.feed.stale

    def info(self) -> FeedInfo:
        st = self.feed.status()
        errors = [(r.last_error_time or 0.0, r.kind, r.last_error) for r in st.resources if r.last_error]
        last_time, last_kind, last_error = max(errors) if errors else (0.0, "", "")
        events = [r.last_event_time for r in st.resources if r.last_event_time]
        return FeedInfo(
            kind="kubernetes",
            sources=(st.source,),
            loads=st.batches,
            errors=sum(r.reconnects + r.relists for r in st.resources),
            last_error=f"{last_kind}: {last_error}" if last_error else "",
            last_load_unix=max(events, default=0.0),
            last_error_unix=last_time,
            synced=st.ready and not st.stale,
            stale=st.stale,
            resources=st.resources,
        )

    def run(self, stop: threading.Event) -> None:
        """Start the feed, then follow it until ``stop``; stops the feed on the way out."""
        self.feed.start()
        serving = stale = False
        try:
            while not stop.wait(POLL_INTERVAL):
                if not self.state.ready and self.feed.ready:
                    st = self.feed.status()
                    counts = {r.kind: r.objects for r in st.resources}
                    log_event(log, logging.INFO, "feed_loaded", generation=st.generation, objects=counts)
                    self.state.mark_ready()  # health SERVING via the server's on_ready listener
                    serving = True
                if not self.state.ready:
                    continue
                now_stale, now_serving = self.feed.stale, self.feed.serving
                if now_stale != stale:
                    stale = now_stale
                    self._log_stale(stale)
                if now_serving != serving:
                    serving = now_serving
                    log_event(
                        log, logging.WARNING if not serving else logging.INFO, "serving", serving=serving
                    )
                    if self.health is not None:
                        self.health.set_serving(serving)
        finally:
            self.feed.stop()

    def _log_stale(self, stale: bool) -> None:
        st = self.feed.status()
        down = {r.kind: r.seconds_without_watch for r in st.resources if r.stale}
        errors = {r.kind: r.last_error for r in st.resources if r.stale}
        if stale:
            log_event(log, logging.WARNING, "feed_stale", seconds_without_watch=down, errors=errors)
        else:
            log_event(log, logging.INFO, "feed_recovered", generation=st.generation)
