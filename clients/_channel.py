"""What the sync and asyncio clients share: channel options, TLS, back-off, batching.

Kept free of any I/O so both clients (``client.py``, ``aio.py``) build their
channels and requests the same way and differ only in how they wait.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import grpc

from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.v1 import decision_pb2 as pb
from netpol_pdp.v1.convert import decision_from_pb, fill_flow

#: Same as the server's limit: a full batch, explained, fits with room to spare.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Flows per DecideStream message.  Per-message cost dominates in Python gRPC;
#: ~1,000 flows amortise it (docs/grpc.md) while keeping the first answer quick.
DEFAULT_BATCH = 1000
#: Batches in flight before the sender waits for answers (pipelining depth).
DEFAULT_WINDOW = 8

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


class ClientError(Exception):
    """A call failed for good (after retries): ``code`` is the gRPC status, ``details`` its message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
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
        try:
            return grpc.ssl_channel_credentials(
                root_certificates=self.ca.read_bytes() if self.ca else None,
                private_key=self.key.read_bytes() if self.key else None,
                certificate_chain=self.cert.read_bytes() if self.cert else None,
            )
        except OSError as exc:
            raise ValueError(f"tls: cannot read {exc.filename}: {exc.strerror}") from None


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
    host = target.rpartition(":")[0].strip("[]") or target
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def check_plaintext(target: str, tls: ClientTls | None, insecure: bool) -> None:
    """Mirror of the server's rule: plaintext only to loopback or when asked for."""
    if tls is None and not insecure and not is_loopback_target(target):
        raise ValueError(
            f"--server {target}: plaintext beyond loopback needs --insecure (or give --tls-ca for TLS)"
        )


def batched(flows: Iterable[Flow], size: int) -> Iterator[list[Flow]]:
    it = iter(flows)
    while chunk := list(islice(it, size)):
        yield chunk


def batch_request(request_id: int, flows: list[Flow], explain: bool) -> pb.DecideBatchRequest:
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
        },
        "uptime_seconds": round(msg.uptime_seconds, 3),
        "version": msg.version,
        "max_batch_flows": msg.max_batch_flows,
    }
