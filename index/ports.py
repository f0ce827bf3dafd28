"""Port matching: which rules of a compiled direction can match (protocol, port).

Rules (SEMANTICS.md "Ports"):

1. A rule without ``ports`` matches every protocol and port — including
   protocols other than TCP/UDP/SCTP (choice).
2. ``protocol`` defaults to TCP; TCP, UDP and SCTP never match each other.
3. A ports entry without ``port`` matches every port of its protocol.
4. ``port`` (+ ``endPort``) matches the inclusive range.
5. A named ``port`` matches when the *destination pod* has a container port of
   that name and protocol whose number is the flow's port; never for a
   destination that is not a pod.
6. A rule with ``ports`` never matches a protocol other than TCP/UDP/SCTP.

Shape: per protocol, the boundaries of every numeric range in a sorted set
(sortedcontainers), frozen into a list for ``bisect``; segment *i* holds the
rule ids whose ranges cover ``[bounds[i], bounds[i+1])``.  One bisect answers
"which numeric rules cover port p", whatever the number of ranges.  Named ports
are kept per protocol as ``name -> rule ids`` and resolved against the
destination pod's ``(name, protocol, number)`` triples at decision time,
because the same rule means different numbers on different pods.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict

from sortedcontainers import SortedSet

from netpol_pdp.index.model import PolicyPort

_NONE: tuple[int, ...] = ()


class _RangeIndex:
    """Rule ids by port for one protocol: frozen boundaries + segments."""

    __slots__ = ("bounds", "segments")

    def __init__(self, ranges: list[tuple[int, int, int]]) -> None:
        """``ranges``: ``(first, last, rule id)`` inclusive."""
        cuts: SortedSet = SortedSet()
        for first, last, _ in ranges:
            cuts.add(first)
            cuts.add(last + 1)
        self.bounds: list[int] = list(cuts)
        segments: list[tuple[int, ...]] = []
        for i, start in enumerate(self.bounds):
            segments.append(
                tuple(sorted({rid for first, last, rid in ranges if first <= start <= last}))
                if i + 1 < len(self.bounds)
                else _NONE
            )
        self.segments = segments

    def rules_at(self, port: int) -> tuple[int, ...]:
        i = bisect_right(self.bounds, port) - 1
        return self.segments[i] if i >= 0 else _NONE


class PortIndex:
    """Immutable: candidate rule ids for (protocol, port, destination's named ports)."""

    __slots__ = ("_named", "_portless", "_ranges", "rules")

    def __init__(self, rules: list[tuple[int, tuple[PolicyPort, ...]]]) -> None:
        #: ``(rule id, ports)`` as given: what reach queries read (index/reach.py)
        self.rules = tuple(rules)
        portless: list[int] = []
        ranges: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        named: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for rule_id, ports in rules:
            if not ports:
                portless.append(rule_id)
                continue
            for p in ports:
                if p.port is None:
                    ranges[p.protocol].append((1, 65535, rule_id))
                elif isinstance(p.port, int):
                    ranges[p.protocol].append((p.port, p.end_port or p.port, rule_id))
                else:
                    named[p.protocol][p.port].append(rule_id)
        self._portless = tuple(portless)
        self._ranges = {proto: _RangeIndex(r) for proto, r in ranges.items()}
        self._named = {
            proto: tuple((name, tuple(ids)) for name, ids in by_name.items())
            for proto, by_name in named.items()
        }

    @property
    def portless(self) -> tuple[int, ...]:
        """The ids of the rules without ports, ascending (``candidates`` may return this very tuple)."""
        return self._portless

    def candidates(
        self, protocol: str, port: int, dst_ports: frozenset[tuple[str, str, int]] | None
    ) -> list[int] | tuple[int, ...]:
        """Rule ids that match (protocol, port) on the port side; unsorted, may repeat."""
        index = self._ranges.get(protocol)
        numeric = index.rules_at(port) if index is not None else _NONE
        named = self._named.get(protocol)
        if named is None or not dst_ports:
            if not numeric:
                return self._portless
            if not self._portless:
                return numeric
            return [*self._portless, *numeric]
        out = [*self._portless, *numeric]
        for name, ids in named:
            if (name, protocol, port) in dst_ports:
                out.extend(ids)
        return out
