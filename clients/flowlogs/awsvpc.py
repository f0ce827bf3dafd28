"""AWS VPC Flow Logs: the version 2 default format, and custom formats by their header line.

Records are space-separated.  The default format's fields are, in order::

    version account-id interface-id srcaddr dstaddr srcport dstport protocol
    packets bytes start end action log-status

Logs delivered to S3 start with a header line naming the fields (in the
flow log's own order): that line selects the custom format.  Without a header,
a 14-field record starting with ``2`` is read in the default format.

- ``protocol`` is the IANA number (6 TCP, 17 UDP, 132 SCTP); other protocols are
  counted and skipped as non-L4 like the other real-log readers;
- ``action`` ACCEPT/REJECT is what the security groups and network ACLs did:
  the observed verdict; ``flow-direction`` (custom formats) is where;
- ``log-status`` NODATA/SKIPDATA records carry no flow: counted and skipped,
  as are records with ``-`` (not applicable) in an address, port or protocol;
- a record whose ``tcp-flags`` (custom formats) include SYN-ACK (18: the service
  only reports FIN, SYN, RST and SYN-ACK, so the ACK bit appears only there) is
  the reply half of a connection: counted and skipped like Hubble replies.  The
  default format has no flags, so both halves of a connection are judged;
- ``pkt-srcaddr``/``pkt-dstaddr``, when the custom format has them and they are
  set, are the packet's original addresses and preferred over ``srcaddr``/
  ``dstaddr`` (those are the interface's view, rewritten through NAT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from netpol_pdp.clients.flowlogs.base import build_flow, epoch_to_iso, is_port_protocol
from netpol_pdp.clients.flowlogs.errors import LineError, clip
from netpol_pdp.clients.flowlogs.record import Direction, FlowRecord, Skip
from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.flows import ascii_int

DEFAULT_FIELDS = (
    *("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport"),
    *("protocol", "packets", "bytes", "start", "end", "action", "log-status"),
)
REQUIRED = ("srcaddr", "dstaddr", "dstport", "protocol")
ACTIONS = {"ACCEPT": Verdict.ALLOW, "REJECT": Verdict.DENY}
#: The ACK bit: in VPC tcp-flags it is only ever reported as part of SYN-ACK (18).
SYN_ACK_BIT = 16
SKIP_STATUS = {"NODATA": "nodata", "SKIPDATA": "skipdata"}


def is_header(tokens: Sequence[str]) -> bool:
    return "srcaddr" in tokens and "dstaddr" in tokens


class AwsVpcReader:
    name: ClassVar[str] = "aws-vpc"
    description: ClassVar[str] = "AWS VPC Flow Logs: v2 default format, or a custom format by header line"

    def __init__(self) -> None:
        self.fields: Sequence[str] | None = None

    @classmethod
    def sniff(cls, lines: Sequence[str]) -> bool:
        if not lines:
            return False
        tokens = lines[0].split()
        if is_header(tokens):
            return True
        return len(tokens) == len(DEFAULT_FIELDS) and tokens[0] == "2" and ascii_int(tokens[7]) is not None

    def parse(self, line: int, text: str) -> FlowRecord | Skip:
        tokens = text.split()
        if is_header(tokens):
            if self.fields is not None and tokens != list(self.fields):
                raise LineError("header", "differs from the first header line of this log")
            missing = [name for name in REQUIRED if name not in tokens]
            if missing:
                raise LineError("header", f"must name the fields {', '.join(missing)}")
            self.fields = tokens
            return Skip("header")
        if self.fields is None:
            self.fields = DEFAULT_FIELDS
        if len(tokens) != len(self.fields):
            raise LineError("line", f"has {len(tokens)} fields, the format has {len(self.fields)}")
        row = dict(zip(self.fields, tokens, strict=True))
        status = row.get("log-status")
        if status in SKIP_STATUS:
            return Skip(SKIP_STATUS[status])
        src = row["srcaddr"] if row.get("pkt-srcaddr", "-") == "-" else row["pkt-srcaddr"]
        dst = row["dstaddr"] if row.get("pkt-dstaddr", "-") == "-" else row["pkt-dstaddr"]
        if "-" in (src, dst, row["protocol"], row["dstport"]):
            return Skip("missing-fields")
        protocol = ascii_int(row["protocol"])
        if protocol is None:
            raise LineError("protocol", f"must be an IANA protocol number (got {clip(row['protocol'])!r})")
        names = {"src_ip": "srcaddr", "dst_ip": "dstaddr", "protocol": "protocol", "dst_port": "dstport"}
        flow = build_flow(src, dst, protocol, row["dstport"], names)
        if not is_port_protocol(flow):
            return Skip("non-l4")
        flags = row.get("tcp-flags", "-")
        if flags != "-":
            flag_bits = ascii_int(flags)
            if flag_bits is None:
                raise LineError("tcp-flags", f"must be a number (got {clip(flags)!r})")
            if flag_bits & SYN_ACK_BIT:
                return Skip("reply")

        action = row.get("action", "-")
        if action != "-" and action not in ACTIONS:
            raise LineError("action", f"must be ACCEPT or REJECT (got {action!r})")
        direction_text = row.get("flow-direction", "-")
        if direction_text not in ("-", "ingress", "egress"):
            raise LineError("flow-direction", f"must be ingress or egress (got {direction_text!r})")
        start = row.get("start", "-")
        seconds = None if start == "-" else ascii_int(start)
        if start != "-" and seconds is None:
            raise LineError("start", f"must be seconds since the epoch (got {clip(start)!r})")
        return FlowRecord(
            line=line,
            flow=flow,
            fields={k: v for k, v in row.items() if v != "-"},
            observed=ACTIONS.get(action),
            direction=None if direction_text == "-" else Direction(direction_text),
            time=None if seconds is None else epoch_to_iso(seconds),
        )
