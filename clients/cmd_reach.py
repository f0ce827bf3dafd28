"""``netpol-pdp reach``: who can reach a pod, and what can it reach (docs/queries.md "Who can reach").

Offline from ``--source`` (default: the example cluster) or from a server with
``--server``; the answer is the same either way.  Exit status 0 when answered,
2 for bad input (an unknown pod, a bad selector or port).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netpol_pdp.clients._options import add_client_options, connect_if_asked
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.queryout import reach_json, reach_text
from netpol_pdp.clients.render import printable
from netpol_pdp.clients.sources import add_source_argument, load_index, warn_if_empty
from netpol_pdp.index.reach import ReachAnswer, ReachError, query


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "reach",
        help="who can reach a pod, and what it can reach",
        description="The peers allowed in (ingress) and out (egress) of a pod or of the pods a selector "
        "picks: pods grouped by namespace and labels with counts, node addresses, IP ranges outside "
        "the cluster as merged CIDRs, each with its ports and the rules that allow it. Pod peers are "
        "judged on both sides (the other pod's policies too); nodes and IP ranges on the pod's side. "
        "Exit status: 0 answered, 2 bad input.",
    )
    add_source_argument(parser)
    parser.add_argument("pod", nargs="?", metavar="NAMESPACE/POD", help="the pod to ask about")
    add_pod_set_options(
        parser, "ask about the pods of this namespace (instead of one pod)", "with --namespace: only pods"
    )
    parser.add_argument(
        "--direction",
        choices=["ingress", "egress", "both"],
        default="both",
        help="ingress: who can reach the pod; egress: what it can reach",
    )
    parser.add_argument(
        "--protocol", "-p", help="only this protocol (TCP, UDP, SCTP, ICMP...; default TCP with --port)"
    )
    parser.add_argument("--port", type=int, metavar="N", help="only this destination port")
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    add_client_options(parser, server_default=None)
    parser.set_defaults(run=run)


def add_pod_set_options(parser: argparse.ArgumentParser, namespace_help: str, selector_lead: str) -> None:
    """``--namespace`` and ``--selector`` (kubectl ``-l`` syntax), as ``reach`` and ``matrix`` take them."""
    parser.add_argument("--namespace", "-n", metavar="NS", help=namespace_help)
    parser.add_argument(
        "--selector",
        "-l",
        default="",
        metavar="SELECTOR",
        help=f"{selector_lead} matching this label selector, as kubectl -l takes it "
        "(app=web,tier!=db,env in (a,b),!canary)",
    )


def run(args: argparse.Namespace) -> int:
    if not args.pod and not args.namespace:
        raise CommandError("reach: name a pod (NAMESPACE/POD) or --namespace (with --selector)")
    if args.pod and args.namespace:
        raise CommandError("reach: a pod and --namespace exclude each other")
    if args.selector and not args.namespace:
        raise CommandError("--selector: needs --namespace")
    direction = "" if args.direction == "both" else args.direction
    client = connect_if_asked(args)
    answers: list[ReachAnswer]
    if client is not None:
        from netpol_pdp.clients._channel import ClientError

        with client:
            try:
                answers = client.reach(
                    args.pod,
                    namespace=args.namespace,
                    selector=args.selector,
                    direction=direction,
                    protocol=args.protocol,
                    port=args.port,
                )
            except ClientError as exc:
                raise CommandError(f"--server {client.target}: {exc}") from None
    else:
        index, result = load_index(args)
        warn_if_empty(result, args)
        try:
            answers = query(
                index.snapshot(), direction, args.pod, args.namespace, args.selector, args.protocol, args.port
            )
        except ReachError as exc:
            raise CommandError(_option(str(exc))) from None
    sys.stdout.write(printable(reach_json(answers) if args.json else reach_text(answers)))
    return 0


def _option(message: str) -> str:
    """A query error in the command line's words (``--selector: ...`` for ``selector: ...``)."""
    for field in ("selector", "protocol", "port", "direction"):
        if message.startswith(f"{field}: "):
            return f"--{message}"
    return message
