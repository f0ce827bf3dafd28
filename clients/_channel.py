"""What the sync and asyncio clients share: channel options, TLS, back-off, batching.

Kept free of any waiting so both clients (``client.py``, ``aio.py``) build their
channels and requests the same way (:class:`ChannelClient`) and differ only in
how they wait.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import grpc
from grpc_health.v1 import health_pb2_grpc

from netpol_pdp.index.decision import Decision
from netpol_pdp.index.ends import Asked
from netpol_pdp.index.errors import FlowError
from netpol_pdp.server.config import (
    MAX_MESSAGE_BYTES,
    PEM_CERTIFICATE,
    PEM_PRIVATE_KEY,
    is_loopback_host,
    read_pem,
)
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1 import decision_pb2_grpc as pb_grpc
from netpol_pdp.v1.convert import decision_from_pb, fill_flow

#: Flows per DecideStream message.  Per-message cost dominates in Python gRPC;
#: ~1,000 flows amortise it (docs/grpc.md) while keeping the first answer quick.
DEFAULT_BATCH = 1000
#: Batches in flight before the sender waits for answers (pipelining depth).
DEFAULT_WINDOW = 8

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


class ClientError(Exception):
    """A call failed for good (after retries): ``code`` is the gRPC status, ``details`` its message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        if code is grpc.StatusCode.UNAVAILABLE and "Socket closed" in details:
            # what a plaintext client sees of a TLS server, which says nothing itself
            details += " (if the server serves TLS, connect with --tls-ca)"
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class ClientTls:
    """Verify the server with ``ca`` (PEM; None = system roots); ``cert``+``key`` for mutual TLS.

    ``server_name`` overrides the name checked against the server certificate
    (for a certificate issued to a DNS name while dialling an IP).
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls: a client certificate needs both --tls-cert and --tls-key")
        return grpc.ssl_channel_credentials(
            root_certificates=read_pem(self.ca, "--tls-ca", PEM_CERTIFICATE) if self.ca else None,
            private_key=read_pem(self.key, "--tls-key", PEM_PRIVATE_KEY) if self.key else None,
            certificate_chain=read_pem(self.cert, "--tls-cert", PEM_CERTIFICATE) if self.cert else None,
        )


@dataclass(frozen=True)
class Retry:
    """Retry UNAVAILABLE up to ``attempts`` more times, sleeping ``initial * 2**n`` (capped, jittered)."""

    attempts: int = 4
    initial: float = 0.05
    maximum: float = 2.0

    def delays(self) -> Iterator[float]:
        for n in range(self.attempts):
            base = min(self.maximum, self.initial * (2**n))
            yield base * (0.5 + random.random() / 2)  # jitter: half to full


def is_loopback_target(target: str) -> bool:
    return is_loopback_host(target.rpartition(":")[0].strip("[]") or target)


def channel_options(tls: ClientTls | None, extra: Iterable[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # grpc's own reconnect back-off starts at 1 s: until it expires, every call
        # on the channel fails at once, and our retries would be spent in vain.
        # Reconnect on the same scale as :class:`Retry`.
        ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.min_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    options.extend(extra)
    return options


def check_target(target: str) -> None:
    """A ``HOST:PORT`` (IPv6 in brackets) must name its port: grpc would dial 443 silently.

    Targets in grpc's URI forms (``dns:///...``, ``unix:...``, ``ipv4:...``) pass as they are.
    """
    if "://" in target or target.startswith(("unix:", "unix-abstract:", "ipv4:", "ipv6:", "dns:")):
        return
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        example = f"{host if sep and host else target}:50051"
        raise ValueError(f"--server {target}: must be HOST:PORT, the port is required (e.g. {example})")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(
            f"--server {target}: an IPv6 address goes in brackets with a port ([{target}]:50051)"
        )


def check_plaintext(target: str, tls: ClientTls | None, insecure: bool) -> None:
    """Mirror of the server's rule: plaintext only to loopback or when asked for.

    Also refuses a port out of range: grpc would silently dial it modulo 65536
    (``:99999`` reaches port 34463), another server than the one named.
    """
    check_target(target)
    _host, sep, port = target.rpartition(":")
    if sep and port.isdigit() and not 1 <= int(port) <= 65535:
        raise ValueError(f"--server {target}: port must be between 1 and 65535 (got {int(port)})")
    if tls is None and not insecure and not is_loopback_target(target):
        raise ValueError(
            f"--server {target}: plaintext beyond loopback needs --insecure (or give --tls-ca for TLS)"
        )


def batched(flows: Iterable[Asked], size: int) -> Iterator[list[Asked]]:
    it = iter(flows)
    while chunk := list(islice(it, size)):
        yield chunk


#: Method paths of the calls the clients make with raw (bytes) responses.
DECIDE_BATCH = "/netpol.pdp.v1.DecisionService/DecideBatch"
DECIDE_STREAM = "/netpol.pdp.v1.DecisionService/DecideStream"


def batch_request(request_id: int, flows: list[Asked], explain: bool) -> pb.DecideBatchRequest:
    request = pb.DecideBatchRequest(request_id=request_id, explain=explain)
    add = request.flows.add
    for flow in flows:
        fill_flow(add(), flow)
    return request


def result_from_pb(result: pb.FlowResult) -> Decision | FlowError:
    """A batch slot: the decision, or the server's :class:`FlowError` for a malformed flow."""
    if result.HasField("error"):
        return FlowError(result.error.field, result.error.message)
    return decision_from_pb(result.decision)


def _kube_feed_to_dict(feed: pb.FeedStatus) -> dict[str, Any]:
    """The Kubernetes feed's extra fields (absent for a manifest feed, which has no collections)."""
    if not feed.resources:
        return {}
    return {
        "stale": feed.stale,
        "resources": [
            {
                "kind": r.kind,
                "synced": r.synced,
                "resource_version": r.resource_version,
                "objects": r.objects,
                "invalid_objects": r.invalid_objects,
                "watching": r.watching,
                "events": r.events,
                "last_event_unix": r.last_event_unix,
                "reconnects": r.reconnects,
                "relists": r.relists,
                "last_error": r.last_error,
                "last_error_unix": r.last_error_unix,
                "last_invalid": r.last_invalid,
                "seconds_without_watch": r.seconds_without_watch,
                "stale": r.stale,
                "installed": not r.not_installed,
            }
            for r in feed.resources
        ],
    }


class ResultDecoder:
    """Batch responses read from their wire bytes, each distinct result decoded once.

    Turning a result message into a :class:`Decision` costs microseconds in
    Python, more than the server spends deciding a cached flow; yet a batch
    repeats the same few results (same endpoints, same verdict) over and over.
    So the client receives batch responses as raw bytes, splits them into their
    ``results`` entries (a few byte operations each) and decodes each distinct
    entry once: decisions are immutable, so equal bytes can share one object.
    The cache is emptied when it reaches ``limit`` entries.
    """

    def __init__(self, limit: int = 1 << 16) -> None:
        self._limit = limit
        self._cache: dict[bytes, Decision | FlowError] = {}

    def decode(self, data: bytes) -> tuple[int, int, list[Decision | FlowError]]:
        """``(request_id, generation, results)`` of one encoded ``DecideBatchResponse``."""
        request_id = generation = 0
        results: list[Decision | FlowError] = []
        cache = self._cache
        pos, end = 0, len(data)
        while pos < end:
            tag = data[pos]
            if tag not in (0x08, 0x12, 0x18):  # a field this client does not know (a newer server)
                return self._general(data)
            value, pos = _varint(data, pos + 1)
            if tag == 0x12:  # results: length-delimited FlowResult
                entry = data[pos : pos + value]
                pos += value
                result = cache.get(entry)
                if result is None:
                    result = result_from_pb(pb.FlowResult.FromString(entry))
                    if len(cache) >= self._limit:
                        cache.clear()
                    cache[entry] = result
                results.append(result)
            elif tag == 0x08:
                request_id = value
            else:
                generation = value
        return request_id, generation, results

    @staticmethod
    def _general(data: bytes) -> tuple[int, int, list[Decision | FlowError]]:
        msg = pb.DecideBatchResponse.FromString(data)
        return msg.request_id, msg.generation, [result_from_pb(r) for r in msg.results]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def status_to_dict(msg: pb.GetStatusResponse) -> dict[str, Any]:
    """``GetStatus`` as plain JSON-ready data (numbers stay numbers)."""
    feed = msg.feed
    return {
        "generation": msg.generation,
        "ready": msg.ready,
        "synced": msg.synced,
        "object_counts": dict(sorted(msg.object_counts.items())),
        "feed": {
            "kind": feed.kind,
            "sources": list(feed.sources),
            "loads": feed.loads,
            "errors": feed.errors,
            "last_error": feed.last_error,
            "last_load_unix": feed.last_load_unix,
            "last_error_unix": feed.last_error_unix,
            **_kube_feed_to_dict(feed),
            **({"stopped": feed.stopped, "empty": feed.empty} if feed.kind == "manifests" else {}),
        },
        "uptime_seconds": round(msg.uptime_seconds, 3),
        "version": msg.version,
        "max_batch_flows": msg.max_batch_flows,
    }


DEFAULT_RETRY = Retry()


def flow_error_from_status(details: str) -> FlowError:
    """The server's INVALID_ARGUMENT message ``field: message`` back into a :class:`FlowError`."""
    field, sep, message = details.partition(": ")
    return FlowError(field, message) if sep else FlowError("flow", details)


class ChannelClient:
    """The part of a client that does not wait: options, the channel, its stubs and raw batch calls.

    :class:`~netpol_pdp.clients.client.DecisionClient` and
    :class:`~netpol_pdp.clients.aio.AsyncDecisionClient` differ only in where
    their channel comes from (:attr:`channels`: ``grpc`` or ``grpc.aio``) and in
    awaiting their calls, so everything else is built here once.
    """

    #: The module whose ``secure_channel``/``insecure_channel`` build the channel.
    channels: ClassVar[Any] = grpc

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
            self.channel = self.channels.secure_channel(target, tls.credentials(), options=opts)
        else:
            self.channel = self.channels.insecure_channel(target, options=opts)
        self.stub = pb_grpc.DecisionServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        # Batch calls whose responses stay bytes, for ResultDecoder (no deserializer: raw bytes).
        self._decide_batch = self.channel.unary_unary(
            DECIDE_BATCH, request_serializer=pb.DecideBatchRequest.SerializeToString
        )
        self._decide_stream = self.channel.stream_stream(
            DECIDE_STREAM, request_serializer=pb.DecideBatchRequest.SerializeToString
        )
        self._decoder = ResultDecoder()

    def _deadline(self, timeout: float | None) -> float | None:
        return timeout if timeout is not None else self.timeout


def decide_request(flow: Asked, explain: bool) -> pb.DecideRequest:
    request = pb.DecideRequest(explain=explain)
    fill_flow(request.flow, flow)
    return request


def refused(exc: ClientError) -> ClientError | FlowError:
    """What a failed ``Decide`` raises: the :class:`FlowError` the server named, or the call's error."""
    if exc.code is grpc.StatusCode.INVALID_ARGUMENT:
        return flow_error_from_status(exc.details)
    return exc
