"""Cilium Hubble flows: ``hubble observe -o json`` and the Hubble exporter's files.

Both print one JSON object a line.  Current Hubble wraps each flow as the
observer's ``GetFlowsResponse`` (``{"flow": {...}, "node_name": ..., "time": ...}``,
which is also what the exporter writes); older CLIs print the bare ``Flow``.
Field names are the protobuf JSON names of ``flow/flow.proto``:

- addresses ``IP.source`` / ``IP.destination``;
- ``l4`` holds one of ``TCP``/``UDP``/``SCTP`` (``destination_port``) or
  ``ICMPv4``/``ICMPv6``; no ``l4`` at all for some L7 (DNS) records;
- ``verdict`` FORWARDED, DROPPED, AUDIT, REDIRECTED, ...; ``drop_reason_desc``
  (``POLICY_DENIED``; ``POLICY_DENY`` for Cilium deny policies);
- ``traffic_direction`` INGRESS/EGRESS: where the verdict was taken;
- ``is_reply`` (true for the reply half of a connection; older: ``reply``);
- ``source``/``destination``: ``namespace``, ``pod_name``, ``labels``.

Replies and non-L4 flows are counted and skipped: a reply is judged with its
request, and port policy says nothing about ICMP as Cilium reports it.  Only a
FORWARDED or a policy drop is an *observed* policy verdict; a drop for another
reason (conntrack full, no route, ...) is kept in the output but compared with
nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from json.encoder import encode_basestring_ascii  # what json.dumps uses for a string
from typing import Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from netpol_pdp.clients.flowlogs.base import RawLine, build_flow, dig, first_json_objects, json_object
from netpol_pdp.clients.flowlogs.errors import LineError
from netpol_pdp.clients.flowlogs.record import Direction, FlowRecord, Skip
from netpol_pdp.index.decision import Verdict

POLICY_DROP_REASONS = frozenset({"POLICY_DENIED", "POLICY_DENY"})
PORT_L4 = ("TCP", "UDP", "SCTP")
#: Hubble's traffic_direction -> ours (an enum call per line is measurable at a million lines).
DIRECTIONS = {"INGRESS": Direction.INGRESS, "EGRESS": Direction.EGRESS}
#: The log's own names of the flow fields, per (prefix, L4 protocol): built once, not per line.
_FIELD_NAMES = {
    (prefix, proto): {
        "src_ip": f"{prefix}IP.source",
        "dst_ip": f"{prefix}IP.destination",
        "dst_port": f"{prefix}l4.{proto}.destination_port",
    }
    for prefix in ("flow.", "")
    for proto in PORT_L4
}
#: Keys of a Hubble observer response that carry something other than a flow.
NON_FLOW_EVENTS = frozenset({"node_status", "lost_events", "agent_event", "debug_event"})


# --- the quick read: only the fields the reader looks at, typed strictly (see HubbleReader.quick) ----
# Frozen, so that a flow is its own key (hashed in C); a value of another type fails the
# decoding, and the line is parsed the plain way.


class _Endpoint(msgspec.Struct, frozen=True, gc=False):
    namespace: str | None = None
    pod_name: str | None = None


class _Port(msgspec.Struct, frozen=True, gc=False):
    destination_port: int | None = None


class _L4(msgspec.Struct, frozen=True, gc=False):
    # absent and null differ here (``"TCP" in l4`` is what the reader asks)
    TCP: _Port | UnsetType | None = UNSET
    UDP: _Port | UnsetType | None = UNSET
    SCTP: _Port | UnsetType | None = UNSET


class _IP(msgspec.Struct, frozen=True, gc=False):
    source: str | None = None
    destination: str | None = None


class _Flow(msgspec.Struct, frozen=True, gc=False):
    """Every field of a flow the reader reads but its time."""

    IP: _IP | UnsetType = UNSET
    l4: _L4 | UnsetType = UNSET
    verdict: str | None = None
    drop_reason_desc: str | None = None
    traffic_direction: str | None = None
    is_reply: bool | None = None
    reply: bool | None = None
    source: _Endpoint | UnsetType = UNSET
    destination: _Endpoint | UnsetType = UNSET
    node_name: str | None = None


class _Response(msgspec.Struct, gc=False):
    flow: _Flow | UnsetType = UNSET
    node_name: str | None = None
    time: str | None = None


_QUICK = msgspec.json.Decoder(_Response).decode
_REPLY = Skip("reply")
_NON_L4 = Skip("non-l4")


def looks_like_flow(obj: Mapping[str, Any]) -> bool:
    return "IP" in obj or "l4" in obj or ("verdict" in obj and ("source" in obj or "Type" in obj))


def endpoint_name(endpoint: object) -> str | None:
    if not isinstance(endpoint, dict):
        return None
    namespace, pod = endpoint.get("namespace"), endpoint.get("pod_name")
    if namespace and pod:
        return f"{namespace}/{pod}"
    return pod or None


class HubbleReader:
    name: ClassVar[str] = "hubble"
    description: ClassVar[str] = "Cilium Hubble flows: `hubble observe -o json`, Hubble exporter files"

    @classmethod
    def sniff(cls, lines: Sequence[str]) -> bool:
        objects = first_json_objects(lines)
        if not objects or "src_ip" in objects[0]:
            return False
        first = objects[0]
        return (
            isinstance(first.get("flow"), dict)
            or looks_like_flow(first)
            or bool(NON_FLOW_EVENTS & first.keys())
        )

    def parse(self, line: int, text: str) -> FlowRecord | Skip:
        obj = json_object(text, "flow")
        if "flow" in obj:
            flow = obj["flow"]
            prefix = "flow."
            if not isinstance(flow, dict):
                raise LineError("flow", f"must be an object (got {type(flow).__name__})")
        elif looks_like_flow(obj):
            flow, prefix = obj, ""
        else:
            return Skip("not-a-flow")
        if flow.get("is_reply") is True or flow.get("reply") is True:
            return Skip("reply")
        l4 = flow.get("l4")
        if not isinstance(l4, dict):
            return Skip("non-l4")
        for proto in PORT_L4:
            if proto in l4:
                break
        else:
            return Skip("non-l4")
        ip = flow.get("IP")
        if not isinstance(ip, dict):
            raise LineError(f"{prefix}IP", "is required for an L4 flow")
        port = dig(l4, proto, "destination_port")
        names = _FIELD_NAMES[prefix, proto]
        parsed = build_flow(ip.get("source"), ip.get("destination"), proto, port, names)

        verdict = flow.get("verdict")
        drop_reason = flow.get("drop_reason_desc")
        observed: Verdict | None = None
        if verdict == "FORWARDED":
            observed = Verdict.ALLOW
        elif verdict == "DROPPED" and type(drop_reason) is str and drop_reason in POLICY_DROP_REASONS:
            observed = Verdict.DENY
        direction_text = flow.get("traffic_direction")
        direction = DIRECTIONS.get(direction_text) if type(direction_text) is str else None
        time = obj.get("time") or flow.get("time")

        fields: dict[str, Any] = {"time": time, "node_name": obj.get("node_name") or flow.get("node_name")}
        fields["observed_verdict"] = verdict
        if drop_reason:
            fields["drop_reason_desc"] = drop_reason
        if direction_text:
            fields["traffic_direction"] = direction_text
        for side in ("source", "destination"):
            name = endpoint_name(flow.get(side))
            if name:
                fields[f"{side}_pod"] = name
        return FlowRecord(
            line=line,
            flow=parsed,
            fields={k: v for k, v in fields.items() if v is not None},
            observed=observed,
            direction=direction,
            time=str(time) if time else None,
        )

    def quick(self, raw: RawLine, number: int) -> Skip | tuple[Hashable, str] | None:
        """An observer response read for only the fields the reader looks at (msgspec, typed strictly).

        The key is the flow without its time (and the response's node name):
        everything the record is made of but the time, which is the output
        line's head.  Anything else (a bare flow, an event, a time only inside
        the flow, a value of another type, a line msgspec refuses) is parsed.
        """
        try:
            response = _QUICK(raw)
        except (msgspec.DecodeError, RecursionError, ValueError):
            return None
        flow, time = response.flow, response.time
        if flow is UNSET:
            return None
        if flow.is_reply is True or flow.reply is True:
            return _REPLY
        l4 = flow.l4
        if l4 is UNSET or (l4.TCP is UNSET and l4.UDP is UNSET and l4.SCTP is UNSET):
            return _NON_L4
        if not time or flow.IP is UNSET:
            return None
        return (flow, response.node_name), '{"time": ' + encode_basestring_ascii(time)
