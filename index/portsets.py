"""Sets of (protocol, port): the port side of a reach answer, ranges merged.

A :class:`PortSet` is immutable: per protocol, sorted disjoint inclusive
intervals, adjacent ones merged.  TCP, UDP and SCTP hold ports 1..65535; every
other IP protocol (ICMP, GRE, ...) has no ports and is the one pseudo-protocol
:data:`OTHER` with the single point 0, because a rule matches them all or none
(a rule without ports matches every protocol; a rule with ports none but its own).

Text is what ``netpol-pdp reach`` prints: ``TCP 80,443,8000-8080; UDP 53``,
``all ports and protocols``, ``TCP all ports``, ``other protocols``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from netpol_pdp.index.model import PORT_PROTOCOLS

#: every IP protocol other than TCP/UDP/SCTP, as one member with port 0
OTHER = "OTHER"
PROTOCOLS = (*PORT_PROTOCOLS, OTHER)
MAX_PORT = 65535

Intervals = tuple[tuple[int, int], ...]


def _full(protocol: str) -> Intervals:
    return ((0, 0),) if protocol == OTHER else ((1, MAX_PORT),)


def _merge(intervals: Iterable[tuple[int, int]]) -> Intervals:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _subtract(a: Intervals, b: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    for first, hi in a:
        lo = first
        for blo, bhi in b:
            if bhi < lo or blo > hi:
                continue
            if blo > lo:
                out.append((lo, blo - 1))
            lo = bhi + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((lo, hi))
    return tuple(out)


class PortSet:
    """An immutable set of (protocol, port); hashable, compared by value."""

    __slots__ = ("_by", "_hash")

    def __init__(self, by: Mapping[str, Iterable[tuple[int, int]]] | None = None) -> None:
        merged = {p: _merge(iv) for p, iv in (by or {}).items()}
        self._by: dict[str, Intervals] = {p: merged[p] for p in PROTOCOLS if merged.get(p)}
        self._hash = hash(tuple(self._by.items()))

    @classmethod
    def _of(cls, by: dict[str, Intervals]) -> PortSet:
        """From intervals already merged, in protocol order (what ``&`` and ``-`` produce)."""
        out = cls.__new__(cls)
        out._by = {p: iv for p, iv in by.items() if iv}
        out._hash = hash(tuple(out._by.items()))
        return out

    @classmethod
    def everything(cls) -> PortSet:
        return cls({p: _full(p) for p in PROTOCOLS})

    @classmethod
    def single(cls, protocol: str, port: int) -> PortSet:
        """One protocol and port (a protocol that is not TCP/UDP/SCTP: :data:`OTHER`)."""
        if protocol in PORT_PROTOCOLS:
            return cls({protocol: ((port, port),)})
        return cls({OTHER: ((0, 0),)})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortSet) and self._by == other._by

    def __hash__(self) -> int:
        return self._hash

    def __bool__(self) -> bool:
        return bool(self._by)

    def __repr__(self) -> str:
        return f"PortSet({self.text()!r})"

    def __or__(self, other: PortSet) -> PortSet:
        if not other._by:
            return self
        if not self._by:
            return other
        keys = set(self._by) | set(other._by)
        return PortSet({p: self._by.get(p, ()) + other._by.get(p, ()) for p in keys})

    def __and__(self, other: PortSet) -> PortSet:
        if self is other:
            return self
        return PortSet._of({p: _intersect(iv, other._by[p]) for p, iv in self._by.items() if p in other._by})

    def __sub__(self, other: PortSet) -> PortSet:
        if not other._by:
            return self
        return PortSet._of({p: _subtract(iv, other._by.get(p, ())) for p, iv in self._by.items()})

    def contains(self, protocol: str, port: int) -> bool:
        """Whether a flow of ``protocol`` (normalised) to ``port`` is in the set."""
        if protocol not in PORT_PROTOCOLS:
            protocol, port = OTHER, 0
        return any(lo <= port <= hi for lo, hi in self._by.get(protocol, ()))

    def intervals(self) -> dict[str, Intervals]:
        return dict(self._by)

    def text(self) -> str:
        """``TCP 80,443; UDP 53``; ``all ports and protocols``; ``none``."""
        if self == EVERYTHING:
            return "all ports and protocols"
        parts = []
        for protocol, iv in self._by.items():
            if protocol == OTHER:
                parts.append("other protocols")
            elif iv == _full(protocol):
                parts.append(f"{protocol} all ports")
            else:
                numbers = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in iv)
                parts.append(f"{protocol} {numbers}")
        return "; ".join(parts) if parts else "none"

    def to_dict(self) -> dict[str, Any]:
        """``{"TCP": [[80, 80], [443, 443]], "OTHER": [[0, 0]]}``."""
        return {p: [list(i) for i in iv] for p, iv in self._by.items()}


EVERYTHING = PortSet.everything()
NOTHING = PortSet()
