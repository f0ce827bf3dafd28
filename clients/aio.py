"""The asyncio client of the DecisionService (``grpc.aio``); the same API as the sync one, awaited.

::

    async with AsyncDecisionClient("127.0.0.1:50051") as client:
        decision = await client.decide(flow)
        async for decision in client.decide_many(flows):   # batched + pipelined, in order
            ...

``decide_many`` accepts a plain or an async iterable of flows.  A writer task
feeds ``DecideStream`` with at most ``window`` unanswered batches; the caller's
loop reads the answers in order.  After UNAVAILABLE the unanswered batches are
re-sent on a new stream, as in :mod:`netpol_pdp.clients.client`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, ClassVar, TypeVar

import grpc
from grpc_health.v1 import health_pb2

from netpol_pdp.clients._channel import (
    RETRYABLE,
    ChannelClient,
    ClientError,
    batch_request,
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


class AsyncDecisionClient(ChannelClient):
    """A ``grpc.aio`` channel to one server; use it from one event loop."""

    channels: ClassVar[Any] = grpc.aio

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncDecisionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        delays = self.retry.delays()
        while True:
            try:
                return await fn()
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code in RETRYABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        await asyncio.sleep(delay)
                        continue
                raise ClientError(code, exc.details() or "") from None

    async def decide(self, flow: Asked, *, explain: bool = False, timeout: float | None = None) -> Decision:
        """Decide one flow; raises :class:`FlowError` when the server refuses it."""
        request = decide_request(flow, explain)
        deadline = self._deadline(timeout)
        try:
            response = await self._call(lambda: self.stub.Decide(request, timeout=deadline))
        except ClientError as exc:
            raise refused(exc) from None
        return decision_from_pb(response.decision)

    async def decide_batch(
        self, flows: Iterable[Asked], *, explain: bool = False, timeout: float | None = None
    ) -> list[Decision | FlowError]:
        request = batch_request(0, list(flows), explain)
        deadline = self._deadline(timeout)
        response = await self._call(lambda: self._decide_batch(request, timeout=deadline))
        return self._decoder.decode(response)[2]

    async def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        deadline = self._deadline(timeout)
        return status_to_dict(
            await self._call(lambda: self.stub.GetStatus(pb.GetStatusRequest(), timeout=deadline))
        )

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        deadline = self._deadline(timeout)
        response = await self._call(
            lambda: self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def decide_many(
        self,
        flows: Iterable[Asked] | AsyncIterable[Asked],
        *,
        explain: bool = False,
        batch_size: int | None = None,
        window: int | None = None,
    ) -> AsyncIterator[Decision | FlowError]:
        """Decide every flow over ``DecideStream``, batched and pipelined; yields in input order."""
        pipeline = _AioPipeline(
            self, _abatched(flows, batch_size or self.batch_size), explain, window or self.window
        )
        async for result in pipeline.run():
            yield result


def _failed_send(exc: grpc.aio.AioRpcError) -> bool:
    """Whether the stream died under our own ``write`` (the connection went away mid-stream).

    grpc.aio then ends the call with INTERNAL "Internal error from Core" (its
    send operation failed) instead of the UNAVAILABLE the server's going away
    would give a reader; whichever the race produces, it is the same broken
    connection, and the unanswered batches are re-sent like after UNAVAILABLE.
    """
    return exc.code() is grpc.StatusCode.INTERNAL and "SendMessageOperation" in (
        exc.debug_error_string() or ""
    )


async def _abatched(flows: Iterable[Asked] | AsyncIterable[Asked], size: int) -> AsyncIterator[list[Asked]]:
    chunk: list[Asked] = []
    if isinstance(flows, AsyncIterable):
        async for flow in flows:
            chunk.append(flow)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    else:
        for flow in flows:
            chunk.append(flow)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class _AioPipeline:
    """One ``decide_many``: a writer task bounded by a semaphore, the caller reading in order."""

    def __init__(
        self, client: AsyncDecisionClient, batches: AsyncIterator[list[Asked]], explain: bool, window: int
    ) -> None:
        self.client = client
        self.batches = batches
        self.explain = explain
        self.window = max(1, window)
        self.pending: deque[tuple[pb.DecideBatchRequest, int]] = deque()
        self.next_id = 1
        self.exhausted = False

    async def _write(
        self, call: Any, resend: list[tuple[pb.DecideBatchRequest, int]], slots: asyncio.Semaphore
    ) -> None:
        for request, _ in resend:
            await slots.acquire()
            await call.write(request)
        while not self.exhausted:
            await slots.acquire()
            batch = await anext(self.batches, None)
            if batch is None:
                self.exhausted = True
                break
            request = batch_request(self.next_id, batch, self.explain)
            self.next_id += 1
            self.pending.append((request, len(batch)))
            await call.write(request)
        await call.done_writing()

    async def run(self) -> AsyncIterator[Decision | FlowError]:
        delays = self.client.retry.delays()
        while True:
            slots = asyncio.Semaphore(self.window)
            call = self.client._decide_stream()
            decode = self.client._decoder.decode
            writer = asyncio.create_task(self._write(call, list(self.pending), slots))
            try:
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    request_id, _generation, results = decode(response)
                    request, size = self.pending.popleft()
                    if request_id != request.request_id or len(results) != size:
                        raise ClientError(
                            grpc.StatusCode.INTERNAL,
                            f"stream out of step: expected request {request.request_id} ({size} results), "
                            f"got {request_id} ({len(results)})",
                        )
                    slots.release()
                    delays = self.client.retry.delays()
                    for result in results:
                        yield result
                await writer  # re-raises an error of the caller's flow iterable
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                delay = next(delays, None) if code in RETRYABLE or _failed_send(exc) else None
                if delay is None:
                    raise ClientError(code, exc.details() or "") from None
                await asyncio.sleep(delay)
                continue
            finally:
                writer.cancel()  # no-op when it has finished
                await asyncio.wait([writer])
                if not writer.cancelled():
                    writer.exception()  # retrieved: a failed write is the stream's failure, handled above
                call.cancel()
            if self.pending:
                raise ClientError(
                    grpc.StatusCode.INTERNAL, f"stream ended with {len(self.pending)} batches unanswered"
                )
            return
