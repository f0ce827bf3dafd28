"""Our JSON Lines: ``{"src_ip", "dst_ip", "protocol", "dst_port", ...}``, one flow a line.

Every field of the line is kept in the output.  Optional ``observed``
(``allow``/``deny``) and ``direction`` (``ingress``/``egress``) let a log of any
origin, converted to this shape, be compared with policy; ``time`` (or
``timestamp``, ``ts``) feeds first/last seen.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from netpol_pdp.clients.flowlogs.base import RawLine, build_flow, first_json_objects, json_object, quick_json
from netpol_pdp.clients.flowlogs.errors import LineError
from netpol_pdp.clients.flowlogs.record import DECISION_FIELDS, Direction, FlowRecord
from netpol_pdp.clients.flowlogs.source import decode_line
from netpol_pdp.index.decision import Verdict

IDENTITY = {"src_ip": "src_ip", "dst_ip": "dst_ip", "protocol": "protocol", "dst_port": "dst_port"}


def observed_verdict(value: object, field: str = "observed") -> Verdict | None:
    """``allow``/``deny`` (any case; also ACCEPT/REJECT, FORWARDED/DROPPED) or empty."""
    if value is None or value == "":
        return None
    text = str(value).strip().upper()
    if text in ("ALLOW", "ALLOWED", "ACCEPT", "FORWARDED"):
        return Verdict.ALLOW
    if text in ("DENY", "DENIED", "REJECT", "DROPPED"):
        return Verdict.DENY
    raise LineError(field, f"must be allow or deny (got {value!r})")


def observed_direction(value: object, field: str = "direction") -> Direction | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in ("ingress", "egress"):
        return Direction(text)
    raise LineError(field, f"must be ingress or egress (got {value!r})")


def record_from_mapping(line: int, row: dict[str, Any], text: str | None = None) -> FlowRecord:
    """Shared by JSON Lines and CSV: the same field names, the same meaning."""
    get = row.get
    src, dst = get("src_ip"), get("dst_ip")
    if src is None or src == "":
        raise LineError("src_ip", "is required")
    if dst is None or dst == "":
        raise LineError("dst_ip", "is required")
    protocol = get("protocol")
    port = get("dst_port")
    flow = build_flow(src, dst, None if protocol == "" else protocol, None if port == "" else port, IDENTITY)
    if len(row) == 4 and "protocol" in row and "dst_port" in row:
        # exactly the four flow fields: no time, observed or direction to read
        return FlowRecord(line, flow, row, None, None, None, text)
    time = get("time") or get("timestamp") or get("ts")
    observed = get("observed")
    direction = get("direction")
    return FlowRecord(
        line,
        flow,
        row,
        None if observed is None else observed_verdict(observed),
        None if direction is None else observed_direction(direction),
        str(time) if time else None,
        text,
    )


class JsonLinesReader:
    name: ClassVar[str] = "jsonl"
    description: ClassVar[str] = "JSON Lines with src_ip, dst_ip, protocol, dst_port (netpol-pdp's own)"

    @classmethod
    def sniff(cls, lines: Sequence[str]) -> bool:
        objects = first_json_objects(lines)
        return bool(objects) and "src_ip" in objects[0] and "dst_ip" in objects[0]

    def parse(self, line: int, text: str) -> FlowRecord:
        return record_from_mapping(line, json_object(text, "flow"), text.strip())

    def quick(self, raw: RawLine, number: int) -> tuple[Hashable, str] | None:
        """A line that keeps its own text in the output: keyed by its flow fields, its head is its text.

        Lines with ``observed`` or with a field the decision overrides are
        parsed (their output is not the text with the decision spliced in), and
        so are lines of only the flow fields: they repeat whole, and the line
        cache answers them without a key of their own.
        """
        colons = raw.count(b":") if isinstance(raw, bytes) else raw.count(":")
        if colons <= len(IDENTITY):
            return None  # at most four keys (each key has its colon): the line cache's, not decoded here
        text = decode_line(raw, number) if type(raw) is bytes else raw
        if type(text) is not str:
            return None  # not UTF-8: parsed, to report it
        text = text.strip()
        row = quick_json(text)
        if row is None or len(row) <= len(IDENTITY):
            return None  # (only the flow's fields: they repeat whole, for the line cache)
        if "observed" in row or not DECISION_FIELDS.isdisjoint(row):
            return None
        get = row.get
        src, dst, protocol, port, direction = (
            get("src_ip"),
            get("dst_ip"),
            get("protocol"),
            get("dst_port"),
            get("direction"),
        )
        body = text[:-1].rstrip()
        key = (
            src,
            dst,
            protocol,
            port,
            direction,
            type(src),
            type(dst),
            type(protocol),
            type(port),
            type(direction),
        )
        return key, body + ", "
