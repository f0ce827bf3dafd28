"""Envoy external authorization: ``envoy.service.auth.v3.Authorization/Check`` over the index.

Envoy's ``ext_authz`` network filter (one Check per TCP connection), its HTTP
filter (one Check per request) and Istio's ``CUSTOM`` authorization with an
``envoyExtAuthzGrpc`` provider all call this one RPC, so serving it lets real
proxies enforce NetworkPolicy decisions with no client code of ours.  The
messages and the servicer base come from the ``xds-protos`` package (Envoy's
own generated modules), not from hand-copied protos, so field names and wire
names are exactly Envoy's.

How a CheckRequest becomes a flow (see docs/envoy.md for which address Envoy
puts where):

1. source IP       <- ``attributes.source.address.socket_address.address``
   (its port is the client's ephemeral port and is ignored);
2. destination IP  <- ``attributes.destination.address.socket_address.address``;
3. destination port <- ``attributes.destination.address.socket_address.port_value``;
4. protocol        <- TCP.  Envoy only runs ext_authz on TCP listeners and never
   sets ``SocketAddress.protocol`` (it defaults to TCP); a caller that sets it
   to ``UDP`` gets a UDP decision.  SCTP cannot be expressed.
5. IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``, what a dual-stack listener
   reports for IPv4 clients) are decided as the IPv4 address; an IPv6 zone
   (``fe80::1%eth0``) is dropped.

A request that cannot be mapped (no address, a unix-socket or internal address,
a host name, no destination port) is answered PERMISSION_DENIED with reason
``invalid-request`` and a message naming the CheckRequest field, never with a
server error: a proxy misconfiguration must fail closed and say why.

Options travel in ``attributes.context_extensions`` (set per route by the HTTP
filter's ``check_settings``; the network filter has none): ``explain: "true"``
adds the per-direction explanation to the dynamic metadata.

Responses: ``status`` OK or PERMISSION_DENIED; for HTTP checks an ``ok_response``
that sets the ``x-netpol-pdp-reason`` request header, or a ``denied_response``
(HTTP 403, a one-line body, the same header); always ``dynamic_metadata`` (a
Struct: verdict, reason, generation, flow, endpoints) that Envoy stores under
``envoy.filters.{http,network}.ext_authz`` for access logs.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import MAX_IP_CHARS, Flow
from netpol_pdp.server.decoding import Malformed, lenient
from netpol_pdp.server.service import caller_of

__all__ = [
    "INVALID_REQUEST",
    "METHOD",
    "OPTION_EXPLAIN",
    "REASON_HEADER",
    "SERVICE_NAME",
    "AioAuthorizationServicer",
    "AuthorizationServicer",
    "CheckOptions",
    "DecidesFlows",
    "IndexNotReady",
    "ObservesCalls",
    "add_to_server",
    "flow_from_check",
    "options_from_check",
    "service",
]

#: The header carrying the reason code: on the 403 sent to the client, and on the
#: request forwarded upstream when allowed (overwriting any value the client sent).
REASON_HEADER = "x-netpol-pdp-reason"
#: The reason code of a CheckRequest that could not be turned into a flow.  Not a
#: :class:`~netpol_pdp.index.decision.Reason`: no decision was made.
INVALID_REQUEST = "invalid-request"
#: ``context_extensions`` key asking for the explanation in the dynamic metadata.
OPTION_EXPLAIN = "explain"
#: How many built CheckResponses a servicer keeps (about 0.5 KB each).
RESPONSE_CACHE_SIZE = 1 << 13
#: Serialized bytes of the cached CheckResponses before the cache is emptied.
RESPONSE_CACHE_BYTES = 32 << 20
#: The method label of Checks in the server's metrics.
METHOD = "Check"
#: The gRPC service's full name (``envoy.service.auth.v3.Authorization``), for reflection.
SERVICE_NAME: str = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name

_SOURCE = "attributes.source.address"
_DESTINATION = "attributes.destination.address"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_PROTOCOLS = {0: "TCP", 1: "UDP"}  # envoy.config.core.v3.SocketAddress.Protocol


class DecidesFlows(Protocol):
    """What the servicer needs of the index: ``Index`` and ``ReferenceEvaluator`` both fit."""

    def decide(self, flow: Flow, explain: bool = False) -> Decision: ...


class ObservesCalls(Protocol):
    """The part of ``server.metrics.Metrics`` the servicer feeds (method label ``"Check"``)."""

    def observe(
        self, method: str, seconds: float, decisions: Sequence[Decision], flows: int | None
    ) -> None: ...

    def flow_error(self, field: str) -> None: ...


#: ``decide(flow, explain) -> Decision``: the one call the servicer makes per Check.
DecideFn = Callable[[Flow, bool], Decision]


class IndexNotReady(Exception):
    """Raised by a ``decide`` callable when no index is loaded yet.

    The servicer answers it with the gRPC status UNAVAILABLE (not a CheckResponse),
    so that Envoy applies its configured ``failure_mode_allow`` / ``status_on_error``
    instead of reading it as a policy denial.
    """


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Per-request options read from ``attributes.context_extensions``."""

    explain: bool = False


def _socket_ip(address: Any, field: str) -> tuple[str, Any]:
    """The canonical IP text of an ``envoy.config.core.v3.Address`` and its SocketAddress.

    Raises FlowError naming ``field`` (a CheckRequest path) when the address is not
    a literal IP socket address.
    """
    kind = address.WhichOneof("address")
    if kind is None:
        raise FlowError(field, "is missing: a socket_address with an IP address is required")
    if kind != "socket_address":
        raise FlowError(
            f"{field}.{kind}",
            "is not an IP address: NetworkPolicy only governs IP flows "
            "(unix sockets and Envoy internal listeners are not decided)",
        )
    sock = address.socket_address
    if sock.resolver_name:
        raise FlowError(
            f"{field}.socket_address.resolver_name",
            f"must be empty: the address must be a literal IP (got resolver {sock.resolver_name!r})",
        )
    text = sock.address
    if not text:
        raise FlowError(f"{field}.socket_address.address", "is missing: an IPv4 or IPv6 address is required")
    ip = _canonical_ip(text)
    if ip is None:
        raise FlowError(f"{field}.socket_address.address", f"must be an IPv4 or IPv6 address (got {text!r})")
    return ip, sock


#: The longest address text a Check may carry: :data:`MAX_IP_CHARS`, brackets and a
#: ``%zone`` (an interface name, at most 15 characters on Linux).  Longer text is
#: refused before parsing or caching (issue 16: distinct 1 MiB addresses grew memory).
MAX_CHECK_IP_CHARS = MAX_IP_CHARS + 2 + 16


def _canonical_ip(text: str) -> str | None:
    """The address as the index stores it, or None when ``text`` is not an IP."""
    if len(text) > MAX_CHECK_IP_CHARS:
        return None
    try:
        return _parse_ip(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _parse_ip(text: str) -> str:
    """The canonical address; raises ValueError, so text that is no address is never cached.

    Cached: the same few thousand pod addresses arrive again and again, and
    ``ipaddress`` parsing was the largest cost of a Check (about 6 µs per
    address, 3/4 of mapping a request); bounded in entries, and each key is at
    most :data:`MAX_CHECK_IP_CHARS` long.  An IPv4-mapped address is the IPv4
    address: the rule of :func:`netpol_pdp.index.flows.canonical_ip`.
    """
    ip = ipaddress.ip_address(text.strip().strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip.scope_id is not None:
            return str(ipaddress.IPv6Address(int(ip)))
    return str(ip)


def flow_from_check(request: Any) -> Flow:
    """The flow a CheckRequest asks about; raises FlowError naming the CheckRequest field.

    Shared by both filters: the network filter and the HTTP filter fill
    ``attributes.source`` and ``attributes.destination`` the same way (the
    downstream connection's remote and local addresses).
    """
    attrs = request.attributes
    if not request.HasField("attributes"):
        raise FlowError("attributes", "is missing: Envoy always sends the source and destination peers")
    if not attrs.HasField("source") or not attrs.source.HasField("address"):
        raise FlowError(_SOURCE, "is missing: a socket_address with an IP address is required")
    if not attrs.HasField("destination") or not attrs.destination.HasField("address"):
        raise FlowError(_DESTINATION, "is missing: a socket_address with an IP address and port is required")
    src_ip, _ = _socket_ip(attrs.source.address, _SOURCE)
    dst_ip, dst = _socket_ip(attrs.destination.address, _DESTINATION)
    protocol = _PROTOCOLS.get(dst.protocol)
    if protocol is None:
        raise FlowError(f"{_DESTINATION}.socket_address.protocol", f"unknown protocol {dst.protocol!r}")
    which_port = dst.WhichOneof("port_specifier")
    if which_port == "named_port":
        raise FlowError(
            f"{_DESTINATION}.socket_address.named_port",
            f"is not supported: a numeric port_value is required (got {dst.named_port!r})",
        )
    port = dst.port_value
    if not 1 <= port <= 65535:
        raise FlowError(
            f"{_DESTINATION}.socket_address.port_value",
            f"must be between 1 and 65535 (got {'none' if which_port is None else port})",
        )
    return Flow(src_ip, dst_ip, protocol, port)


def options_from_check(request: Any) -> CheckOptions:
    """Options from ``attributes.context_extensions``; unknown keys are left to other consumers.

    A malformed value of a known key raises FlowError: a typo in the proxy
    configuration must be seen, not silently read as "false".
    """
    extensions = request.attributes.context_extensions
    raw = extensions.get(OPTION_EXPLAIN)
    if raw is None:
        return CheckOptions()
    value = raw.strip().lower()
    if value in _TRUE:
        return CheckOptions(explain=True)
    if value in _FALSE:
        return CheckOptions(explain=False)
    raise FlowError(
        f"attributes.context_extensions[{OPTION_EXPLAIN}]", f'must be "true" or "false" (got {raw!r})'
    )


def _is_http(request: Any) -> bool:
    """True for the HTTP filter's checks (``attributes.request.http`` present), not the network filter's."""
    attrs = request.attributes
    return bool(attrs.HasField("request") and attrs.request.HasField("http"))


def _flow_text(flow: Flow) -> str:
    return f"{flow.src_ip} -> {flow.dst_ip} {flow.protocol}/{flow.dst_port}"


def _reason_header(reason: str) -> Any:
    """The reason header, overwriting any copy the client sent so upstreams can trust it."""
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=REASON_HEADER, value=reason),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def _response(allowed: bool, reason: str, message: str, metadata: dict[str, Any], http: bool) -> Any:
    """One CheckResponse: status, the HTTP part when the check came from the HTTP filter, metadata."""
    response = external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK if allowed else code_pb2.PERMISSION_DENIED, message=message)
    )
    response.dynamic_metadata.update(metadata)
    if http:
        header = _reason_header(reason)
        if allowed:
            response.ok_response.headers.append(header)
        else:
            denied = response.denied_response
            denied.status.code = http_status_pb2.Forbidden
            denied.headers.append(header)
            denied.body = f"netpol-pdp: {message}\n"
    return response


def _decision_response(flow: Flow, decision: Decision, http: bool) -> Any:
    reason = decision.reason.value
    metadata: dict[str, Any] = {
        "verdict": decision.verdict.value,
        "reason": reason,
        "generation": decision.generation,
        "flow": _flow_text(flow),
        "src": str(decision.src),
        "dst": str(decision.dst),
    }
    if decision.notes:
        metadata["notes"] = list(decision.notes)
    if decision.explained:
        metadata["explanation"] = decision.to_dict()["explanation"]
    message = f"{reason}: {_flow_text(flow)} (generation {decision.generation})"
    return _response(decision.allowed, reason, message, metadata, http)


def _invalid_response(error: FlowError, http: bool) -> Any:
    metadata = {"verdict": "DENY", "reason": INVALID_REQUEST, "error": str(error)}
    return _response(False, INVALID_REQUEST, f"{INVALID_REQUEST}: {error}", metadata, http)


class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    """``envoy.service.auth.v3.Authorization`` answering from ``decide(flow, explain)``.

    Stateless apart from ``decide``, so one instance can be registered on any
    grpc server (the ``netpol-pdp serve`` server, or a test's own).  Thread-safe
    as long as ``decide`` is (``Index.decide`` reads one published generation
    without locking).
    """

    def __init__(
        self,
        decide: DecideFn,
        metrics: ObservesCalls | None = None,
        decision_log: Any = None,
        index_getter: Callable[[], DecidesFlows | None] | None = None,
    ) -> None:
        self._decide = decide
        self._metrics = metrics
        #: ``serve --decision-log`` (server/decisionlog.py), with the index it explains Checks at
        self.log = decision_log
        self._index_getter = index_getter
        # (flow, http?, generation) -> the CheckResponse already built for it.  The
        # same flow at the same generation always gets the same answer, and
        # building one (metadata Struct, headers) cost more than mapping and
        # deciding together.  Shared messages: nothing may mutate a returned
        # response.  Bounded (entries and bytes) by clearing when full; explained answers are not kept.
        self._responses: dict[tuple[Flow, bool, int], Any] = {}
        self._responses_bytes = 0  # their serialized size (also bounded)

    def check(self, request: Any, caller: Any = None) -> Any:
        """The CheckResponse for one CheckRequest (no grpc context: used by Check and by tests)."""
        start = time.perf_counter()
        http = _is_http(request)
        try:
            flow = flow_from_check(request)
            options = options_from_check(request)
        except FlowError as error:
            if self._metrics is not None:
                self._metrics.flow_error(error.field)
            return _invalid_response(error, http)
        decision = self._decide(flow, options.explain)
        if options.explain:
            response = _decision_response(flow, decision, http)
        else:
            key = (flow, http, decision.generation)
            response = self._responses.get(key)
            if response is None:
                if (
                    len(self._responses) >= RESPONSE_CACHE_SIZE
                    or self._responses_bytes >= RESPONSE_CACHE_BYTES
                ):
                    self._responses.clear()
                    self._responses_bytes = 0
                response = self._responses[key] = _decision_response(flow, decision, http)
                self._responses_bytes += response.ByteSize()
        if self._metrics is not None:
            self._metrics.observe(METHOD, time.perf_counter() - start, (decision,), None)
        if self.log is not None and self._index_getter is not None:
            index: Any = self._index_getter()
            if index is not None:  # explained at the generation current now
                gen = index.snapshot() if hasattr(index, "snapshot") else None
                seconds = time.perf_counter() - start
                self.log.decided(METHOD, caller, seconds, 0, index, gen, (flow,), (decision,))
        return response

    def _caller(self, context: Any) -> Any:
        if self.log is None:
            return None
        return caller_of(context)

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        try:
            return self.check(request, self._caller(context))
        except IndexNotReady as error:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"netpol-pdp is not ready: {error}")
            raise  # unreachable: abort raises; keeps the type checker honest


class AioAuthorizationServicer(AuthorizationServicer):
    """The same service for ``grpc.aio`` servers: ``check`` called inline on the event loop.

    Deciding is short CPU work under the GIL (a cache hit is a dict lookup), so a
    thread hop would add latency and save nothing.
    """

    async def Check(self, request: Any, context: Any) -> Any:
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        try:
            return self.check(request, self._caller(context))
        except IndexNotReady as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"netpol-pdp is not ready: {error}")
            raise  # unreachable: abort raises


def add_to_server(
    server: grpc.Server | grpc.aio.Server,
    index_getter: Callable[[], DecidesFlows | None],
    metrics: ObservesCalls | None = None,
    decision_log: Any = None,
) -> AuthorizationServicer:
    """Register the Authorization service on ``server``, deciding with ``index_getter()``'s index.

    Works on both grpcio server flavours: a ``grpc.aio`` server gets the async
    servicer, a thread-pool server the sync one.  The getter is called once per
    Check, so a server that swaps its index (a reload) is followed without
    re-registering.  A getter returning ``None`` means "not loaded yet": Checks
    then fail with UNAVAILABLE.  ``metrics`` (the server's ``Metrics``) counts
    Checks like Decide calls, under the method label ``Check``.
    """

    def decide(flow: Flow, explain: bool) -> Decision:
        index = index_getter()
        if index is None:
            raise IndexNotReady("no index has been loaded yet")
        return index.decide(flow, explain=explain)

    flavour = AioAuthorizationServicer if isinstance(server, grpc.aio.Server) else AuthorizationServicer
    servicer = flavour(decide, metrics, decision_log, index_getter)
    # the generated registration, with a deserializer that makes undecodable bytes
    # INVALID_ARGUMENT rather than grpc's INTERNAL (server/decoding.py)
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.Check,
            request_deserializer=lenient(external_auth_pb2.CheckRequest),
            response_serializer=external_auth_pb2.CheckResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
    return servicer


def service(
    index_getter: Callable[[], DecidesFlows | None],
    metrics: ObservesCalls | None = None,
    decision_log: Any = None,
) -> tuple[str, Callable[[grpc.Server | grpc.aio.Server], AuthorizationServicer]]:
    """``(SERVICE_NAME, register)`` for ``server.app.start_server(extra_services=...)``.

    The server builder then registers the service on whichever flavour it starts
    and lists it for reflection; ``netpol-pdp serve`` passes a getter that returns
    ``None`` until the feed's first load succeeds.
    """
    return SERVICE_NAME, lambda server: add_to_server(server, index_getter, metrics, decision_log)
