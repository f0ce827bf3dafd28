"""The DecisionService: request messages in, decisions of one index generation out.

:class:`DecisionCore` holds the logic and is shared by the two servicer
flavours, :class:`DecisionService` (grpcio's thread-pool server) and
:class:`AioDecisionService` (``grpc.aio``); docs/grpc.md gives the measurement
that chose the default.  Every batch is decided by ``Index.decide_many`` at one
published generation, so a batch never mixes the states before and after a
reload.

Flows by name (``src_name``, ``dst_name``, ``dst_port_name``; index/ends.py) are
resolved at the generation that decides them, and their results are never put
in the wire cache (the same bytes mean another address after a pod moves; the
cache's slot is per generation, but a name's entry would be one more way to go
wrong for no gain: callers by name are people and scripts, not sidecars).
An explained decision carries the near misses of its denied directions
(index/whynot.py), worked out at the same generation.

Errors:

- bytes that are no request message, or a uint32 field sent wider than 32 bits
  (server/decoding.py) -> ``INVALID_ARGUMENT``;
- a malformed flow of a unary ``Decide`` -> ``INVALID_ARGUMENT``, message
  ``<field>: <what must hold>`` (the field as :class:`FlowError` names it),
  an unknown name too (``dst_name: pod shop/web-9 is not known``);
- a malformed flow inside a batch -> a ``FlowResult.error`` in its slot; the
  other flows are decided;
- a batch over ``max_batch`` flows -> ``INVALID_ARGUMENT`` for the whole call;
- a ``DecideStream`` beyond the open-stream limits (server/limits.py) ->
  ``UNAVAILABLE`` at once (the clients retry it with backoff);
- before the first successful load -> ``UNAVAILABLE`` (clients retry it);
- the Kubernetes feed failing closed (``--fail-closed-after``) -> ``UNAVAILABLE``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from netpol_pdp.index.decision import Decision
from netpol_pdp.index.ends import FlowByName, resolve_asked
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.generation import Generation
from netpol_pdp.server.config import DEFAULT_MAX_BATCH
from netpol_pdp.server.decoding import Malformed, lenient
from netpol_pdp.server.encode import BatchEncoder
from netpol_pdp.server.limits import StreamLimiter, max_streams
from netpol_pdp.server.metrics import Metrics
from netpol_pdp.server.status import ServerState
from netpol_pdp.server.wirecache import Slot, WireCache, entry_body, flow_chunks
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc
from netpol_pdp.v1.convert import asked_from_pb, fill_decision, flow_from_pb, has_names


class RequestError(Exception):
    """A call-level refusal: the gRPC status code and its message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DecisionCore:
    """Decides request messages; transport-agnostic so both server flavours share it."""

    def __init__(
        self,
        state: ServerState,
        metrics: Metrics | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        wire_cache: bool = True,
        streams: tuple[int, int] = max_streams("sync", 16),
    ):
        self.state = state
        #: open DecideStream calls, bounded in all and per connection
        self.streams = StreamLimiter(*streams)
        self.metrics = metrics
        self.max_batch = max_batch
        self.encoder = BatchEncoder()
        #: repeated flows answered from their wire bytes (server/wirecache.py); off for the
        #: benchmark's reference evaluator, which must decide every flow
        self.wire = WireCache() if wire_cache else None

    def _check_ready(self) -> None:
        if not self.state.ready:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, "not ready: the first load of the feed has not succeeded"
            )
        if not self.state.serving:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE,
                "not serving: no working watch of the Kubernetes API for --fail-closed-after seconds",
            )

    def decide(self, request: pb.DecideRequest | Malformed) -> bytes:
        """The encoded ``DecideResponse`` of one flow (bytes, as for batches)."""
        if isinstance(request, Malformed):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        self._check_ready()
        start = time.perf_counter()
        index = self.state.index
        slot = chunk = None
        if self.wire is not None and not request.explain:
            slot = self.wire.slot(index)
            chunk = request.flow.SerializeToString()
            entry = slot.entries.get(chunk)
            if entry is not None:
                if self.metrics is not None:
                    kind = slot.kinds[entry]
                    self.metrics.observe_tally("Decide", time.perf_counter() - start, {kind: 1}, None)
                return entry_body(entry)
        try:
            asked = asked_from_pb(request.flow)
            decision, named = self._decide_one(index, asked, request.explain)
        except FlowError as exc:
            if self.metrics is not None:
                self.metrics.flow_error(exc.field)
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if not named and slot is not None and chunk is not None and decision.generation == slot.generation:
            entry = self.encoder.result(decision)
            slot.put(chunk, entry, decision.verdict, decision.reason)
            response = entry_body(entry)
        else:
            message = pb.DecideResponse()
            fill_decision(message.decision, decision)
            response = message.SerializeToString()
        if self.metrics is not None:
            self.metrics.observe("Decide", time.perf_counter() - start, (decision,), None)
        return response

    @staticmethod
    def _decide_one(index: Any, asked: Flow | FlowByName, explain: bool) -> tuple[Decision, bool]:
        """(the decision, whether the flow was by name): names are resolved, and the flow
        decided and explained, at one generation."""
        if isinstance(asked, Flow) and not explain:
            return index.decide(asked), False
        gen = _snapshot(index)
        if gen is None:
            if isinstance(asked, FlowByName):
                raise FlowError("src_name", "this evaluator resolves no names: send addresses")
            return index.decide(asked, explain=explain), False
        flow = asked if isinstance(asked, Flow) else resolve_asked(gen, asked).flow
        decision = index.explain(flow, gen) if explain else index.decide(flow, gen=gen)
        return decision, isinstance(asked, FlowByName)

    def decide_batch(self, request: pb.DecideBatchRequest | Malformed, method: str = "DecideBatch") -> bytes:
        """The encoded ``DecideBatchResponse`` (see :mod:`netpol_pdp.server.encode` for why bytes)."""
        if isinstance(request, Malformed):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        self._check_ready()
        start = time.perf_counter()
        n = len(request.flows)
        if n > self.max_batch:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"flows: a batch holds at most {self.max_batch} flows (got {n}); split it "
                "(the client's decide_many does)",
            )
        if self.wire is None or request.explain:
            return self._decide_batch_uncached(request, method, start)
        chunks = flow_chunks(request)
        index = self.state.index
        while True:
            slot = self.wire.slot(index)
            results: list[bytes | None] = list(map(slot.entries.get, chunks))
            errors: list[FlowError] = []
            if None in results and not self._fill_misses(slot, chunks, results, errors):
                continue  # the index published a new generation meanwhile: decide all at the new one
            break
        done: list[bytes] = results  # type: ignore[assignment]  # every slot is filled now
        response = self.encoder.response(request.request_id, slot.generation, done)
        if self.metrics is not None:
            for err in errors:
                self.metrics.flow_error(err.field)
            self.metrics.observe_tally(method, time.perf_counter() - start, slot.tally(done), n)
        return response

    def _fill_misses(
        self, slot: Slot, chunks: list[bytes], results: list[bytes | None], errors: list[FlowError]
    ) -> bool:
        """Decide the flows not in ``slot`` and store them; False if the index moved past its generation."""
        missing: list[int] = []
        flows: list[Flow] = []
        named: set[int] = set()  # flows by name: resolved at the slot's generation, never stored
        gen = None
        for i, entry in enumerate(results):
            if entry is not None:
                continue
            try:
                msg = pb.Flow.FromString(chunks[i])
                if has_names(msg):
                    if gen is None:
                        gen = slot.index.snapshot()
                        if gen.number != slot.generation:
                            return False
                    asked = asked_from_pb(msg)
                    flow = resolve_asked(gen, asked).flow if isinstance(asked, FlowByName) else asked
                    named.add(i)
                else:
                    flow = flow_from_pb(msg)
            except FlowError as exc:
                errors.append(exc)
                results[i] = self.encoder.error(exc.field, exc.message)
                continue
            missing.append(i)
            flows.append(flow)
        if not flows:
            return True
        decisions = (
            slot.index.decide_many(flows, gen=gen) if gen is not None else slot.index.decide_many(flows)
        )
        if decisions[0].generation != slot.generation:
            return False
        encode = self.encoder.result
        for i, decision in zip(missing, decisions, strict=True):
            entry = results[i] = encode(decision)
            if i not in named:
                slot.put(chunks[i], entry, decision.verdict, decision.reason)
        return True

    def _decide_batch_uncached(self, request: pb.DecideBatchRequest, method: str, start: float) -> bytes:
        """Every flow validated and decided: explained batches, and cores without a wire cache."""
        n = len(request.flows)
        flows: list[Flow] = []
        errors: dict[int, FlowError] = {}
        index = self.state.index
        gen = _snapshot(index)
        for i, msg in enumerate(request.flows):
            try:
                asked = asked_from_pb(msg)
                if isinstance(asked, FlowByName):
                    if gen is None:
                        raise FlowError("src_name", "this evaluator resolves no names: send addresses")
                    asked = resolve_asked(gen, asked).flow
                flows.append(asked)
            except FlowError as exc:
                errors[i] = exc
        decisions: list[Decision] = []
        if flows and gen is not None:
            if request.explain:
                decisions = index.explain_many(flows, gen)
            else:
                decisions = index.decide_many(flows, gen=gen)
        elif flows:
            decisions = index.decide_many(flows, explain=request.explain)
        generation = decisions[0].generation if decisions else index.generation
        encode = self.encoder.result
        if not errors:
            results = [encode(d) for d in decisions]
        else:
            it = iter(decisions)
            results = [
                encode(next(it))
                if (err := errors.get(i)) is None
                else self.encoder.error(err.field, err.message)
                for i in range(n)
            ]
        response = self.encoder.response(request.request_id, generation, results)
        if self.metrics is not None:
            for err in errors.values():
                self.metrics.flow_error(err.field)
            self.metrics.observe(method, time.perf_counter() - start, decisions, n)
        return response

    def status(self) -> pb.GetStatusResponse:
        response = self.state.status_pb()
        response.max_batch_flows = self.max_batch
        return response


def _snapshot(index: Any) -> Generation | None:
    """The index's published generation, None for an evaluator without one (the reference)."""
    snapshot = getattr(index, "snapshot", None)
    return snapshot() if snapshot is not None else None


def _serialize(response: bytes | pb.DecideResponse | pb.DecideBatchResponse) -> bytes:
    """Decide and batch responses come pre-encoded (bytes); the echo service returns messages."""
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_to_server(servicer: pb_grpc.DecisionServiceServicer, server: Any) -> None:
    """Register ``servicer`` as ``netpol.pdp.v1.DecisionService`` on a sync or aio server.

    The generated ``add_DecisionServiceServicer_to_server`` with one change:
    Decide, DecideBatch and DecideStream responses may be bytes already encoded
    by :class:`~netpol_pdp.server.encode.BatchEncoder` (register the service
    with this function, not the generated one).
    """
    handlers = {
        "Decide": grpc.unary_unary_rpc_method_handler(
            servicer.Decide,
            request_deserializer=lenient(pb.DecideRequest),
            response_serializer=_serialize,
        ),
        "DecideBatch": grpc.unary_unary_rpc_method_handler(
            servicer.DecideBatch,
            request_deserializer=lenient(pb.DecideBatchRequest),
            response_serializer=_serialize,
        ),
        "DecideStream": grpc.stream_stream_rpc_method_handler(
            servicer.DecideStream,
            request_deserializer=lenient(pb.DecideBatchRequest),
            response_serializer=_serialize,
        ),
        "GetStatus": grpc.unary_unary_rpc_method_handler(
            servicer.GetStatus,
            request_deserializer=lenient(pb.GetStatusRequest),
            response_serializer=pb.GetStatusResponse.SerializeToString,
        ),
    }
    name = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


class DecisionService(pb_grpc.DecisionServiceServicer):
    """The servicer for grpcio's thread-pool server."""

    def __init__(self, core: DecisionCore) -> None:
        self.core = core

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> bytes:
        try:
            return self.core.decide(request)
        except RequestError as exc:
            context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    def DecideBatch(self, request: pb.DecideBatchRequest, context: grpc.ServicerContext) -> bytes:
        try:
            return self.core.decide_batch(request)
        except RequestError as exc:
            context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    def DecideStream(
        self, request_iterator: Iterator[pb.DecideBatchRequest], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        peer = context.peer()
        refused = self.core.streams.acquire(peer)
        if refused is not None:
            context.abort(grpc.StatusCode.UNAVAILABLE, refused)
        try:
            for request in request_iterator:
                yield self.core.decide_batch(request, "DecideStream")
        except RequestError as exc:
            context.abort(exc.code, exc.message)
        finally:
            self.core.streams.release(peer)

    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        return self.core.status()


class AioDecisionService(pb_grpc.DecisionServiceServicer):
    """The servicer for ``grpc.aio``: the same core, called on the event loop.

    Deciding is CPU work under the GIL, so running it inline on the loop costs
    nothing a thread hop would save, and keeps responses in request order.
    """

    def __init__(self, core: DecisionCore) -> None:
        self.core = core

    async def Decide(self, request: pb.DecideRequest, context: Any) -> bytes:
        try:
            return self.core.decide(request)
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    async def DecideBatch(self, request: pb.DecideBatchRequest, context: Any) -> bytes:
        try:
            return self.core.decide_batch(request)
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
            raise

    async def DecideStream(
        self, request_iterator: AsyncIterator[pb.DecideBatchRequest], context: Any
    ) -> AsyncIterator[bytes]:
        peer = context.peer()
        refused = self.core.streams.acquire(peer)
        if refused is not None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, refused)
        try:
            async for request in request_iterator:
                yield self.core.decide_batch(request, "DecideStream")
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
        finally:
            self.core.streams.release(peer)

    async def GetStatus(self, request: pb.GetStatusRequest, context: Any) -> pb.GetStatusResponse:
        return self.core.status()
