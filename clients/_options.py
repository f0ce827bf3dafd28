"""Command-line options every client command shares (``--server`` and TLS), and the client they build.

``status``, and ``audit``/``decide`` when given ``--server``, call
:func:`add_client_options` on their parser and :func:`client_from_args` (or
:func:`connect_if_asked`) to connect, so every command spells the options the
same way as ``serve``:
``--tls-cert``/``--tls-key`` (here: the client's certificate, for mutual TLS),
``--tls-ca`` (the CA that signed the server's certificate) and ``--insecure``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.index.errors import FlowError

if TYPE_CHECKING:  # grpc is imported only by commands that talk to a server (cli.py's rule)
    from netpol_pdp.clients._channel import ClientTls
    from netpol_pdp.clients.client import DecisionClient
    from netpol_pdp.index.decision import Decision
    from netpol_pdp.index.ends import FlowByName
    from netpol_pdp.index.flows import Flow

DEFAULT_SERVER = "127.0.0.1:50051"


def add_client_options(
    parser: argparse.ArgumentParser, *, server_default: str | None = DEFAULT_SERVER
) -> None:
    group = parser.add_argument_group("server connection")
    group.add_argument(
        "--server",
        metavar="HOST:PORT",
        default=server_default,
        help=f"the netpol-pdp server to ask (default: {server_default or 'none, decide locally'})",
    )
    group.add_argument(
        "--tls-ca", type=Path, metavar="PEM", help="verify the server with this CA (turns TLS on)"
    )
    group.add_argument("--tls-cert", type=Path, metavar="PEM", help="client certificate for mutual TLS")
    group.add_argument("--tls-key", type=Path, metavar="PEM", help="client private key for mutual TLS")
    group.add_argument("--tls-server-name", metavar="NAME", help="name to check in the server certificate")
    group.add_argument("--tls", action="store_true", help="use TLS with the system's CA roots")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext to a non-loopback server (loopback always may)",
    )
    group.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per-call deadline (default 10)"
    )


def tls_from_args(args: argparse.Namespace) -> ClientTls | None:
    from netpol_pdp.clients._channel import ClientTls

    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name):
        return None
    return ClientTls(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name)


def client_from_args(args: argparse.Namespace) -> DecisionClient:
    """A client for ``args.server``; raises ValueError naming the option when they do not fit."""
    from netpol_pdp.clients.client import DecisionClient

    if not (math.isfinite(args.timeout) and args.timeout > 0):  # grpc takes 0, -5 and inf as "expired"
        raise ValueError(f"--timeout: must be a positive number of seconds (got {args.timeout})")
    return DecisionClient(args.server, tls=tls_from_args(args), insecure=args.insecure, timeout=args.timeout)


def connect_if_asked(args: argparse.Namespace) -> DecisionClient | None:
    """The client for ``--server`` (None without it); a :class:`CommandError` names a bad option."""
    if getattr(args, "server", None) is None:
        return None
    if getattr(args, "source", None):
        raise CommandError("--server and --source exclude each other: the server decides from its own source")
    try:
        return client_from_args(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class RemoteDecider:
    """``decide_many`` of the index API, answered by a server (what ``audit --server`` decides with)."""

    def __init__(self, client: DecisionClient) -> None:
        self.client = client

    def decide_many(self, flows: list[Flow], explain: bool = False) -> list[Decision]:
        from netpol_pdp.clients._channel import ClientError

        out: list[Decision] = []
        try:
            for result in self.client.decide_many(flows, explain=explain):
                if isinstance(result, FlowError):
                    raise CommandError(f"--server {self.client.target}: refused a flow: {result}")
                out.append(result)
        except ClientError as exc:
            raise CommandError(f"--server {self.client.target}: {exc}") from None
        return out


def remote_decide(client: DecisionClient, flow: Flow | FlowByName, explain: bool) -> Decision:
    """One flow decided by the server; errors become :class:`CommandError` naming the server."""
    from netpol_pdp.clients._channel import ClientError

    try:
        return client.decide(flow, explain=explain)
    except (ClientError, FlowError) as exc:
        raise CommandError(f"--server {client.target}: {exc}") from None
