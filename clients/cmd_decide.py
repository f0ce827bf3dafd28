"""``netpol-pdp decide``: one flow, one answer, readable by a person (``--json`` for machines).

The exit status follows ``kubectl auth can-i``: 0 when the flow is allowed, 1
when it is denied, so shell scripts can branch on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from netpol_pdp.clients._options import add_client_options, connect_if_asked, remote_decide
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.render import decision_lines, printable
from netpol_pdp.clients.sources import (
    add_service_partial_argument,
    add_source_argument,
    load_index,
    warn_if_empty,
)
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.index.model import PORT_PROTOCOLS

#: Flow field -> the option that sets it, to name the option in errors.
_OPTION = {"src_ip": "--src", "dst_ip": "--dst", "protocol": "--protocol", "dst_port": "--port"}

#: A number as a person types it on a command line (ASCII digits, maybe signed).
_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")


def _number(text: str | None) -> int | str | None:
    """``--port``/``--protocol`` text: an ``int`` when it is a number (so that ``-1`` gets the
    range error, not "must be an integer"), else as given."""
    return int(text) if text is not None and _NUMBER.fullmatch(text.strip()) else text


def flow_from_args(args: argparse.Namespace) -> Flow:
    """The flow of ``--src --dst --protocol --port``; a :class:`CommandError` names the bad option."""
    protocol, port = _number(args.protocol), _number(args.port)
    if isinstance(protocol, int) and not 0 <= protocol <= 255:
        raise CommandError(f"--protocol: an IANA protocol number is between 0 and 255 (got {protocol})")
    try:
        flow = make_flow(args.src, args.dst, protocol, port)
    except FlowError as err:
        if err.field == "dst_port" and port is None:
            raise CommandError("--port: is required for TCP, UDP and SCTP") from None
        raise CommandError(f"{_OPTION.get(err.field, err.field)}: {err.message}") from None
    if port is not None and flow.protocol not in PORT_PROTOCOLS:
        raise CommandError(
            f"--port: {flow.protocol} has no ports; only TCP, UDP and SCTP flows have a destination port "
            "(leave --port out)"
        )
    return flow


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
        "--protocol",
        "-p",
        default="TCP",
        help="TCP (default), UDP, SCTP, ICMP, ICMPv6, GRE, ESP, AH, IGMP (any case) or an IANA number 0..255",
    )
    parser.add_argument(
        "--port",
        metavar="N",
        help="destination port, 1..65535: required for TCP, UDP and SCTP, refused for others",
    )
    parser.add_argument(
        "--explain", "-e", action="store_true", help="show, per direction, the isolating policies and rules"
    )
    parser.add_argument("--json", action="store_true", help="print the decision as one JSON object")
    add_service_partial_argument(parser)
    add_client_options(parser, server_default=None)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    flow = flow_from_args(args)
    client = connect_if_asked(args)
    if client is not None:
        with client:
            decision = remote_decide(client, flow, args.explain)
    else:
        index, result = load_index(args)
        warn_if_empty(result, args)
        decision = index.decide(flow, explain=args.explain)
    if args.json:
        out = {"flow": flow._asdict(), **decision.to_dict()}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write(printable("\n".join(decision_lines(decision, flow, explain=args.explain))) + "\n")
    return 0 if decision.allowed else 1
