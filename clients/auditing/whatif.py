"""What-if: judge the same flows against the current world and a changed one, in one pass.

The change adds or replaces objects from manifest files or folders (``--with``,
usually NetworkPolicies) and removes named NetworkPolicies (``--without
NS/NAME``).  Both worlds are built as independent :class:`Index` instances;
each distinct flow is decided by both.  Only flows whose verdict changes are
kept, grouped by (source namespace + labels, destination namespace + labels,
port, before, after), with counts, first and last seen, and the policies
responsible: the changed policies among those that allowed or isolated the
flow before or after.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netpol_pdp.clients.auditing.naming import PodLabels, port_text
from netpol_pdp.clients.flowlogs.record import FlowRecord
from netpol_pdp.clients.render import plural
from netpol_pdp.index.decision import Decision, DirectionTrace, Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import NetpolPdpError
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.model import CLUSTER_POLICY_KINDS, Kind, Object, ObjectKey


class WhatIfError(NetpolPdpError):
    """A change that cannot be applied (``--without`` of a policy that does not exist)."""


def policy_key(text: str) -> ObjectKey:
    """``ns/name``: a NetworkPolicy; a bare ``name``: a cluster-scoped policy (resolved by ``apply``)."""
    namespace, sep, name = text.partition("/")
    if not sep and namespace:
        return (Kind.CLUSTER_NETWORK_POLICY, "", namespace)
    if not sep or not namespace or not name or "/" in name:
        raise WhatIfError(
            f"--without {text!r}: must be NAMESPACE/NAME of a NetworkPolicy "
            "or NAME of a cluster-scoped policy"
        )
    return (Kind.NETWORK_POLICY, namespace, name)


def policy_name(key: ObjectKey) -> str:
    """``ns/name`` of a NetworkPolicy, ``Kind name`` of a cluster-scoped policy (as traces name them)."""
    return f"{key[1]}/{key[2]}" if key[1] else f"{key[0].value} {key[2]}"


def _resolve(key: ObjectKey, world: Mapping[ObjectKey, Object]) -> ObjectKey:
    """A bare cluster-scoped name: whichever of the three kinds holds it (in CLUSTER_POLICY_KINDS order)."""
    if key[1] or key[0] not in CLUSTER_POLICY_KINDS:
        return key
    for kind in CLUSTER_POLICY_KINDS:
        if (kind, "", key[2]) in world:
            return (kind, "", key[2])
    raise WhatIfError(
        f"--without {key[2]}: no such cluster-scoped policy in the source "
        "(must be NAMESPACE/NAME of a NetworkPolicy or NAME of a cluster-scoped policy)"
    )


@dataclass(frozen=True, slots=True)
class WorldChange:
    """What ``--with`` and ``--without`` change: objects added/replaced, policies removed."""

    upserts: Mapping[ObjectKey, Object]
    removals: tuple[ObjectKey, ...]

    @classmethod
    def load(cls, with_paths: Sequence[str], without: Sequence[str]) -> WorldChange:
        """Read the ``--with`` manifests (raises SourceError, located) and parse ``--without``."""
        upserts = ManifestSource(list(with_paths)).load().objects if with_paths else {}
        return cls(upserts, tuple(policy_key(text) for text in without))

    def apply(self, current: Mapping[ObjectKey, Object]) -> dict[ObjectKey, Object]:
        world = dict(current)
        for removal in self.removals:
            key = _resolve(removal, world)
            if key not in world:
                raise WhatIfError(f"--without {policy_name(key)}: no such NetworkPolicy in the source")
            del world[key]
        world.update(self.upserts)
        return world

    def changed_policies(self, current: Mapping[ObjectKey, Object]) -> set[str]:
        """``ns/name`` of every policy removed, added or replaced by a different one."""
        names = {policy_name(_resolve(k, current)) for k in self.removals}
        for key, obj in self.upserts.items():
            is_policy = key[0] is Kind.NETWORK_POLICY or key[0] in CLUSTER_POLICY_KINDS
            if is_policy and current.get(key) != obj:
                names.add(policy_name(key))
        return names

    def describe(self, current: Mapping[ObjectKey, Object]) -> list[str]:
        out = []
        for k in self.removals:
            key = _resolve(k, current)
            out.append(f"remove NetworkPolicy {policy_name(key)}" if key[1] else f"remove {policy_name(key)}")
        for key in sorted(self.upserts, key=lambda k: (k[0].value, k[1], k[2])):
            verb = "replace" if key in current else "add"
            if current.get(key) != self.upserts[key]:
                out.append(f"{verb} {key[0].value} {policy_name(key) if key[1] else key[2]}")
        return out


def policies_of(decision: Decision) -> tuple[list[str], list[str]]:
    """(policies whose rules allowed it, policies isolating a denied direction)."""
    allowed: list[str] = []
    isolating: list[str] = []
    traces: Iterable[DirectionTrace | None] = (decision.egress, decision.ingress)
    for trace in traces:
        if trace is None:
            continue
        allowed.extend(r.policy for r in trace.allowed_by if r.policy not in allowed)
        if trace.decided_by is not None:  # a cluster policy tier decided the direction
            into = allowed if trace.allowed else isolating
            if trace.decided_by.policy not in into:
                into.append(trace.decided_by.policy)
        elif trace.isolated and not trace.allowed:
            isolating.extend(p for p in trace.isolating if p not in isolating)
    return allowed, isolating


GroupKey = tuple[str, str, str, str, str]  # src group, dst group, port, before, after


@dataclass(slots=True)
class ChangeGroup:
    src: str
    dst: str
    port: str
    before: str
    after: str
    count: int = 0
    first_seen: str = ""
    last_seen: str = ""
    example: Flow | None = None
    before_reason: str = ""
    after_reason: str = ""
    responsible: list[str] = field(default_factory=list)

    @property
    def breaks(self) -> bool:
        return self.before == Verdict.ALLOW.value and self.after == Verdict.DENY.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "port": self.port,
            "before": self.before,
            "after": self.after,
            "before_reason": self.before_reason,
            "after_reason": self.after_reason,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "responsible": list(self.responsible),
            "example": self.example._asdict() if self.example else None,
        }


class WhatIf:
    """The current and the changed world, and the diff of verdicts they give the audited flows."""

    def __init__(self, current: Index, change: WorldChange) -> None:
        objects = current.objects()
        self.current = current
        self.changed = Index.from_objects(change.apply(objects).values(), current.service_partial)
        self.changed_names = change.changed_policies(objects)
        self.description = change.describe(objects)
        self.labels = PodLabels(objects)
        self.changed_labels = PodLabels(self.changed.objects())
        self.groups: dict[GroupKey, ChangeGroup] = {}
        self.flows = 0

    def decide_pair(self, flows: Sequence[Flow]) -> list[tuple[Decision, Decision]]:
        """Both worlds' decisions for a batch, in order (a batch decider for ``decide_records``)."""
        return list(zip(self.current.decide_many(flows), self.changed.decide_many(flows), strict=True))

    def add(self, record: FlowRecord, before: Decision, after: Decision) -> None:
        self.flows += 1
        if before.verdict is after.verdict:
            return
        flow = record.flow
        key: GroupKey = (
            self.labels.group(before.src, flow.src_ip),
            self.labels.group(before.dst, flow.dst_ip),
            port_text(flow),
            before.verdict.value,
            after.verdict.value,
        )
        group = self.groups.get(key)
        seen = record.time or f"line {record.line}"
        if group is None:
            group = self.groups[key] = ChangeGroup(*key, first_seen=seen, example=flow)
            group.before_reason, group.after_reason = before.reason.value, after.reason.value
        group.count += 1
        group.last_seen = seen

    def fresh(self) -> WhatIf:
        """The same two worlds with an empty diff: one per partition of a parallel audit."""
        other = copy.copy(self)
        other.groups = {}
        other.flows = 0
        return other

    def merge(self, groups: Mapping[GroupKey, ChangeGroup], flows: int) -> None:
        """Add a later partition's diff (partitions are merged in log order)."""
        self.flows += flows
        for key, group in groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = group
            else:
                mine.count += group.count
                mine.last_seen = group.last_seen

    def explain(self) -> None:
        """Fill ``responsible`` for each group from explained decisions of its example flow."""
        for group in self.groups.values():
            assert group.example is not None
            b_allowed, b_isolating = policies_of(self.current.decide(group.example, explain=True))
            a_allowed, a_isolating = policies_of(self.changed.decide(group.example, explain=True))
            involved = list(dict.fromkeys(b_allowed + b_isolating + a_allowed + a_isolating))
            changed = [p for p in involved if p in self.changed_names]
            group.responsible = changed or (a_isolating if group.breaks else a_allowed)

    def sorted_groups(self) -> list[ChangeGroup]:
        """Breaking changes first, then by count."""
        return sorted(self.groups.values(), key=lambda g: (not g.breaks, -g.count, g.src, g.dst, g.port))

    @property
    def breaks(self) -> bool:
        return any(g.breaks for g in self.groups.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": list(self.description),
            "flows": self.flows,
            "changed_flows": sum(g.count for g in self.groups.values()),
            "allowed_to_denied": sum(g.count for g in self.groups.values() if g.breaks),
            "groups": [g.to_dict() for g in self.sorted_groups()],
        }

    def render_text(self) -> str:
        d = self.to_dict()
        lines = [
            f"what-if ({'; '.join(self.description) or 'no change'}): {d['changed_flows']} of "
            f"{plural(self.flows, 'flow')} change{'s' * (d['changed_flows'] == 1)} verdict, "
            f"{d['allowed_to_denied']} from ALLOW to DENY"
        ]
        for g in self.sorted_groups():
            who = f"  [{', '.join(g.responsible)}]" if g.responsible else ""
            lines.append(
                f"  {g.before}->{g.after} {g.count:>7}  {g.src} -> {g.dst} {g.port}"
                f"  seen {g.first_seen} .. {g.last_seen}{who}"
            )
        return "\n".join(lines)


def explained(index: Index) -> Callable[[Flow], Decision]:
    return lambda flow: index.decide(flow, explain=True)
