"""The DecisionService: request messages in, decisions of one index generation out.

:class:`DecisionCore` holds the logic and is shared by the two servicer
flavours, :class:`DecisionService` (grpcio's thread-pool server) and
:class:`AioDecisionService` (``grpc.aio``); docs/grpc.md gives the measurement
that chose the default.  Every batch is decided by ``Index.decide_many`` at one
published generation, so a batch never mixes the states before and after a
reload.

Errors:

- a malformed flow of a unary ``Decide`` -> ``INVALID_ARGUMENT``, message
  ``<field>: <what must hold>`` (the field as :class:`FlowError` names it);
- a malformed flow inside a batch -> a ``FlowResult.error`` in its slot; the
  other flows are decided;
- a batch over ``max_batch`` flows -> ``INVALID_ARGUMENT`` for the whole call;
- before the first successful load -> ``UNAVAILABLE`` (clients retry it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.server.metrics import Metrics
from netpol_pdp.server.status import ServerState
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc
from netpol_pdp.v1.convert import fill_decision, flow_from_pb

#: The default (and documented) largest batch: 10,000 flows is ~0.5 MB of
#: request and, unexplained, ~1.5 MB of response, well under the channel limits
#: the server and client set (see :data:`netpol_pdp.server.app.MAX_MESSAGE_BYTES`).
DEFAULT_MAX_BATCH = 10_000


class RequestError(Exception):
    """A call-level refusal: the gRPC status code and its message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DecisionCore:
    """Decides request messages; transport-agnostic so both server flavours share it."""

    def __init__(
        self, state: ServerState, metrics: Metrics | None = None, max_batch: int = DEFAULT_MAX_BATCH
    ):
        self.state = state
        self.metrics = metrics
        self.max_batch = max_batch

    def _check_ready(self) -> None:
        if not self.state.ready:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "not ready: the first load of the feed has not succeeded"
            )

    def decide(self, request: pb.DecideRequest) -> pb.DecideResponse:
        self._check_ready()
        start = time.perf_counter()
        try:
            flow = flow_from_pb(request.flow)
        except FlowError as exc:
            if self.metrics is not None:
                self.metrics.flow_error(exc.field)
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        decision = self.state.index.decide(flow, explain=request.explain)
        response = pb.DecideResponse()
        fill_decision(response.decision, decision)
        if self.metrics is not None:
            self.metrics.observe("Decide", time.perf_counter() - start, (decision,), None)
        return response

    def decide_batch(
        self, request: pb.DecideBatchRequest, method: str = "DecideBatch"
    ) -> pb.DecideBatchResponse:
        self._check_ready()
        start = time.perf_counter()
        n = len(request.flows)
        if n > self.max_batch:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"flows: a batch holds at most {self.max_batch} flows (got {n}); split it "
                "(the client's decide_many does)",
            )
        flows: list[Flow] = []
        errors: dict[int, FlowError] = {}
        for i, msg in enumerate(request.flows):
            try:
                flows.append(flow_from_pb(msg))
            except FlowError as exc:
                errors[i] = exc
        index = self.state.index
        decisions: list[Decision] = index.decide_many(flows, explain=request.explain) if flows else []
        response = pb.DecideBatchResponse(request_id=request.request_id)
        response.generation = decisions[0].generation if decisions else index.generation
        results = response.results
        if not errors:
            for d in decisions:
                fill_decision(results.add().decision, d)
        else:
            it = iter(decisions)
            for i in range(n):
                err = errors.get(i)
                if err is None:
                    fill_decision(results.add().decision, next(it))
                else:
                    slot = results.add().error
                    slot.field = err.field
                    slot.message = err.message
        if self.metrics is not None:
            for err in errors.values():
                self.metrics.flow_error(err.field)
            self.metrics.observe(method, time.perf_counter() - start, decisions, n)
        return response

    def status(self) -> pb.GetStatusResponse:
        response = self.state.status_pb()
        response.max_batch_flows = self.max_batch
        return response


class DecisionService(pb_grpc.DecisionServiceServicer):
    """The servicer for grpcio's thread-pool server."""

    def __init__(self, core: DecisionCore) -> None:
        self.core = core

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        try:
            return self.core.decide(request)
        except RequestError as exc:
            context.abort(exc.code, exc.message)

    def DecideBatch(
        self, request: pb.DecideBatchRequest, context: grpc.ServicerContext
    ) -> pb.DecideBatchResponse:
        try:
            return self.core.decide_batch(request)
        except RequestError as exc:
            context.abort(exc.code, exc.message)

    def DecideStream(
        self, request_iterator: Iterator[pb.DecideBatchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.DecideBatchResponse]:
        try:
            for request in request_iterator:
                yield self.core.decide_batch(request, "DecideStream")
        except RequestError as exc:
            context.abort(exc.code, exc.message)

    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        return self.core.status()


class AioDecisionService(pb_grpc.DecisionServiceServicer):
    """The servicer for ``grpc.aio``: the same core, called on the event loop.

    Deciding is CPU work under the GIL, so running it inline on the loop costs
    nothing a thread hop would save, and keeps responses in request order.
    """

    def __init__(self, core: DecisionCore) -> None:
        self.core = core

    async def Decide(self, request: pb.DecideRequest, context: Any) -> pb.DecideResponse:  # type: ignore[override]
        try:
            return self.core.decide(request)
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    async def DecideBatch(  # type: ignore[override]
        self, request: pb.DecideBatchRequest, context: Any
    ) -> pb.DecideBatchResponse:
        try:
            return self.core.decide_batch(request)
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
            raise

    async def DecideStream(  # type: ignore[override]
        self, request_iterator: AsyncIterator[pb.DecideBatchRequest], context: Any
    ) -> AsyncIterator[pb.DecideBatchResponse]:
        try:
            async for request in request_iterator:
                yield self.core.decide_batch(request, "DecideStream")
        except RequestError as exc:
            await context.abort(exc.code, exc.message)

    async def GetStatus(self, request: pb.GetStatusRequest, context: Any) -> pb.GetStatusResponse:  # type: ignore[override]
        return self.core.status()
