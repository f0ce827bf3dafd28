"""Envoy's HTTP ext_authz over plain HTTP (``http_service``): ``serve --envoy-http-listen``.

Envoy's HTTP filter can ask an authorization service over HTTP/1.1 instead of
gRPC.  Through a real Envoy that cost about a quarter of the gRPC call's added
latency (docs/envoy.md "What it costs"), so this is the faster of the two
integrations; the gRPC ``Authorization/Check`` (server/envoy.py) remains the one
the network filter and Istio use.

The flow comes from two headers that Envoy itself writes, from the downstream
connection, with ``authorization_request.headers_to_add`` (clients/envoy/
http-ext-authz-http.yaml):

- ``x-netpol-pdp-source: %DOWNSTREAM_REMOTE_ADDRESS%``      (the client's ip:port)
- ``x-netpol-pdp-destination: %DOWNSTREAM_LOCAL_ADDRESS%``  (the listener's ip:port)

A client cannot forge them: Envoy forwards only its allowed request headers to the
authorization service (Host, Method, Path, Content-Length, Authorization by
default) and ``headers_to_add`` replaces any copy.  The answer:

- allowed: 200 with ``x-netpol-pdp-reason``, which the example's
  ``allowed_upstream_headers`` copies onto the upstream request, replacing any copy
  the client sent;
- denied: 403, ``x-netpol-pdp-reason`` and a one-line body, sent to the client;
- not a flow (a header missing or not ip:port): 403 ``invalid-request`` naming the header;
- no index loaded yet: 503 (Envoy sends it to the client, as ``status_on_error`` would).

The server is a bare asyncio HTTP/1.1 protocol on its own thread and event loop
(keep-alive, no body expected; a body's Content-Length is honoured and skipped),
because a general HTTP framework's per-request work was what this mode exists to
avoid.  Responses are cached as bytes per (flow, generation), like the gRPC
servicer's.  Decisions are counted under ``method="Check"``, and written to the
decision log (``serve --decision-log``, server/decisionlog.py) under the same
method, with Envoy's connection to this server as the caller, like a gRPC Check.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.server.decisionlog import Caller, peer_of
from netpol_pdp.server.envoy import (
    INVALID_REQUEST,
    METHOD,
    REASON_HEADER,
    RESPONSE_CACHE_SIZE,
    DecidesFlows,
    ObservesCalls,
    _canonical_ip,
)

__all__ = ["DESTINATION_HEADER", "SOURCE_HEADER", "HttpAuthorizer", "answer", "flow_from_headers"]

#: Written by Envoy (``headers_to_add: %DOWNSTREAM_REMOTE_ADDRESS%``): the client's ip:port.
SOURCE_HEADER = "x-netpol-pdp-source"
#: Written by Envoy (``headers_to_add: %DOWNSTREAM_LOCAL_ADDRESS%``): the listener's ip:port.
DESTINATION_HEADER = "x-netpol-pdp-destination"
_SOURCE, _DESTINATION = SOURCE_HEADER.encode(), DESTINATION_HEADER.encode()
_MAX_HEAD = 64 * 1024  # Envoy's own default request-header limit is 60 KiB


def _address(value: str | None, header: str, need_port: bool) -> tuple[str, int]:
    if not value:
        raise FlowError(header, "is missing: Envoy's headers_to_add must set it (docs/envoy.md)")
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise FlowError(header, f"must be ip:port (got {value!r})")
    ip = _canonical_ip(host)
    if ip is None:
        raise FlowError(header, f"must be an IPv4 or [IPv6] address and port (got {value!r})")
    port = int(port_text)
    if need_port and not 1 <= port <= 65535:
        raise FlowError(header, f"port must be between 1 and 65535 (got {value!r})")
    return ip, port


def flow_from_headers(source: str | None, destination: str | None) -> Flow:
    """The flow of one authorization request; raises FlowError naming the header."""
    src_ip, _ = _address(source, SOURCE_HEADER, need_port=False)
    dst_ip, dst_port = _address(destination, DESTINATION_HEADER, need_port=True)
    return Flow(src_ip, dst_ip, "TCP", dst_port)


def _http(status: str, reason: str, body: str = "") -> bytes:
    data = body.encode()
    return (
        f"HTTP/1.1 {status}\r\n{REASON_HEADER}: {reason}\r\ncontent-type: text/plain\r\n"
        f"content-length: {len(data)}\r\n\r\n"
    ).encode() + data


_NOT_READY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 33\r\n\r\n"
    b"netpol-pdp: no index loaded yet\r\n"
)


def _invalid(error: FlowError) -> bytes:
    return _http("403 Forbidden", INVALID_REQUEST, f"netpol-pdp: {INVALID_REQUEST}: {error}\n")


def answer(
    decider: DecidesFlows, source: str | None, destination: str | None
) -> tuple[bytes, Decision | None]:
    """The HTTP response for one request, and its Decision (None when there was none)."""
    try:
        flow = flow_from_headers(source, destination)
    except FlowError as error:
        return _invalid(error), None
    return _decided(decider, flow)


def _decided(decider: DecidesFlows, flow: Flow) -> tuple[bytes, Decision]:
    """The HTTP response for one flow, and its Decision."""
    decision = decider.decide(flow)
    reason = decision.reason.value
    if decision.allowed:
        return _http("200 OK", reason), decision
    text = f"{flow.src_ip} -> {flow.dst_ip} {flow.protocol}/{flow.dst_port}"
    body = f"netpol-pdp: {reason}: {text} (generation {decision.generation})\n"
    return _http("403 Forbidden", reason, body), decision


def _without_port(source: str | None) -> str | None:
    if source is None:
        return None
    host, sep, port = source.rpartition(":")
    return host if sep and port.isdigit() else source


def _headers(head: bytes) -> tuple[str | None, str | None, int]:
    """(source, destination, content-length) from a request head."""
    source = destination = None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == _SOURCE:
            source = value.strip().decode("latin-1")
        elif name == _DESTINATION:
            destination = value.strip().decode("latin-1")
        elif name == b"content-length" and value.strip().isdigit():
            length = int(value)
    return source, destination, length


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: HttpAuthorizer) -> None:
        self.owner = owner
        self.buffer = b""
        self.skip = 0
        self.transport: Any = None
        self.caller: Caller | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.owner.log is not None:
            self.caller = Caller(peer_of(transport.get_extra_info("peername")))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        while True:
            if self.skip:
                taken = min(self.skip, len(buffer))
                self.skip -= taken
                buffer = buffer[taken:]
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buffer = buffer[:end], buffer[end + 4 :]
            source, destination, self.skip = _headers(head)
            self.transport.write(self.owner.respond(source, destination, self.caller))
        if len(buffer) > _MAX_HEAD:
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n")
            self.transport.close()
        self.buffer = buffer


class HttpAuthorizer:
    """The HTTP authorization server on a daemon thread: ``start()`` binds and returns the port."""

    def __init__(
        self,
        index_getter: Callable[[], DecidesFlows | None],
        metrics: ObservesCalls | None = None,
        *,
        reuse_port: bool = False,
        decision_log: Any = None,
    ) -> None:
        self._getter = index_getter
        self._metrics = metrics
        self._reuse_port = reuse_port
        #: ``serve --decision-log`` (server/decisionlog.py): each decision, as a gRPC Check's
        self.log = decision_log
        self._responses: dict[tuple[str | None, str | None, int], tuple[bytes, Decision, Flow]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def respond(self, source: str | None, destination: str | None, caller: Caller | None = None) -> bytes:
        """The response bytes for one request's two headers (``caller``: Envoy's connection, logged)."""
        decider = self._getter()
        if decider is None:
            return _NOT_READY
        start = time.perf_counter()
        generation = getattr(decider, "generation", None)
        # The source port varies per connection and is never decided on: key on the IP.
        key = (_without_port(source), destination, generation) if isinstance(generation, int) else None
        cached = self._responses.get(key) if key is not None else None
        if cached is not None:
            data, decision, flow = cached
        else:
            try:
                flow = flow_from_headers(source, destination)
            except FlowError as error:  # not a decision: counted, never logged
                if self._metrics is not None:
                    self._metrics.flow_error(error.field)
                return _invalid(error)
            data, decision = _decided(decider, flow)
            if key is not None:
                if len(self._responses) >= RESPONSE_CACHE_SIZE:
                    self._responses.clear()
                self._responses[key] = (data, decision, flow)
        if self._metrics is not None:
            self._metrics.observe(METHOD, time.perf_counter() - start, (decision,), None)
        if self.log is not None:  # explained by the log's writer at the generation current now
            gen = decider.snapshot() if hasattr(decider, "snapshot") else None
            self.log.decided(
                METHOD, caller, time.perf_counter() - start, 0, decider, gen, (flow,), (decision,)
            )
        return data

    def start(self, host: str, port: int) -> int:
        ready = threading.Event()
        bound: list[int] = []
        errors: list[BaseException] = []

        async def run() -> None:
            loop = asyncio.get_running_loop()
            try:
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self._reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host.strip("[]"), port))
                self._server = await loop.create_server(lambda: _Protocol(self), sock=sock, backlog=1024)
            except OSError as exc:
                errors.append(exc)
                ready.set()
                return
            bound.append(self._server.sockets[0].getsockname()[1])
            ready.set()
            await self._server.serve_forever()

        def thread() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(run())
            except asyncio.CancelledError:
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=thread, name="envoy-http", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return bound[0]

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():
            loop.call_soon_threadsafe(server.close)  # ends serve_forever, and with it the thread
        if self._thread is not None:
            self._thread.join(5)
