"""The aggregate of one audit: totals, reasons, top denied pairs, heat map, Services, disagreements.

Everything here is a counter keyed by plain tuples, so summaries built on
partitions of a log (worker processes, Dask) merge by addition and give the
same numbers as one pass.  Memory grows with the number of distinct pairs, not
with the length of the log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netpol_pdp.clients.auditing.agreement import Agreement
from netpol_pdp.clients.auditing.deciding import DedupStats
from netpol_pdp.clients.auditing.naming import endpoint_name, endpoint_namespace, port_text
from netpol_pdp.clients.flowlogs.record import FlowRecord, ReadStats
from netpol_pdp.clients.render import plural
from netpol_pdp.index.decision import Decision, Endpoint, EndpointKind, Reason, Verdict
from netpol_pdp.index.flows import Flow

#: (source, destination, "PROTO/port")
PairKey = tuple[str, str, str]
#: (agreement kind, source, destination, "PROTO/port")
DisagreementKey = tuple[str, str, str, str]
#: (Service "ns/name", "PROTO/port" as addressed)
ServiceKey = tuple[str, str]
#: a Service row's columns: allowed, denied, partially allowed, unreachable (no ready endpoint, no such port)
SERVICE_COLUMNS = ("allowed", "denied", "partially_allowed", "unreachable")
UNREACHABLE = frozenset({Reason.SERVICE_NO_READY_ENDPOINTS, Reason.SERVICE_PORT_NOT_FOUND})

TOP = 10
FOLD_AT = 50_000


@dataclass(slots=True)
class AuditSummary:
    """Counts of one audit (or one partition of it); :meth:`merge` adds another's."""

    total: int = 0
    allowed: int = 0
    denied: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    denied_pairs: Counter[PairKey] = field(default_factory=Counter)
    #: one flow per denied pair, to explain the top ones at the end
    denied_examples: dict[PairKey, Flow] = field(default_factory=dict)
    #: (source namespace, destination namespace) -> [allowed, denied, disagreeing]
    heat: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    #: flows addressed to a Service (decided through its endpoints), per Service and port:
    #: [allowed, denied, partially allowed, unreachable] (see SERVICE_COLUMNS)
    services: dict[ServiceKey, list[int]] = field(default_factory=dict)
    observed: int = 0
    agreement: Counter[str] = field(default_factory=Counter)
    disagreements: Counter[DisagreementKey] = field(default_factory=Counter)
    read: ReadStats = field(default_factory=ReadStats)
    dedup: DedupStats = field(default_factory=DedupStats)
    #: filled by :meth:`explain_top`: pair -> isolating policies of the denied direction(s)
    isolating: dict[PairKey, list[str]] = field(default_factory=dict)

    #: records not yet folded into the counters: (flow, agreement, id(decision)) -> count.
    #: Adding a record is one dict update; names and counters are worked out once per
    #: distinct key when folding (every FOLD_AT keys, and before any counter is read).
    _pending: dict[tuple[Flow, Agreement | None, int], int] = field(default_factory=dict, repr=False)
    _decisions: dict[int, Decision] = field(default_factory=dict, repr=False)

    def add(self, record: FlowRecord, decision: Decision, agreement: Agreement | None) -> None:
        key = (record.flow, agreement, id(decision))
        pending = self._pending
        count = pending.get(key)
        if count is not None:
            pending[key] = count + 1
            return
        pending[key] = 1
        self._decisions[id(decision)] = decision  # kept alive, so its id stays unique
        if len(pending) >= FOLD_AT:
            self.fold()

    def add_repeats(self, flow: Flow, decision: Decision, agreement: Agreement | None, count: int) -> None:
        """``count`` more records of a flow already added with this decision and agreement."""
        key = (flow, agreement, id(decision))
        pending = self._pending
        pending[key] = pending.get(key, 0) + count
        self._decisions[id(decision)] = decision
        if len(pending) >= FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Fold the pending records into the counters.

        An end's name and namespace are worked out once per fold (a generation
        holds one :class:`Endpoint` per address, and the pending decisions keep
        them alive, so they are keyed by identity); an external end is named by
        its address, so that name is made per key.
        """
        ends: dict[int, tuple[str | None, str]] = {}

        def end(endpoint: Endpoint) -> tuple[str | None, str]:
            known = ends.get(id(endpoint))
            if known is None:
                external = endpoint.kind is EndpointKind.EXTERNAL
                known = ends[id(endpoint)] = (
                    None if external else endpoint_name(endpoint, ""),
                    endpoint_namespace(endpoint),
                )
            return known

        decisions = self._decisions
        for (flow, agreement, decision_id), count in self._pending.items():
            decision = decisions[decision_id]
            src_name, src_ns = end(decision.src)
            dst_name, dst_ns = end(decision.dst)
            self._add_many(
                flow,
                decision,
                agreement,
                count,
                endpoint_name(decision.src, flow.src_ip) if src_name is None else src_name,
                endpoint_name(decision.dst, flow.dst_ip) if dst_name is None else dst_name,
                (src_ns, dst_ns),
            )
        self._pending.clear()
        decisions.clear()

    def _add_many(
        self,
        flow: Flow,
        decision: Decision,
        agreement: Agreement | None,
        count: int,
        src: str,
        dst: str,
        cell_key: tuple[str, str],
    ) -> None:
        self.total += count
        self.reasons[str(decision.reason)] += count  # (a StrEnum's str is its value, without enum's lookup)
        port = port_text(flow)
        cell = self.heat.get(cell_key)
        if cell is None:
            cell = self.heat[cell_key] = [0, 0, 0]
        if decision.verdict is Verdict.ALLOW:
            self.allowed += count
            cell[0] += count
        else:
            self.denied += count
            cell[1] += count
            pair = (src, dst, port)
            self.denied_pairs[pair] += count
            self.denied_examples.setdefault(pair, flow)
        if decision.service is not None:
            self._add_service(decision, port, count)
        if agreement is not None:
            self.observed += count
            self.agreement[agreement.value] += count
            if agreement is not Agreement.AGREES:
                cell[2] += count
                self.disagreements[(agreement.value, src, dst, port)] += count

    def _add_service(self, decision: Decision, port: str, count: int) -> None:
        assert decision.service is not None
        key = (decision.service.service, port)
        row = self.services.get(key)
        if row is None:
            row = self.services[key] = [0, 0, 0, 0]
        row[0 if decision.allowed else 1] += count
        if decision.reason is Reason.SERVICE_PARTIALLY_ALLOWED:
            row[2] += count
        elif decision.reason in UNREACHABLE:
            row[3] += count

    def merge(self, other: AuditSummary) -> None:
        self.fold()
        other.fold()
        self.total += other.total
        self.allowed += other.allowed
        self.denied += other.denied
        self.reasons.update(other.reasons)
        self.denied_pairs.update(other.denied_pairs)
        for pair, flow in other.denied_examples.items():
            self.denied_examples.setdefault(pair, flow)
        for key, counts in other.heat.items():
            mine = self.heat.setdefault(key, [0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] += n
        for key, counts in other.services.items():
            mine = self.services.setdefault(key, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                mine[i] += n
        self.observed += other.observed
        self.agreement.update(other.agreement)
        self.disagreements.update(other.disagreements)
        self.read.merge(other.read)
        self.dedup.merge(other.dedup)

    def top_denied(self, n: int = TOP) -> list[tuple[PairKey, int]]:
        """Most denied pairs first; ties in name order so output is stable."""
        self.fold()
        return sorted(self.denied_pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def grouped_disagreements(self) -> dict[str, list[tuple[str, str, str, int]]]:
        """kind -> [(source, destination, port, count)], most frequent first."""
        self.fold()
        out: dict[str, list[tuple[str, str, str, int]]] = {
            Agreement.DROPPED_BUT_ALLOWED.value: [],
            Agreement.FORWARDED_BUT_DENIED.value: [],
        }
        for (kind, src, dst, port), count in sorted(
            self.disagreements.items(), key=lambda kv: (-kv[1], kv[0])
        ):
            out[kind].append((src, dst, port, count))
        return out

    def explain_top(self, explain: Callable[[Flow], Decision], n: int = TOP) -> None:
        """Name the isolating policies of the denied direction(s) of the top denied pairs."""
        for pair, _count in self.top_denied(n):
            decision = explain(self.denied_examples[pair])
            # a flow to a Service: the traces are on the endpoints' own decisions
            decided = [e.decision for e in decision.service.endpoints] if decision.service else [decision]
            policies: list[str] = []
            for trace in (t for d in decided for t in (d.egress, d.ingress)):
                if trace is None or trace.allowed:
                    continue
                if trace.decided_by is not None:  # a cluster policy Deny: it is the one to name
                    if trace.decided_by.policy not in policies:
                        policies.append(trace.decided_by.policy)
                elif trace.isolated:
                    policies.extend(p for p in trace.isolating if p not in policies)
            self.isolating[pair] = policies

    def by_service(self) -> list[tuple[ServiceKey, list[int]]]:
        """Every (Service, port) flows were addressed to, most flows first, then by name."""
        self.fold()
        return sorted(self.services.items(), key=lambda kv: (-kv[1][0] - kv[1][1], kv[0]))

    def namespaces(self) -> list[str]:
        """Every namespace of the heat map, real namespaces first, sorted."""
        self.fold()
        names = {ns for pair in self.heat for ns in pair}
        return sorted(names, key=lambda ns: (ns.startswith("("), ns))

    def to_dict(self) -> dict[str, Any]:
        self.fold()
        return {
            "total": self.total,
            "allowed": self.allowed,
            "denied": self.denied,
            "reasons": dict(sorted(self.reasons.items())),
            "top_denied": [
                {
                    "src": src,
                    "dst": dst,
                    "port": port,
                    "count": count,
                    "isolating_policies": self.isolating.get((src, dst, port), []),
                }
                for (src, dst, port), count in self.top_denied()
            ],
            "heat_map": [
                {"src_namespace": s, "dst_namespace": d, "allowed": c[0], "denied": c[1], "disagreeing": c[2]}
                for (s, d), c in sorted(self.heat.items())
            ],
            "services": [
                {
                    "service": svc,
                    "port": port,
                    "flows": c[0] + c[1],
                    **dict(zip(SERVICE_COLUMNS, c, strict=True)),
                }
                for (svc, port), c in self.by_service()
            ],
            "observed": {
                "compared": self.observed,
                **{k: self.agreement.get(k, 0) for k in (a.value for a in Agreement)},
                "disagreements": {
                    kind: [{"src": s, "dst": d, "port": p, "count": c} for s, d, p, c in rows]
                    for kind, rows in self.grouped_disagreements().items()
                },
            },
            "read": self.read.to_dict(),
            "dedup": {"flows": self.dedup.flows, "decided": self.dedup.decided},
        }

    def detail_lines(self, top: int = TOP) -> list[str]:
        """What the stderr summary adds to the totals: reading, isolating policies, enforcement."""
        self.fold()
        read = self.read
        extra = [f"{n:,} {reason}" for reason, n in sorted(read.skipped.items())]
        if read.invalid:
            extra.append(f"{read.invalid:,} invalid")
        lines = [
            f"read {plural(read.lines, 'line')} ({read.format})"
            + (f"; skipped {', '.join(extra)}" if extra else "")
        ]
        if self.isolating:
            lines.append("top denied flows (source -> destination port: isolating policies):")
            for (src, dst, port), count in self.top_denied(top):
                policies = ", ".join(self.isolating.get((src, dst, port), [])) or "-"
                lines.append(f"  {count:>7,}  {src} -> {dst} {port}: {policies}")
        if self.services:
            lines.append(
                "flows to Services (Service port: allowed / denied, partially allowed, unreachable):"
            )
            for (svc, port), (allowed, denied, partial, gone) in self.by_service()[:top]:
                lines.append(f"  service {svc} {port}: {allowed:,} / {denied:,}, {partial:,}, {gone:,}")
        if self.observed:
            agreeing = self.agreement.get(Agreement.AGREES.value, 0)
            lines.append(f"observed vs policy: {self.observed:,} compared, {agreeing:,} agree")
            for kind, rows in self.grouped_disagreements().items():
                if rows:
                    lines.append(f"  {kind}: {sum(r[3] for r in rows):,}")
                    lines.extend(f"    {c:>7,}  {s} -> {d} {p}" for s, d, p, c in rows[:top])
        return lines
