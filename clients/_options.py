"""Command-line options every client command shares (``--server`` and TLS), and the client they build.

``status``, and ``audit``/``decide`` when given ``--server``, call
:func:`add_client_options` on their parser and :func:`client_from_args` to
connect, so every command spells the options the same way as ``serve``:
``--tls-cert``/``--tls-key`` (here: the client's certificate, for mutual TLS),
``--tls-ca`` (the CA that signed the server's certificate) and ``--insecure``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from netpol_pdp.clients._channel import ClientTls
from netpol_pdp.clients.client import DecisionClient

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
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name):
        return None
    return ClientTls(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name)


def client_from_args(args: argparse.Namespace) -> DecisionClient:
    """A client for ``args.server``; raises ValueError naming the option when they do not fit."""
    return DecisionClient(args.server, tls=tls_from_args(args), insecure=args.insecure, timeout=args.timeout)
