"""Google Cloud VPC Flow Logs, as Cloud Logging exports them: one LogEntry JSON a line.

The record is the entry's ``jsonPayload``; the flow is its ``connection``
(``IpConnection``: ``src_ip``, ``dest_ip``, ``src_port``, ``dest_port``, and
``protocol`` as the IANA number).  ``reporter`` (SRC or DEST) is the side that
reported, kept as the observation point; ``src_gke_details.pod`` /
``dest_gke_details.pod`` (``pod_name``, ``pod_namespace``) are kept.  VPC Flow
Logs carry no verdict; VPC firewall-rules logs (same ``connection``) carry
``disposition`` ALLOWED/DENIED, read as the observed verdict.  A bare
``jsonPayload`` object (no LogEntry around it) is read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from netpol_pdp.clients.flowlogs.base import (
    build_flow,
    dig,
    first_json_objects,
    is_port_protocol,
    json_object,
)
from netpol_pdp.clients.flowlogs.errors import LineError, clip
from netpol_pdp.clients.flowlogs.record import Direction, FlowRecord, Skip
from netpol_pdp.index.decision import Verdict

DISPOSITIONS = {"ALLOWED": Verdict.ALLOW, "DENIED": Verdict.DENY}
REPORTERS = {"SRC": Direction.EGRESS, "DEST": Direction.INGRESS}


def gke_pod(details: object) -> str | None:
    pod = dig(details, "pod") if isinstance(details, dict) else None
    if not isinstance(pod, dict) or not pod.get("pod_name"):
        return None
    namespace = pod.get("pod_namespace")
    return f"{namespace}/{pod['pod_name']}" if namespace else str(pod["pod_name"])


class GcpVpcReader:
    name: ClassVar[str] = "gcp-vpc"
    description: ClassVar[str] = "GCP VPC Flow Logs, Cloud Logging JSON export (jsonPayload.connection)"

    @classmethod
    def sniff(cls, lines: Sequence[str]) -> bool:
        objects = first_json_objects(lines)
        if not objects:
            return False
        first = objects[0]
        return isinstance(first.get("jsonPayload"), dict) or isinstance(first.get("connection"), dict)

    def parse(self, line: int, text: str) -> FlowRecord | Skip:
        entry = json_object(text)
        if "jsonPayload" in entry:
            payload, prefix = entry["jsonPayload"], "jsonPayload."
            if not isinstance(payload, dict):
                raise LineError("jsonPayload", "must be an object")
        else:
            payload, prefix = entry, ""
        conn = payload.get("connection")
        if not isinstance(conn, dict):
            raise LineError(f"{prefix}connection", "is required (an IpConnection object)")
        c = f"{prefix}connection."
        names = {
            "src_ip": c + "src_ip",
            "dst_ip": c + "dest_ip",
            "protocol": c + "protocol",
            "dst_port": c + "dest_port",
        }
        if conn.get("protocol") is None:
            raise LineError(c + "protocol", "is required")
        flow = build_flow(
            conn.get("src_ip"), conn.get("dest_ip"), conn.get("protocol"), conn.get("dest_port"), names
        )
        if not is_port_protocol(flow):
            return Skip("non-l4")
        disposition = payload.get("disposition")
        if disposition is not None and (type(disposition) is not str or disposition not in DISPOSITIONS):
            got = clip(repr(disposition))
            raise LineError(f"{prefix}disposition", f"must be ALLOWED or DENIED (got {got})")
        reporter = payload.get("reporter")
        time = payload.get("start_time") or entry.get("timestamp")
        fields: dict[str, Any] = {
            "reporter": reporter,
            "start_time": payload.get("start_time"),
            "end_time": payload.get("end_time"),
            "src_port": conn.get("src_port"),
            "bytes_sent": payload.get("bytes_sent"),
            "packets_sent": payload.get("packets_sent"),
            "disposition": disposition,
            "src_pod": gke_pod(payload.get("src_gke_details")),
            "dest_pod": gke_pod(payload.get("dest_gke_details")),
        }
        return FlowRecord(
            line=line,
            flow=flow,
            fields={k: v for k, v in fields.items() if v is not None},
            observed=DISPOSITIONS.get(disposition) if disposition else None,
            direction=REPORTERS.get(reporter) if isinstance(reporter, str) else None,
            time=str(time) if time else None,
        )
