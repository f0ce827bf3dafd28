"""Build and run the gRPC server: the DecisionService plus health, reflection and TLS.

Two flavours share everything but the event model:

- ``sync`` (the default, chosen by measurement, docs/grpc.md): grpcio's
  thread-pool server;
- ``aio``: ``grpc.aio`` on an event loop in its own thread.

:func:`start_server` returns a :class:`ServerHandle` in both cases, so
``netpol-pdp serve``, the tests and the benchmarks start, query and stop either
the same way.  The handle's thread owns the server; other threads talk to it
through the handle (``set_serving``, ``stop``), which hops onto the loop when
needed.

Health (``grpc.health.v1``): ``""`` and ``netpol.pdp.v1.DecisionService`` are
NOT_SERVING until the state turns ready (the feed's first successful load),
SERVING after, and NOT_SERVING again as soon as shutdown begins, so load
balancers stop sending new calls while in-flight ones drain.  ``liveness``
(:data:`LIVENESS`) is SERVING from start to shutdown, whatever the feed does.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from netpol_pdp.server.config import (
    MAX_MESSAGE_BYTES,
    PEM_CERTIFICATE,
    PEM_PRIVATE_KEY,
    ConfigError,
    is_loopback_host,
    read_pem,
)
from netpol_pdp.server.service import add_to_server
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
#: Health service name that is SERVING for as long as the process serves at all: the
#: liveness probe's (deploy/deployment.yaml).  Readiness follows ``""``, which turns
#: NOT_SERVING while the feed is not ready or fails closed; restarting the pod then
#: would only throw away the last good state, so liveness must not follow it.
LIVENESS = "liveness"

Mode = Literal["aio", "sync"]
#: A service served beside the DecisionService: its full name (for reflection) and
#: ``register(server)``, which adds it to a sync or aio server (``server/envoy.py``'s
#: ``add_to_server`` for Envoy's Authorization service).
ExtraService = tuple[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class TlsConfig:
    """Server certificate and key (PEM files); ``client_ca`` turns on mutual TLS."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        cert = read_pem(self.cert, "--tls-cert", PEM_CERTIFICATE)
        key = read_pem(self.key, "--tls-key", PEM_PRIVATE_KEY)
        ca = read_pem(self.client_ca, "--client-ca", PEM_CERTIFICATE) if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )


def split_host_port(address: str, option: str = "--listen") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises :class:`ConfigError` naming ``option``."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        raise ConfigError(f"{option}: must be HOST:PORT (got {address!r})")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{option}: port must be between 0 and 65535 (got {port})")
    return host.strip("[]"), port


def check_plaintext(listen: str, tls: TlsConfig | None, insecure: bool) -> None:
    """Plaintext is allowed on loopback or when asked for (``--insecure``); otherwise TLS is required."""
    host, _ = split_host_port(listen)
    if tls is None and not insecure and not is_loopback_host(host):
        raise ConfigError(
            f"--listen {listen}: serving plaintext beyond loopback needs --insecure "
            "(or give --tls-cert and --tls-key)"
        )


#: A connection that has not finished its TLS and HTTP/2 handshake (sent the
#: preface and settings) by then is closed (issue 16: such connections stayed open).
HANDSHAKE_TIMEOUT_MS = 5_000
#: HTTP/2 ``SETTINGS_MAX_CONCURRENT_STREAMS`` advertised to every connection: calls
#: beyond it wait in the client (open DecideStreams have their own limits, limits.py).
MAX_CONCURRENT_STREAMS = 100


def server_options(reuse_port: bool) -> list[tuple[str, Any]]:
    # grpcio turns SO_REUSEPORT on by default on Linux, which lets a second
    # server silently share a port; it is on only for --workers.
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
        ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
    ]


#: How long past ``grace`` a stop waits for calls that do not end (a handler busy
#: deciding, a stuck loop) before it gives up on them (issue 16: shutdown stalled).
STOP_MARGIN = 2.0


class ServerHandle:
    """A started server (either flavour): its port, health control and shutdown."""

    def __init__(self) -> None:
        self.port = 0
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None

    def set_serving(self, serving: bool) -> None:
        raise NotImplementedError

    def stop(self, grace: float | None = 5.0) -> bool:
        """Stop taking calls (health NOT_SERVING), let in-flight calls finish for ``grace`` s, then end.

        Returns within ``grace`` + :data:`STOP_MARGIN` s: True if everything ended,
        False if calls were still running then (they are abandoned).
        """
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped."""
        return self._stopped.wait(timeout)

    def _health_status(self, serving: bool) -> int:
        response = health_pb2.HealthCheckResponse
        return int(response.SERVING if serving else response.NOT_SERVING)


class SyncServerHandle(ServerHandle):
    """grpcio's thread-pool server."""

    def __init__(
        self,
        servicer: pb_grpc.DecisionServiceServicer,
        listen: str,
        credentials: grpc.ServerCredentials | None,
        *,
        threads: int = 16,
        reuse_port: bool = False,
        extra_services: Sequence[ExtraService] = (),
    ) -> None:
        super().__init__()
        self._pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc")
        self.server = grpc.server(self._pool, options=server_options(reuse_port))
        add_to_server(servicer, self.server)
        for _, register in extra_services:
            register(self.server)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                *(name for name, _ in extra_services),
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        self.set_serving(False)
        self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        self.port = _bind(self.server, listen, credentials, reuse_port)
        self.server.start()

    def set_serving(self, serving: bool) -> None:
        status = self._health_status(serving)
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def stop(self, grace: float | None = 5.0) -> bool:
        deadline = time.monotonic() + (grace or 0.0) + STOP_MARGIN
        self.health.enter_graceful_shutdown()
        ended = self.server.stop(grace).wait((grace or 0.0) + STOP_MARGIN)
        self._pool.shutdown(wait=False, cancel_futures=True)
        # grpc's stop event fires once its own shutdown is done, even while a handler
        # still runs on a pool thread; such a thread would hold the interpreter's exit
        for thread in list(self._pool._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        return ended and not any(t.is_alive() for t in self._pool._threads)


class AioServerHandle(ServerHandle):
    """``grpc.aio`` on its own event loop thread."""

    def __init__(
        self,
        servicer: pb_grpc.DecisionServiceServicer,
        listen: str,
        credentials: grpc.ServerCredentials | None,
        *,
        reuse_port: bool = False,
        extra_services: Sequence[ExtraService] = (),
    ) -> None:
        super().__init__()
        self._servicer = servicer
        self._extra_services = tuple(extra_services)
        self._listen = listen
        self._credentials = credentials
        self._reuse_port = reuse_port
        self._loop = asyncio.new_event_loop()
        self._stop_request: asyncio.Event | None = None
        self._grace: float | None = 5.0
        self.health: Any = None
        self._thread = threading.Thread(target=self._run, name="grpc-aio", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()
            self._stopped.set()

    async def _main(self) -> None:
        try:
            server = grpc.aio.server(options=server_options(self._reuse_port))
            add_to_server(self._servicer, server)
            for _, register in self._extra_services:
                register(server)
            self.health = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            extra_names = (name for name, _ in self._extra_services)
            reflection.enable_server_reflection(
                (SERVICE_NAME, *extra_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
            )
            for name in ("", SERVICE_NAME):
                await self.health.set(name, self._health_status(False))
            await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
            self.port = _bind(server, self._listen, self._credentials, self._reuse_port)
            await server.start()
            self._stop_request = asyncio.Event()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        await self._stop_request.wait()
        await self.health.enter_graceful_shutdown()
        await server.stop(self._grace)

    def _call_soon(self, fn: Callable[[], Any]) -> None:
        if not self._stopped.is_set():
            self._loop.call_soon_threadsafe(fn)

    def set_serving(self, serving: bool) -> None:
        status = self._health_status(serving)

        async def update() -> None:
            for name in ("", SERVICE_NAME):
                await self.health.set(name, status)

        if threading.current_thread() is self._thread:
            self._loop.create_task(update())
        else:
            self._call_soon(lambda: self._loop.create_task(update()))

    def stop(self, grace: float | None = 5.0) -> bool:
        self._grace = grace
        stop_request = self._stop_request
        if stop_request is not None:
            self._call_soon(stop_request.set)
        self._thread.join((grace or 0.0) + STOP_MARGIN)
        return not self._thread.is_alive()


def _check_free(host: str, port: int, listen: str) -> None:
    """Refuse a port in use before grpc tries it: grpc would print its own log line first."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return  # grpc reports what it cannot resolve
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(f"--listen {listen}: cannot bind (address in use)") from None


def _bind(
    server: Any, listen: str, credentials: grpc.ServerCredentials | None, reuse_port: bool = False
) -> int:
    host, port = split_host_port(listen)
    if not reuse_port:
        _check_free(host, port, listen)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = (
            server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        )
    except RuntimeError as exc:  # grpcio raises RuntimeError when it cannot bind
        # grpc also fails this way when the TLS key does not belong to the certificate.
        hint = "; or --tls-key is not the key of --tls-cert" if credentials else ""
        raise ConfigError(f"--listen {listen}: cannot bind ({exc}{hint})") from None
    if not bound:
        hint = ", or --tls-key is not the key of --tls-cert" if credentials else ""
        raise ConfigError(f"--listen {listen}: cannot bind (address in use or not local{hint})")
    return int(bound)


def start_server(
    servicer: pb_grpc.DecisionServiceServicer,
    listen: str = "127.0.0.1:0",
    *,
    mode: Mode = "sync",
    tls: TlsConfig | None = None,
    insecure: bool = False,
    threads: int = 16,
    reuse_port: bool = False,
    extra_services: Sequence[ExtraService] = (),
) -> ServerHandle:
    """Start serving ``servicer`` (a sync or aio flavour matching ``mode``) on ``listen``,
    with ``extra_services`` beside it."""
    check_plaintext(listen, tls, insecure)
    credentials = tls.credentials() if tls else None
    if mode == "sync":
        return SyncServerHandle(
            servicer,
            listen,
            credentials,
            threads=threads,
            reuse_port=reuse_port,
            extra_services=extra_services,
        )
    if mode == "aio":
        return AioServerHandle(
            servicer, listen, credentials, reuse_port=reuse_port, extra_services=extra_services
        )
    raise ConfigError(f"--server-mode: must be aio or sync (got {mode!r})")
