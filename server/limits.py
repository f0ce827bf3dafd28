"""What one caller may hold: open ``DecideStream`` calls, total and per connection.

Why (issue 16): the sync server runs each call on a thread of its pool
(``--threads``, 16 by default), and a stream holds its thread for as long as it
is open, idle or not.  Sixteen idle streams took every thread, and health
checks, ``Decide`` and ``Check`` then waited out their deadlines.  A stream
beyond the limits below is refused at once with ``UNAVAILABLE`` (it still
takes a thread, for microseconds; the project's clients retry it with backoff,
as any gRPC client retries UNAVAILABLE), so the threads the streams may not
take stay free for unary calls and health:

- sync: at most ``threads // 2`` open streams in all (8 of 16), at most
  :data:`STREAMS_PER_CONNECTION` of them on one connection;
- aio: the event loop holds no thread per call (500 idle streams measured
  beside ~1 ms health checks), so the limits only bound memory:
  :data:`AIO_MAX_STREAMS` in all, :data:`AIO_STREAMS_PER_CONNECTION` on one
  connection (HTTP/2's usual ``max_concurrent_streams``).

A connection is the caller's ``context.peer()`` (address and port of one
TCP connection).  docs/grpc.md states the limits and the measurements.
"""

from __future__ import annotations

import threading
from collections import Counter

#: Streams one connection may hold open on the sync server.
STREAMS_PER_CONNECTION = 4
#: Streams the aio server holds open in all, and on one connection.
AIO_MAX_STREAMS = 1024
AIO_STREAMS_PER_CONNECTION = 100


def max_streams(mode: str, threads: int) -> tuple[int, int]:
    """(in all, per connection): the stream limits of a server flavour (see the module docstring)."""
    if mode == "aio":
        return AIO_MAX_STREAMS, AIO_STREAMS_PER_CONNECTION
    return max(1, threads // 2), STREAMS_PER_CONNECTION


class StreamLimiter:
    """Counts open streams; :meth:`acquire` refuses one beyond the limits (thread-safe)."""

    def __init__(self, total: int, per_connection: int = STREAMS_PER_CONNECTION) -> None:
        self.total = total
        self.per_connection = min(per_connection, total)
        self._open: Counter[str] = Counter()
        self._count = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        return self._count

    def acquire(self, peer: str) -> str | None:
        """Take a place for a stream of ``peer``; None if taken, else why not (the status message)."""
        with self._lock:
            if self._count >= self.total:
                return (
                    f"too many open DecideStream calls: this server holds at most {self.total}; "
                    "close idle streams or use DecideBatch"
                )
            if self._open[peer] >= self.per_connection:
                return (
                    f"too many open DecideStream calls on one connection: at most {self.per_connection}; "
                    "send more batches on an open stream instead"
                )
            self._open[peer] += 1
            self._count += 1
            return None

    def release(self, peer: str) -> None:
        with self._lock:
            self._count -= 1
            self._open[peer] -= 1
            if self._open[peer] <= 0:
                del self._open[peer]
