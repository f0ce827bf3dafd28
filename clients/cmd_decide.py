"""``netpol-pdp decide``: one flow, one answer, readable by a person (``--json`` for machines).

The exit status follows ``kubectl auth can-i``: 0 when the flow is allowed, 1
when it is denied, so shell scripts can branch on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.render import decision_lines
from netpol_pdp.clients.sources import add_source_argument, load_index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import make_flow

#: Flow field -> the option that sets it, to name the option in errors.
_OPTION = {"src_ip": "--src", "dst_ip": "--dst", "protocol": "--protocol", "dst_port": "--port"}


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "decide",
        help="decide one flow and say why",
        description="Decide one flow against the manifests and say why. "
        "Exit status: 0 allowed, 1 denied, 2 bad input.",
    )
    add_source_argument(parser)
    parser.add_argument("--src", required=True, metavar="IP", help="source address (IPv4 or IPv6)")
    parser.add_argument("--dst", required=True, metavar="IP", help="destination address")
    parser.add_argument(
        "--protocol", "-p", default="TCP", help="TCP (default), UDP, SCTP, ICMP, ICMPv6 or an IANA number"
    )
    parser.add_argument("--port", metavar="N", help="destination port (required for TCP, UDP and SCTP)")
    parser.add_argument(
        "--explain", "-e", action="store_true", help="show, per direction, the isolating policies and rules"
    )
    parser.add_argument("--json", action="store_true", help="print the decision as one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        flow = make_flow(args.src, args.dst, args.protocol, args.port)
    except FlowError as err:
        raise CommandError(f"{_OPTION.get(err.field, err.field)}: {err.message}") from None
    index, _result = load_index(args)
    decision = index.decide(flow, explain=args.explain)
    if args.json:
        out = {"flow": flow._asdict(), **decision.to_dict()}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(decision_lines(decision, flow, explain=args.explain)) + "\n")
    return 0 if decision.allowed else 1
