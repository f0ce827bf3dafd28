"""Human-readable text for flows, decisions and explanations (shared by the commands).

Machines get ``Decision.to_dict()``; people get these lines.  Kept free of I/O so
that every command (decide, audit summaries, serve logs, a future ``explain``)
renders the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from netpol_pdp.index.decision import Decision, DirectionTrace, Endpoint, EndpointKind, ServiceTrace
from netpol_pdp.index.ends import FlowByName
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import PORT_PROTOCOLS


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 flow``, ``2 flows``, ``1,000 policies``: a count and its noun, agreeing."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape): the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` safe for any terminal and any output encoding, newlines kept: every character
    that is not printable -- controls (ESC starts a terminal command), lone surrogates (which
    no encoder accepts), separators, unassigned code points -- escaped as ``\\x1b``, ``\\u2028``;
    an undecodable byte of a file name as ``\\xff``.  Every message the command line prints
    goes through it."""
    if text.isprintable():
        return text
    return "\n".join(
        line if line.isprintable() else "".join(c if c.isprintable() else _escaped(c) for c in line)
        for line in text.split("\n")
    )


def address(ip: str, port: int | None = None) -> str:
    """``10.0.0.1:80``, ``[fd00::1]:80``, or the bare address when there is no port; a headless
    Service's name stands for its address (``svc/data/pg:5432``, docs/services.md)."""
    if port is None:
        return ip
    if ":" in ip:  # IPv6 text; an IPv4 address or a Service name has none
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


def flow_text(flow: Flow | FlowByName) -> str:
    """``TCP 10.0.0.1 -> 10.0.0.2:80`` (no port for ICMP and other port-less protocols);
    a flow by name as asked: ``TCP shop/frontend-0 -> shop/web-1:http``."""
    if isinstance(flow, FlowByName):
        port_text = flow.dst_port_name or (str(flow.dst_port) if flow.protocol in PORT_PROTOCOLS else "")
        return f"{flow.protocol} {flow.src} -> {flow.dst}{':' + port_text if port_text else ''}"
    port = flow.dst_port if flow.protocol in PORT_PROTOCOLS else None
    return f"{flow.protocol} {flow.src_ip} -> {address(flow.dst_ip, port)}"


def endpoint_text(endpoint: Endpoint, ip: str | None = None) -> str:
    """``pod shop/web (10.0.0.1)``, ``node node-a (192.168.1.1; host network of ns/p)``, ``external``."""
    details = [ip] if ip else []
    if endpoint.kind is EndpointKind.NODE and endpoint.host_network_pods:
        details.append("host network of " + ", ".join(endpoint.host_network_pods))
    return f"{endpoint} ({'; '.join(details)})" if details else str(endpoint)


def endpoint_key(endpoint: Endpoint, ip: str) -> str:
    """How audit summaries group an end: by pod or node name; an external end by its address."""
    if endpoint.kind is EndpointKind.EXTERNAL:
        return f"external {ip}"
    return str(endpoint)


def direction_lines(trace: DirectionTrace) -> list[str]:
    """One direction's trace: isolated or not, by which policies, and the rules that allowed it.

    With cluster policy tiers: the Pass rules met on the way, then the rule that decided.
    """
    head = f"{trace.direction} of pod {trace.pod}:"
    passed = [f"  passed by {ref}" for ref in trace.passed]
    if trace.decided_by is not None:
        verdict = "allowed" if trace.allowed else "denied"
        decided = f"  {verdict} by {trace.decided_by}"
        return [
            f"{head} decided by the {trace.decided_by.tier} tier",
            *passed,
            decided,
            *near_miss_lines(trace),
        ]
    lines = _network_policy_lines(trace)
    return [lines[0], *passed, *lines[1:], *near_miss_lines(trace)]


def near_miss_lines(trace: DirectionTrace) -> list[str]:
    """Why not: the nearest rules that missed a denied direction, each failed condition on a line."""
    misses = trace.near_misses
    if not misses:
        if not trace.allowed and trace.isolated and trace.decided_by is None:
            return [f"  why not: the isolating policies have no {trace.direction} rule to come near"]
        return []
    missed = misses[0].missed
    shown = f"the nearest {len(misses)} of {missed}" if missed > len(misses) else f"{plural(missed, 'rule')}"
    lines = [f"  why not: {shown} that did not match (fewest failed conditions first)"]
    for miss in misses:
        lines.append(f"    {miss}:")
        lines.extend(f"      {m.field}: {m.message} (want {m.want}, got {m.got})" for m in miss.mismatches)
    return lines


def _network_policy_lines(trace: DirectionTrace) -> list[str]:
    head = f"{trace.direction} of pod {trace.pod}:"
    if not trace.isolated:
        return [f"{head} not isolated (no {trace.direction} policy selects it): allowed"]
    lines = [f"{head} isolated by {', '.join(trace.isolating)}"]
    if trace.allowed:
        lines.extend(f"  allowed by {ref}" for ref in trace.allowed_by)
    else:
        lines.append("  no rule of these policies matches: denied")
    return lines


def service_lines(trace: ServiceTrace) -> list[str]:
    """The translation of a Service flow: the Service, its port mapping, each endpoint's verdict."""
    named = f" ({trace.port_name})" if trace.port_name else ""
    target = f" -> targetPort {trace.target_port}" if trace.target_port else ""
    where = f"{trace.address_kind.value} {address(trace.address, trace.port)}/{trace.protocol}"
    # a headless Service has no traffic policy: no kube-proxy translates it (docs/services.md)
    policy = f"; traffic policy {trace.traffic_policy}" if trace.traffic_policy else ""
    lines = [f"Service {trace.service} {where}{named}{target}{policy}"]
    if not trace.endpoints:
        lines.append("  no endpoint to translate to")
    for e in trace.endpoints:
        where = f" on node {e.node}" if e.node else ""
        state = " (serving, terminating)" if e.terminating else ""
        lines.append(
            f"  {e.decision.verdict.value}  {address(e.ip, e.port)} {e.decision.dst}{where}{state}: "
            f"{e.decision.reason.value}"
        )
    return lines


def explanation_lines(decision: Decision) -> list[str]:
    """The per-direction trace, egress of the source first (the order the packet meets them);
    for a Service flow, each endpoint's."""
    if decision.service is not None:
        out: list[str] = []
        for e in decision.service.endpoints:
            out.append(f"endpoint {address(e.ip, e.port)}:")
            out.extend(f"  {line}" for line in explanation_lines(e.decision))
        return out or [f"no endpoint was evaluated: {decision.reason.value}"]
    traces = [t for t in (decision.egress, decision.ingress) if t is not None]
    if not traces:
        return [f"no policy was evaluated: the {decision.reason.value} exemption applies"]
    lines: list[str] = []
    for trace in traces:
        lines.extend(direction_lines(trace))
    return lines


def decision_lines(decision: Decision, flow: Flow | FlowByName, *, explain: bool = False) -> list[str]:
    """The full human answer for one flow (by name: as asked, the server resolved the addresses)."""
    src_ip = flow.src_ip if isinstance(flow, Flow) else None
    dst_ip = flow.dst_ip if isinstance(flow, Flow) else None
    lines = [
        f"{decision.verdict.value}  {flow_text(flow)}",
        f"  reason:      {decision.reason.value}",
        f"  source:      {endpoint_text(decision.src, src_ip)}",
        f"  destination: {endpoint_text(decision.dst, dst_ip)}",
        f"  generation:  {decision.generation}",
    ]
    if decision.service is not None:
        trace = service_lines(decision.service)
        lines.append(f"  service:     {trace[0]}")
        lines.extend(f"    {line.strip()}" for line in trace[1:])
    lines.extend(f"  note:        {note}" for note in decision.notes)
    if explain:
        lines.append("  explanation:")
        lines.extend(f"    {line}" for line in explanation_lines(decision))
    return lines


def table(rows: Iterable[tuple[str, ...]], indent: str = "  ") -> list[str]:
    """Left-aligned columns, the last one free-running; for summaries."""
    rows = list(rows)
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [indent + "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]) for r in rows]
