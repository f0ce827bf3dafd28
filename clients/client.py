"""The synchronous client of the DecisionService.

::

    with DecisionClient("127.0.0.1:50051") as client:
        client.decide(make_flow("10.0.1.5", "10.0.2.7", "TCP", 8080))   # -> Decision
        for decision in client.decide_many(flows):                      # batched + pipelined
            ...
        client.status()                                                 # -> dict

``decide_many`` is the fast path: it cuts the flows into batches, sends them
over one ``DecideStream`` with up to ``window`` batches in flight (so the
server never waits for the client's round trip) and yields results in input
order.  Batches the server had not answered when the connection broke are
re-sent on the next stream, so an UNAVAILABLE mid-stream (a server restart)
loses nothing.

Results are the same :class:`~netpol_pdp.index.decision.Decision` objects the
local index returns.  A malformed flow raises :class:`FlowError` from
``decide`` and is yielded as a :class:`FlowError` *value* in its slot by
``decide_many`` (the rest of the flows are still decided).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2

from netpol_pdp.clients._channel import (
    RETRYABLE,
    ChannelClient,
    ClientError,
    batch_request,
    batched,
    decide_request,
    refused,
    status_to_dict,
)
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.ends import Asked
from netpol_pdp.index.errors import FlowError
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1.convert import decision_from_pb

T = TypeVar("T")


class DecisionClient(ChannelClient):
    """A channel to one server.  Thread-safe: share one client between threads."""

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> DecisionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one unary call, retrying UNAVAILABLE with back-off."""
        delays = self.retry.delays()
        while True:
            try:
                return fn()
            except grpc.RpcError as exc:
                code = exc.code()
                if code in RETRYABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        time.sleep(delay)
                        continue
                raise ClientError(code, exc.details() or "") from None

    # ------------------------------------------------------------------ calls

    def decide(self, flow: Asked, *, explain: bool = False, timeout: float | None = None) -> Decision:
        """Decide one flow (unary ``Decide``); raises :class:`FlowError` when the server refuses it."""
        request = decide_request(flow, explain)
        deadline = self._deadline(timeout)
        try:
            response = self._call(lambda: self.stub.Decide(request, timeout=deadline))
        except ClientError as exc:
            raise refused(exc) from None
        return decision_from_pb(response.decision)

    def decide_batch(
        self, flows: Iterable[Asked], *, explain: bool = False, timeout: float | None = None
    ) -> list[Decision | FlowError]:
        """One ``DecideBatch`` call: every result at one generation, in order."""
        request = batch_request(0, list(flows), explain)
        deadline = self._deadline(timeout)
        response = self._call(lambda: self._decide_batch(request, timeout=deadline))
        return self._decoder.decode(response)[2]

    def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        """``GetStatus`` as a dict (generation, ready, synced, object_counts, feed, ...)."""
        deadline = self._deadline(timeout)
        return status_to_dict(
            self._call(lambda: self.stub.GetStatus(pb.GetStatusRequest(), timeout=deadline))
        )

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The standard health check: ``SERVING``, ``NOT_SERVING``, ..."""
        deadline = self._deadline(timeout)
        response = self._call(
            lambda: self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the server says SERVING (its first load is done); raises TimeoutError."""
        end = time.monotonic() + timeout
        while True:
            try:
                if self.health(timeout=max(0.1, end - time.monotonic())) == "SERVING":
                    return
            except ClientError:
                pass
            if time.monotonic() >= end:
                raise TimeoutError(f"{self.target}: not SERVING after {timeout} s")
            time.sleep(0.05)

    def decide_many(
        self,
        flows: Iterable[Asked],
        *,
        explain: bool = False,
        batch_size: int | None = None,
        window: int | None = None,
    ) -> Iterator[Decision | FlowError]:
        """Decide every flow over ``DecideStream``, batched and pipelined; yields in input order."""
        stream = _Pipeline(
            self, batched(flows, batch_size or self.batch_size), explain, window or self.window
        )
        yield from stream.run()


class _Pending:
    __slots__ = ("request", "size")

    def __init__(self, request: pb.DecideBatchRequest, size: int) -> None:
        self.request = request
        self.size = size


class _Pipeline:
    """One ``decide_many``: a sender (grpcio's request thread) and the caller's receive loop.

    The sender takes the next batch only when fewer than ``window`` are
    unanswered (a semaphore released per response).  ``pending`` holds the
    sent-but-unanswered batches in order; after UNAVAILABLE a new stream
    re-sends them first.  ``attempt`` (checked under ``lock``) stops a sender
    of a dead stream from taking more batches.
    """

    def __init__(
        self, client: DecisionClient, batches: Iterator[list[Asked]], explain: bool, window: int
    ) -> None:
        self.client = client
        self.batches = batches
        self.explain = explain
        self.window = max(1, window)
        self.pending: deque[_Pending] = deque()
        self.lock = threading.Lock()
        self.attempt = 0
        self.next_id = 1
        self.source_error: BaseException | None = None
        self.exhausted = False

    def _requests(self, attempt: int, resend: list[_Pending], slots: threading.Semaphore) -> Iterator[Any]:
        for item in resend:
            while not slots.acquire(timeout=0.1):
                if self.attempt != attempt:
                    return
            yield item.request
        while True:
            while not slots.acquire(timeout=0.1):
                if self.attempt != attempt:
                    return
            with self.lock:
                if self.attempt != attempt or self.exhausted:
                    return
                try:
                    batch = next(self.batches, None)
                except BaseException as exc:  # the caller's iterable failed: end the stream, re-raise later
                    self.source_error = exc
                    batch = None
                if batch is None:
                    self.exhausted = True
                    return
                item = _Pending(batch_request(self.next_id, batch, self.explain), len(batch))
                self.next_id += 1
                self.pending.append(item)
            yield item.request

    def run(self) -> Iterator[Decision | FlowError]:
        delays = self.client.retry.delays()
        while True:
            with self.lock:
                self.attempt += 1
                attempt = self.attempt
                resend = list(self.pending)
            slots = threading.Semaphore(self.window)
            call = self.client._decide_stream(self._requests(attempt, resend, slots))
            decode = self.client._decoder.decode
            try:
                for response in call:
                    request_id, _generation, results = decode(response)
                    with self.lock:
                        item = self.pending.popleft()
                    if request_id != item.request.request_id or len(results) != item.size:
                        call.cancel()
                        raise ClientError(
                            grpc.StatusCode.INTERNAL,
                            f"stream out of step: expected request {item.request.request_id} "
                            f"({item.size} results), got {request_id} ({len(results)})",
                        )
                    slots.release()
                    delays = self.client.retry.delays()  # progress resets the back-off
                    yield from results
            except grpc.RpcError as exc:
                code = exc.code()
                delay = next(delays, None) if code in RETRYABLE else None
                if delay is None:
                    raise ClientError(code, exc.details() or "") from None
                time.sleep(delay)
                continue
            finally:
                with self.lock:
                    self.attempt += 1  # a sender still running for this stream stops
                call.cancel()
            if self.source_error is not None:
                raise self.source_error
            if self.pending:
                raise ClientError(
                    grpc.StatusCode.INTERNAL, f"stream ended with {len(self.pending)} batches unanswered"
                )
            return
