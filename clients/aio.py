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
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from netpol_pdp.clients._channel import (
    DEFAULT_BATCH,
    DEFAULT_WINDOW,
    RETRYABLE,
    ClientError,
    ClientTls,
    Retry,
    batch_request,
    channel_options,
    check_plaintext,
    result_from_pb,
    status_to_dict,
)
from netpol_pdp.clients.client import DEFAULT_RETRY, flow_error_from_status
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc
from netpol_pdp.v1.convert import decision_from_pb, fill_flow

T = TypeVar("T")


class AsyncDecisionClient:
    """A ``grpc.aio`` channel to one server; use it from one event loop."""

    def __init__(
        self,
        target: str,
        *,
        tls: ClientTls | None = None,
        insecure: bool = False,
        timeout: float | None = 10.0,
        retry: Retry = DEFAULT_RETRY,
        batch_size: int = DEFAULT_BATCH,
        window: int = DEFAULT_WINDOW,
        options: Iterable[tuple[str, Any]] = (),
    ) -> None:
        check_plaintext(target, tls, insecure)
        self.target = target
        self.timeout = timeout
        self.retry = retry
        self.batch_size = batch_size
        self.window = window
        opts = channel_options(tls, options)
        if tls is not None:
            self.channel = grpc.aio.secure_channel(target, tls.credentials(), options=opts)
        else:
            self.channel = grpc.aio.insecure_channel(target, options=opts)
        self.stub = pb_grpc.DecisionServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

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

    def _deadline(self, timeout: float | None) -> float | None:
        return timeout if timeout is not None else self.timeout

    async def decide(self, flow: Flow, *, explain: bool = False, timeout: float | None = None) -> Decision:
        """Decide one flow; raises :class:`FlowError` when the server refuses it."""
        request = pb.DecideRequest(explain=explain)
        fill_flow(request.flow, flow)
        deadline = self._deadline(timeout)
        try:
            response = await self._call(lambda: self.stub.Decide(request, timeout=deadline))
        except ClientError as exc:
            if exc.code is grpc.StatusCode.INVALID_ARGUMENT:
                raise flow_error_from_status(exc.details) from None
            raise
        return decision_from_pb(response.decision)

    async def decide_batch(
        self, flows: Iterable[Flow], *, explain: bool = False, timeout: float | None = None
    ) -> list[Decision | FlowError]:
        request = batch_request(0, list(flows), explain)
        deadline = self._deadline(timeout)
        response = await self._call(lambda: self.stub.DecideBatch(request, timeout=deadline))
        return [result_from_pb(r) for r in response.results]

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
        flows: Iterable[Flow] | AsyncIterable[Flow],
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


async def _abatched(flows: Iterable[Flow] | AsyncIterable[Flow], size: int) -> AsyncIterator[list[Flow]]:
    chunk: list[Flow] = []
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
        self, client: AsyncDecisionClient, batches: AsyncIterator[list[Flow]], explain: bool, window: int
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
            call = self.client.stub.DecideStream()
            writer = asyncio.create_task(self._write(call, list(self.pending), slots))
            try:
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    request, size = self.pending.popleft()
                    if response.request_id != request.request_id or len(response.results) != size:
                        raise ClientError(
                            grpc.StatusCode.INTERNAL,
                            f"stream out of step: expected request {request.request_id} ({size} results), "
                            f"got {response.request_id} ({len(response.results)})",
                        )
                    slots.release()
                    delays = self.client.retry.delays()
                    for result in response.results:
                        yield result_from_pb(result)
                await writer  # re-raises an error of the caller's flow iterable
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                delay = next(delays, None) if code in RETRYABLE else None
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
