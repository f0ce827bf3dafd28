"""``netpol-pdp serve``: run the gRPC decision service.

Serves the manifests under ``--source`` (files or folders, repeatable; the
bundled example cluster when none is given), reloading them on every change;
or, with ``--kube``, follows a Kubernetes cluster through its API server
(``--kubeconfig``/``--context``, or the pod's service account in a cluster).
Plaintext is allowed on loopback or with ``--insecure``; anywhere else give
``--tls-cert`` and ``--tls-key`` (and ``--client-ca`` to require client
certificates).  Logs are JSON lines on stderr; SIGTERM/SIGINT drain in-flight
calls for ``--grace`` seconds, then exit.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.sources import add_service_partial_argument, service_partial
from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.manifests import DEFAULT_MAX_FILE_BYTES
from netpol_pdp.server.config import DEFAULT_MAX_BATCH, ConfigError, is_loopback_host

if TYPE_CHECKING:  # the server (grpc) is imported when it starts, not to build the parser
    from netpol_pdp.server.serve import ServeOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        type=Path,
        metavar="PATH",
        help="manifest file or folder to serve and watch (repeatable; default: the bundled example cluster)",
    )
    kube = parser.add_argument_group("Kubernetes feed (instead of --source)")
    kube.add_argument(
        "--kube",
        action="store_true",
        help="list and watch a cluster's Namespaces, Pods, Nodes and NetworkPolicies (docs/kubernetes.md)",
    )
    kube.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config; inside a pod: its service account)",
    )
    kube.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    kube.add_argument(
        "--stale-after",
        type=float,
        default=30.0,
        metavar="S",
        help="report the feed stale after this many seconds without a working watch",
    )
    kube.add_argument(
        "--fail-closed-after",
        type=float,
        metavar="S",
        help="after this long without a working watch: NOT_SERVING, Decide UNAVAILABLE (default: off)",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:50051", metavar="HOST:PORT", help="the gRPC address to listen on"
    )
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="also serve Prometheus /metrics on this address (default: off)",
    )
    parser.add_argument(
        "--envoy-http-listen",
        metavar="HOST:PORT",
        help="also answer Envoy's HTTP ext_authz http_service on this address (plain HTTP; docs/envoy.md)",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate (chain)")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="server private key")
    parser.add_argument(
        "--client-ca", type=Path, metavar="PEM", help="require client certificates signed by this CA"
    )
    parser.add_argument("--insecure", action="store_true", help="allow plaintext on a non-loopback address")
    parser.add_argument(
        "--wait-for-source",
        action="store_true",
        help="if the first load of --source fails, stay up (NOT_SERVING) and wait for a fix "
        "instead of exiting with status 2",
    )
    parser.add_argument(
        "--max-file-size",
        type=_mebibytes,
        default=DEFAULT_MAX_FILE_BYTES,
        metavar="MIB",
        help=f"largest manifest file read; a larger one is a load problem "
        f"(default {DEFAULT_MAX_FILE_BYTES >> 20}, docs/manifest-feed.md)",
    )
    add_service_partial_argument(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serving processes sharing the port (SO_REUSEPORT), each with its own index",
    )
    parser.add_argument(
        "--server-mode",
        choices=("aio", "sync"),
        default="sync",
        help="sync: grpcio's thread-pool server; aio: grpc.aio (docs/grpc.md compares them)",
    )
    parser.add_argument(
        "--threads", type=int, default=16, metavar="N", help="threads serving calls (--server-mode sync)"
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help="the most flows one batch may hold",
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, metavar="S", help="seconds to drain calls in flight on shutdown"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.001,
        metavar="S",
        help="Python's thread switch interval, in seconds: bounds how long a reload keeps decisions waiting",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="least severe log line written",
    )
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--metrics-port-file", type=Path, help=argparse.SUPPRESS)  # set by --workers
    parser.add_argument("--supervisor-pid", type=int, help=argparse.SUPPRESS)  # set by --workers


#: ``serve --help``'s description (the module docstring is for the code's readers).
DESCRIPTION = """\
Run the gRPC decision service (netpol.pdp.v1.DecisionService, Envoy's ext_authz Check, \
health, reflection) over the manifests of --source (files or folders, repeatable; the \
bundled example cluster when none is given), reloaded on every change; or, with --kube, \
over a Kubernetes cluster followed through its API server.

Plaintext is allowed on a loopback address or with --insecure; anywhere else give \
--tls-cert and --tls-key (and --client-ca to require client certificates). Logs are JSON \
lines on stderr. SIGTERM or SIGINT drains the calls in flight for --grace seconds, then exits.

Exit status: 0 after SIGTERM/SIGINT, 2 a bad option or a source whose first load fails."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("serve", help="run the gRPC decision service", description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(run=run)


def check_envoy_http_listen(address: str, insecure: bool, workers: int) -> None:
    """``--envoy-http-listen``: HOST:PORT, plain HTTP only on loopback unless ``--insecure``."""
    from netpol_pdp.server.app import split_host_port

    host, port = split_host_port(address, "--envoy-http-listen")
    if not insecure and not is_loopback_host(host):
        raise ConfigError(
            f"--envoy-http-listen {address}: plain HTTP beyond loopback needs --insecure "
            "(run it beside Envoy, or on a trusted pod network)"
        )
    if workers > 1 and port == 0:
        raise ConfigError(f"--envoy-http-listen {address}: --workers share one port; give a fixed one")


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    """Check the options (a :class:`ConfigError` names the bad one) and build :class:`ServeOptions`."""
    from netpol_pdp.server.app import TlsConfig
    from netpol_pdp.server.serve import ServeOptions

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        raise ConfigError("--client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
    if args.envoy_http_listen is not None:
        check_envoy_http_listen(args.envoy_http_listen, args.insecure, args.workers)
    for name in ("workers", "threads", "max_batch"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1")
    for name in ("grace", "switch_interval", "stale_after", "fail_closed_after"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):  # nan passes every comparison below
            raise ConfigError(f"--{name.replace('_', '-')}: must be a finite number of seconds (got {value})")
    if args.grace < 0:
        raise ConfigError("--grace: must be zero or more (seconds)")
    if args.switch_interval <= 0:
        raise ConfigError("--switch-interval: must be positive")
    if args.kube and args.source:
        raise ConfigError("--source and --kube are two different feeds: give one")
    for flag in ("kubeconfig", "context", "fail_closed_after"):
        if getattr(args, flag) is not None and not args.kube:
            raise ConfigError(f"--{flag.replace('_', '-')} needs --kube")
    if args.fail_closed_after is not None and args.fail_closed_after <= 0:
        raise ConfigError("--fail-closed-after: must be positive (seconds)")
    if args.stale_after <= 0:
        raise ConfigError("--stale-after: must be positive (seconds)")
    if args.kube:
        sources = []
    elif args.source:
        sources = list(args.source)
    else:
        sources = [CLUSTER]
    for path in sources:
        if not path.exists():
            raise ConfigError(f"--source {path}: no such file or directory")
    tls = TlsConfig(args.tls_cert, args.tls_key, args.client_ca) if args.tls_cert else None
    return ServeOptions(
        sources=sources,
        listen=args.listen,
        metrics_listen=args.metrics_listen,
        envoy_http_listen=args.envoy_http_listen,
        tls=tls,
        insecure=args.insecure,
        mode=args.server_mode,
        workers=args.workers,
        threads=args.threads,
        max_batch=args.max_batch,
        grace=args.grace,
        switch_interval=args.switch_interval,
        reuse_port=args.reuse_port,
        metrics_port_file=args.metrics_port_file,
        supervisor_pid=args.supervisor_pid,
        log_level=args.log_level,
        kube=args.kube,
        kubeconfig=args.kubeconfig,
        kube_context=args.context,
        stale_after=args.stale_after,
        fail_closed_after=args.fail_closed_after,
        wait_for_source=args.wait_for_source,
        max_file_bytes=args.max_file_size,
        service_partial=service_partial(args),
    )


def _mebibytes(text: str) -> int:
    """``--max-file-size``: a positive number of MiB (fractions allowed), as bytes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of MiB (got {text!r})") from None
    if not 0 < value < 1 << 20:
        raise argparse.ArgumentTypeError(f"must be more than 0 and less than 1048576 MiB (got {text!r})")
    return max(1, int(value * (1 << 20)))


def run(args: argparse.Namespace) -> int:
    from netpol_pdp.server.logging import configure
    from netpol_pdp.server.serve import serve

    configure(args.log_level)
    try:
        return serve(options_from_args(args))
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``serve`` alone (``python -m netpol_pdp.clients.cmd_serve``): the ``--workers`` children use it."""
    parser = argparse.ArgumentParser(prog="netpol-pdp serve", description=__doc__)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except CommandError as exc:
        from netpol_pdp.clients.render import printable

        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return exc.status
    except SourceError as exc:
        from netpol_pdp.clients.cli import report_source_error

        return report_source_error(exc)


if __name__ == "__main__":
    raise SystemExit(main())
