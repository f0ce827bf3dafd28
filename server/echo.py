"""An echo DecisionService: the same messages, no deciding.

It answers every flow with one fixed, pre-built decision, so a benchmark
running the real service and this one side by side measures what the deciding
costs on top of the transport (gRPC framing, protobuf parsing and building of
the same message shapes).  ``bench/grpc_quick.py`` reports the ratio; the
benchmark helper uses it for the transport ceiling.  It does parse the request
(gRPC does that before any handler runs) and builds one result per flow, as the
real service must.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

_DECISION = pb.Decision(
    verdict=pb.VERDICT_ALLOW,
    reason=pb.REASON_ALLOWED_BY_POLICY,
    generation=1,
    src=pb.Endpoint(kind=pb.ENDPOINT_KIND_POD, name="demo/client", namespace="demo"),
    dst=pb.Endpoint(kind=pb.ENDPOINT_KIND_POD, name="demo/server", namespace="demo"),
)
_RESULT = pb.FlowResult(decision=_DECISION)


class EchoCore:
    """Same shapes as :class:`~netpol_pdp.server.service.DecisionCore`, constant answers."""

    def decide(self, request: pb.DecideRequest) -> pb.DecideResponse:
        return pb.DecideResponse(decision=_DECISION)

    def decide_batch(self, request: pb.DecideBatchRequest) -> pb.DecideBatchResponse:
        response = pb.DecideBatchResponse(request_id=request.request_id, generation=1)
        response.results.extend([_RESULT] * len(request.flows))
        return response

    def status(self) -> pb.GetStatusResponse:
        return pb.GetStatusResponse(generation=1, ready=True, synced=True, version="echo")


class EchoService(pb_grpc.DecisionServiceServicer):
    """Thread-pool flavour."""

    def __init__(self) -> None:
        self.core = EchoCore()

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        return self.core.decide(request)

    def DecideBatch(
        self, request: pb.DecideBatchRequest, context: grpc.ServicerContext
    ) -> pb.DecideBatchResponse:
        return self.core.decide_batch(request)

    def DecideStream(
        self, request_iterator: Iterator[pb.DecideBatchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.DecideBatchResponse]:
        for request in request_iterator:
            yield self.core.decide_batch(request)

    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        return self.core.status()


class AioEchoService(pb_grpc.DecisionServiceServicer):
    """``grpc.aio`` flavour."""

    def __init__(self) -> None:
        self.core = EchoCore()

    async def Decide(self, request: pb.DecideRequest, context: Any) -> pb.DecideResponse:  # type: ignore[override]
        return self.core.decide(request)

    async def DecideBatch(  # type: ignore[override]
        self, request: pb.DecideBatchRequest, context: Any
    ) -> pb.DecideBatchResponse:
        return self.core.decide_batch(request)

    async def DecideStream(  # type: ignore[override]
        self, request_iterator: AsyncIterator[pb.DecideBatchRequest], context: Any
    ) -> AsyncIterator[pb.DecideBatchResponse]:
        async for request in request_iterator:
            yield self.core.decide_batch(request)

    async def GetStatus(self, request: pb.GetStatusRequest, context: Any) -> pb.GetStatusResponse:  # type: ignore[override]
        return self.core.status()
