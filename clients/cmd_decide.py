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
from netpol_pdp.index.ends import FlowByName, flow_by_name, resolve_asked
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.index.generation import Generation
from netpol_pdp.index.model import PORT_PROTOCOLS

#: Flow field -> the option that sets it, to name the option in errors.
_OPTION = {"src_ip": "--src", "dst_ip": "--dst", "protocol": "--protocol", "dst_port": "--port"}

#: A number as a person types it on a command line (ASCII digits, maybe signed).
_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")


def _number(text: str | None) -> int | str | None:
    """``--port``/``--protocol`` text: an ``int`` when it is a number (so that ``-1`` gets the
    range error, not "must be an integer"), else as given."""
    return int(text) if text is not None and _NUMBER.fullmatch(text.strip()) else text


def _ends(args: argparse.Namespace) -> tuple[str, str, str, str]:
    """(source text, destination text, and the options they came from)."""
    src, src_opt = (args.src, "--src") if args.src is not None else (args.from_, "--from")
    dst, dst_opt = (args.dst, "--dst") if args.dst is not None else (args.to, "--to")
    return src, dst, src_opt, dst_opt


def by_name(args: argparse.Namespace) -> bool:
    """Whether the flow is asked by ``--from``/``--to`` (a name or an IP; ``--port`` may then be
    a port name); ``--src``/``--dst`` take addresses only, and name a bad one as before."""
    return args.from_ is not None or args.to is not None


def flow_from_args(args: argparse.Namespace) -> Flow:
    """The flow of ``--src --dst --protocol --port``; a :class:`CommandError` names the bad option."""
    protocol, port = _number(args.protocol), _number(args.port)
    if isinstance(protocol, int) and not 0 <= protocol <= 255:
        raise CommandError(f"--protocol: an IANA protocol number is between 0 and 255 (got {protocol})")
    src, dst, src_opt, dst_opt = _ends(args)
    options = {**_OPTION, "src_ip": src_opt, "dst_ip": dst_opt}
    try:
        flow = make_flow(src, dst, protocol, port)
    except FlowError as err:
        if err.field == "dst_port" and port is None:
            raise CommandError("--port: is required for TCP, UDP and SCTP") from None
        raise CommandError(f"{options.get(err.field, err.field)}: {err.message}") from None
    if port is not None and flow.protocol not in PORT_PROTOCOLS:
        raise CommandError(
            f"--port: {flow.protocol} has no ports; only TCP, UDP and SCTP flows have a destination port "
            "(leave --port out)"
        )
    return flow


def asked_from_args(args: argparse.Namespace) -> FlowByName:
    """The flow by name of ``--from --to --protocol --port`` (a number or a port name)."""
    protocol, port = _number(args.protocol), _number(args.port)
    if isinstance(protocol, int) and not 0 <= protocol <= 255:
        raise CommandError(f"--protocol: an IANA protocol number is between 0 and 255 (got {protocol})")
    src, dst, _, _ = _ends(args)
    try:
        if isinstance(port, str):
            return flow_by_name(src, dst, protocol, None, port.strip())
        return flow_by_name(src, dst, protocol, port)
    except FlowError as err:
        if err.field == "dst_port" and port is None:
            raise CommandError("--port: is required for TCP, UDP and SCTP") from None
        raise CommandError(f"{_OPTION.get(err.field, '--port')}: {err.message}") from None


def resolve_args(index: Index, args: argparse.Namespace, asked: FlowByName) -> tuple[Generation, Flow]:
    """The generation published now and the flow the names resolve to at it."""
    gen = index.snapshot()
    _, _, src_opt, dst_opt = _ends(args)
    try:
        resolved = resolve_asked(gen, asked, (src_opt, dst_opt, "--port"))
    except FlowError as err:
        raise CommandError(f"{err.field}: {err.message}") from None
    return gen, resolved.flow


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "decide",
        help="decide one flow and say why",
        description="Decide one flow against the manifests and say why. "
        "Exit status: 0 allowed, 1 denied, 2 bad input.",
    )
    add_source_argument(parser)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--src", metavar="IP", help="source address (IPv4 or IPv6)")
    src.add_argument(
        "--from",
        dest="from_",
        metavar="END",
        help="source by name: a pod NAMESPACE/NAME, a node node/NAME, or an IP",
    )
    dst = parser.add_mutually_exclusive_group(required=True)
    dst.add_argument("--dst", metavar="IP", help="destination address")
    dst.add_argument(
        "--to",
        metavar="END",
        help="destination by name: a pod NAMESPACE/NAME, a node node/NAME, "
        "a Service svc/NAMESPACE/NAME, or an IP",
    )
    parser.add_argument(
        "--protocol",
        "-p",
        default="TCP",
        help="TCP (default), UDP, SCTP, ICMP, ICMPv6, GRE, ESP, AH, IGMP (any case) or an IANA number 0..255",
    )
    parser.add_argument(
        "--port",
        metavar="N|NAME",
        help="destination port, 1..65535: required for TCP, UDP and SCTP, refused for others; "
        "or a container port name of the destination pod",
    )
    parser.add_argument(
        "--explain",
        "-e",
        action="store_true",
        help="show, per direction, the isolating policies and rules, and for a denied one the nearest "
        "rules that did not match and why",
    )
    parser.add_argument("--json", action="store_true", help="print the decision as one JSON object")
    add_service_partial_argument(parser)
    add_client_options(parser, server_default=None)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    asked: Flow | FlowByName = asked_from_args(args) if by_name(args) else flow_from_args(args)
    client = connect_if_asked(args)
    if client is not None:
        with client:
            decision = remote_decide(client, asked, args.explain)
        flow: Flow | None = asked if isinstance(asked, Flow) else None
    else:
        index, result = load_index(args)
        warn_if_empty(result, args)
        if isinstance(asked, FlowByName):
            gen, flow = resolve_args(index, args, asked)
        else:
            gen, flow = index.snapshot(), asked
        decision = index.explain(flow, gen) if args.explain else index.decide(flow, gen=gen)
    if args.json:
        out: dict[str, Any] = {"flow": flow._asdict()} if flow is not None else {}
        if isinstance(asked, FlowByName):
            out["asked"] = asked._asdict()
        out.update(decision.to_dict())
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        lines = decision_lines(decision, flow if flow is not None else asked, explain=args.explain)
        sys.stdout.write(printable("\n".join(lines)) + "\n")
    return 0 if decision.allowed else 1
