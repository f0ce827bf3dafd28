"""The reachability matrix: for a set of pods and ports, which pod reaches which.

docs/queries.md "Reachability matrix".  A cell (from, to, protocol, port) is the
decision of the flow from ``from``'s first address to ``to``'s first address of
the same family, IPv4 first (reference R42); pods that share no family have no
cell (``?``).  Every cell of one matrix is decided at ONE generation, through the
index's decision path (so its cache, tiers, exemptions and notes are the
decisions' own).  The layout is the upstream conformance tests' truth table
(kubernetes test/e2e/network/netpol/truthtable.go): rows are sources, columns
destinations, ``.`` allowed, ``X`` denied; a comparison of two tables marks each
cell ``.`` when both agree and ``X`` when they differ.

Size is capped (:data:`MAX_CELLS`): a matrix is pods x pods x ports decisions,
and an unbounded one is a denial of service on a shared server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, ascii_int, normalize_port, normalize_protocol
from netpol_pdp.index.generation import Generation, PodEntry
from netpol_pdp.index.model import PORT_PROTOCOLS, LabelSelector
from netpol_pdp.index.reach import ReachError, catalogue
from netpol_pdp.index.selectors import matches

#: the most cells (pods x pods x ports) one matrix may have
MAX_CELLS = 250_000
ALLOWED, DENIED, UNKNOWN = ".", "X", "?"


class MatrixError(ReachError):
    """A matrix query that selects no pod, names a bad port, or is too large."""


@dataclass(frozen=True, slots=True)
class Matrix:
    """``cells[k][i][j]``: pod ``pods[i]`` to ``pods[j]`` on ``ports[k]`` (None: no common family)."""

    generation: int
    pods: tuple[str, ...]
    ports: tuple[tuple[str, int], ...]
    cells: tuple[tuple[tuple[bool | None, ...], ...], ...]

    def mark(self, k: int, i: int, j: int) -> str:
        value = self.cells[k][i][j]
        return UNKNOWN if value is None else ALLOWED if value else DENIED

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "pods": list(self.pods),
            "ports": [port_text(p) for p in self.ports],
            "tables": [
                {
                    "port": port_text(port),
                    "rows": [
                        {"from": src, "to": "".join(self.mark(k, i, j) for j in range(len(self.pods)))}
                        for i, src in enumerate(self.pods)
                    ],
                }
                for k, port in enumerate(self.ports)
            ],
        }


def port_text(port: tuple[str, int]) -> str:
    """``TCP/80``; a protocol without ports alone (``ICMP``)."""
    protocol, number = port
    return f"{protocol}/{number}" if protocol in PORT_PROTOCOLS else protocol


def parse_port(text: str, field: str = "ports") -> tuple[str, int]:
    """``80`` (TCP), ``TCP/80``, ``udp/53``, ``SCTP/9000``, ``ICMP`` -> (protocol, port); a protocol
    without ports gets port 0.  Raises :class:`MatrixError` naming ``field``."""
    protocol, _, number = text.strip().rpartition("/")
    if not protocol and ascii_int(number) is None:
        protocol, number = number, ""
    try:
        proto = normalize_protocol(protocol or "TCP", field)
        if proto in PORT_PROTOCOLS:
            value = ascii_int(number)
            if value is None:
                raise FlowError(field, f"{text!r}: {proto} needs a port number (like {proto}/80)")
            return proto, normalize_port(value, proto, field)
        if number:
            raise FlowError(field, f"{text!r}: {proto} has no ports")
        return proto, 0
    except FlowError as err:
        raise MatrixError(str(err)) from None


def _first_addresses(entries: list[tuple[str, PodEntry]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for ip, _ in sorted(entries, key=lambda e: (":" in e[0], e[0])):
        out.setdefault(6 if ":" in ip else 4, ip)
    return out


def select_pods(
    gen: Generation, namespace: str | None = None, selector: LabelSelector | None = None
) -> list[str]:
    """The pods (``ns/name``, sorted) of ``namespace`` (None: every namespace) matching ``selector``."""
    cat = catalogue(gen)
    idents = cat.by_namespace.get(namespace, []) if namespace is not None else list(cat.by_identity)
    out: set[str] = set()
    for ident_id in idents:
        if selector is not None and not matches(selector, dict(gen.identity(ident_id).labels)):
            continue
        out.update(entry.name for _, entry in cat.by_identity[ident_id])
    return sorted(out)


def check_size(pods: int, ports: int, max_cells: int = MAX_CELLS) -> None:
    cells = pods * pods * ports
    if cells > max_cells:
        raise MatrixError(
            f"matrix: {pods:,} pods x {pods:,} x {ports} port{'s' if ports != 1 else ''} is {cells:,} cells, "
            f"more than the {max_cells:,} allowed: narrow the namespace or selector, or ask fewer ports"
        )


def matrix(
    index: Index,
    ports: list[tuple[str, int]],
    namespace: str | None = None,
    selector: LabelSelector | None = None,
    pods: list[str] | None = None,
    gen: Generation | None = None,
    max_cells: int = MAX_CELLS,
) -> Matrix:
    """The matrix of the selected pods (or exactly ``pods``, in that order) on ``ports``
    (normalised protocol, port; 0 for a protocol without ports) at one generation
    (``gen``, else the index's published one); more than ``max_cells`` is a :class:`MatrixError`."""
    if not ports:
        raise MatrixError("ports: at least one protocol and port is required")
    gen = gen or index.snapshot()
    cat = catalogue(gen)
    names = pods if pods is not None else select_pods(gen, namespace, selector)
    if not names:
        where = f"namespace {namespace}" if namespace is not None else "the cluster"
        what = " matching the selector" if selector is not None else ""
        raise MatrixError(f"{where}: no live pod{what} at generation {gen.number}")
    check_size(len(names), len(ports), max_cells)
    addresses = [_first_addresses(cat.by_name.get(n, [])) for n in names]
    pairs: list[tuple[int, int, str, str]] = []
    for i, src in enumerate(addresses):
        for j, dst in enumerate(addresses):
            family = 4 if 4 in src and 4 in dst else 6 if 6 in src and 6 in dst else 0
            if family:
                pairs.append((i, j, src[family], dst[family]))
    tables = []
    for protocol, port in ports:
        decisions = index.decide_many([Flow(s, d, protocol, port) for _, _, s, d in pairs], gen=gen)
        grid: list[list[bool | None]] = [[None] * len(names) for _ in names]
        for (i, j, _, _), decision in zip(pairs, decisions, strict=True):
            grid[i][j] = decision.allowed
        tables.append(tuple(tuple(row) for row in grid))
    return Matrix(gen.number, tuple(names), tuple(ports), tuple(tables))


@dataclass(frozen=True, slots=True)
class CellChange:
    port: tuple[str, int]
    source: str
    destination: str
    before: bool | None
    after: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "port": port_text(self.port),
            "from": self.source,
            "to": self.destination,
            "before": self.before,
            "after": self.after,
        }


def changes(before: Matrix, after: Matrix) -> list[CellChange]:
    """The cells whose value differs (both matrices over the same pods and ports)."""
    assert before.pods == after.pods and before.ports == after.ports, "matrices of different shapes"
    out = []
    for k, port in enumerate(before.ports):
        for i, src in enumerate(before.pods):
            for j, dst in enumerate(before.pods):
                a, b = before.cells[k][i][j], after.cells[k][i][j]
                if a != b:
                    out.append(CellChange(port, src, dst, a, b))
    return out
