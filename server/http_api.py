"""The DecisionService as JSON over HTTP (``serve --http-listen``), served by aiohttp.

For curl, scripts and firewalls that do not speak gRPC.  Each unary RPC of the
service is one route, derived from its name (``DecideBatch`` -> ``POST
/v1/decide-batch``), its request and response bodies the proto's canonical JSON
mapping (``google.protobuf.json_format``: lowerCamelCase names, the original
snake_case names accepted too, enums by name, 64-bit integers as strings).
``GetStatus`` is also ``GET /v1/status``.  A route calls the same
:class:`~netpol_pdp.server.service.DecisionCore` as the gRPC servicers, so
limits, metrics (``method="HTTP/Decide"``...) and the decision log are the
same; adding an RPC to :data:`RPCS` adds its route (docs/http-api.md).

Errors are JSON too, ``{"error": {"code": <HTTP status>, "status": "<gRPC code
name>", "grpc_code": <number>, "message": "...", "field": "..."}}``:

- a body that is no JSON of the request message, or a malformed flow of
  ``Decide`` -> 400 ``INVALID_ARGUMENT`` naming the field (``flow.dst_port``);
- a batch over ``--max-batch`` flows, or a body over the message limit -> 413;
- before the first load (or while failing closed) -> 503 ``UNAVAILABLE``;
- an unknown path -> 404, a wrong method -> 405.

``Reach`` and ``Matrix`` (``POST /v1/reach``, ``POST /v1/matrix``) answer what
they answer over gRPC; their bad requests are 400 (a Matrix over its cell
limit too: the core reports it as INVALID_ARGUMENT without marking it a limit).

Why aiohttp: a maintained asyncio HTTP/1.1 server with TLS through the standard
``ssl`` module; it runs on its own event loop thread, like the aio gRPC
flavour, and decides inline on the loop (CPU work under the GIL gains nothing
from a thread hop).  docs/benchmarks.md measures it against gRPC unary calls.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from netpol_pdp.server.app import TlsConfig
from netpol_pdp.server.config import (
    MAX_MESSAGE_BYTES,
    PEM_CERTIFICATE,
    PEM_PRIVATE_KEY,
    ConfigError,
    read_pem,
)
from netpol_pdp.server.decisionlog import Caller, peer_of
from netpol_pdp.server.service import DecisionCore, RequestError
from netpol_pdp.v1 import decision_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"]
JSON = "application/json"
MAX_BODY = web.AppKey("max_body", int)

#: RPC name -> how a route calls the core: (core, request message, caller) -> response bytes or message.
#: Streaming RPCs have no route (DecideBatch is their one-message form).
RPCS: dict[str, Callable[[DecisionCore, Any, Caller], bytes | Message]] = {
    "Decide": lambda core, request, caller: core.decide(request, caller, "HTTP/Decide"),
    "DecideBatch": lambda core, request, caller: core.decide_batch(request, "HTTP/DecideBatch", caller),
    "GetStatus": lambda core, request, caller: core.status(),
    "Reach": lambda core, request, caller: core.reach(request, "HTTP/Reach"),
    "Matrix": lambda core, request, caller: core.matrix(request, "HTTP/Matrix"),
}

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def route_path(rpc: str) -> str:
    """``DecideBatch`` -> ``/v1/decide-batch``."""
    return "/v1/" + re.sub(r"(?<!^)(?=[A-Z])", "-", rpc).lower()


def error_response(
    code: grpc.StatusCode, message: str, field: str = "", http_status: int | None = None
) -> web.Response:
    status = http_status or _HTTP_STATUS.get(code, 500)
    body: dict[str, Any] = {
        "code": status,
        "status": code.name,
        "grpc_code": code.value[0],
        "message": message,
    }
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


@dataclass(frozen=True)
class _Route:
    rpc: str
    request: type[Message]
    response: type[Message]
    call: Callable[[DecisionCore, Any, Caller], bytes | Message]


def _routes() -> list[_Route]:
    out = []
    for name, call in RPCS.items():
        method = SERVICE.methods_by_name[name]
        out.append(
            _Route(
                name,
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type),
                call,
            )
        )
    return out


def caller_of(request: web.BaseRequest) -> Caller:
    """The peer (``ipv4:1.2.3.4:5678``, gRPC's spelling) and the client certificate's subject."""
    transport = request.transport
    peer = ""
    subject = ""
    if transport is not None:
        peer = peer_of(transport.get_extra_info("peername"))
        cert = transport.get_extra_info("peercert")
        if isinstance(cert, dict):
            parts = [
                f"{_SHORT.get(key, key)}={value}" for rdn in cert.get("subject", ()) for key, value in rdn
            ]
            subject = ",".join(reversed(parts))  # RFC 4514 order: most specific first
    return Caller(peer, subject)


_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}


class HttpApi:
    """The aiohttp application over one :class:`DecisionCore`, on its own event loop thread."""

    def __init__(self, core: DecisionCore, tls: TlsConfig | None = None, max_body: int = MAX_MESSAGE_BYTES):
        self.core = core
        self.tls = tls
        self.max_body = max_body
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body, middlewares=[_errors_as_json])
        app[MAX_BODY] = self.max_body
        for route in _routes():
            app.router.add_post(route_path(route.rpc), self._handler(route))
        status = next(r for r in _routes() if r.rpc == "GetStatus")
        app.router.add_get("/v1/status", self._handler(status, body=False))
        return app

    def _handler(self, route: _Route, body: bool = True) -> Callable[[web.Request], Any]:
        core = self.core

        async def handle(request: web.Request) -> web.Response:
            message = route.request()
            if body:
                data = await request.read()
                if data.strip():
                    try:
                        json_format.Parse(data, message)
                    except (json_format.ParseError, UnicodeDecodeError) as exc:
                        return error_response(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f"body: not a {route.request.DESCRIPTOR.name} in JSON: {exc}",
                            "body",
                        )
            try:
                answer = route.call(core, message, caller_of(request))
            except RequestError as exc:
                return error_response(exc.code, exc.message, exc.field, 413 if exc.over_limit else None)
            if isinstance(answer, bytes):
                answer = route.response.FromString(answer)
            return web.Response(text=json_format.MessageToJson(answer, indent=None), content_type=JSON)

        return handle

    def start(self, host: str, port: int) -> int:
        """Serve on ``host:port`` (0: any free port) from a new thread; returns the bound port."""
        context = _ssl_context(self.tls) if self.tls is not None else None
        ready = threading.Event()
        errors: list[BaseException] = []

        async def run() -> None:
            try:
                self._runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
                await self._runner.setup()
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host.strip("[]"), port))
                site = web.SockSite(self._runner, sock, ssl_context=context, backlog=1024)
                await site.start()
                self.port = sock.getsockname()[1]
            except BaseException as exc:
                errors.append(exc)
            finally:
                ready.set()

        def thread() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(run())
                if not errors:
                    loop.run_forever()
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
            finally:
                loop.close()

        self._thread = threading.Thread(target=thread, name="http-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join(5)
            raise errors[0]
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """aiohttp's own refusals (404, 405, 413) as the API's JSON errors."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[MAX_BODY]
        return error_response(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"body: larger than {limit} bytes", "body", 413
        )
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{request.method} {request.path}: use {', '.join(sorted(exc.allowed_methods))}",
            http_status=405,
        )
    except web.HTTPNotFound:
        paths = sorted({route_path(r) for r in RPCS} | {"/v1/status"})
        return error_response(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{request.path}: no such route (routes: {', '.join(paths)})",
            http_status=404,
        )


def _ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """The gRPC server's TLS options for HTTP: certificate and key, and with a client CA mutual TLS."""
    read_pem(tls.cert, "--tls-cert", PEM_CERTIFICATE)  # the same one-line errors as gRPC's
    read_pem(tls.key, "--tls-key", PEM_PRIVATE_KEY)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    except ssl.SSLError as exc:
        raise ConfigError(
            f"--tls-key {tls.key}: not the key of --tls-cert {tls.cert} ({exc.reason})"
        ) from None
    if tls.client_ca is not None:
        read_pem(tls.client_ca, "--client-ca", PEM_CERTIFICATE)
        context.load_verify_locations(str(tls.client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context
