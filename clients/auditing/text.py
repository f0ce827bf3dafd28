"""The human summary an audit prints to stderr: totals, allowed/denied, reasons, top denied pairs.

Kept apart from :class:`~netpol_pdp.clients.auditing.summary.AuditSummary`
(the mergeable counters of a pass) because it is only presentation: the command
fills :class:`TextTotals` from a finished pass, in this process or merged from
workers, and prints :func:`summary_lines`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from netpol_pdp.clients.render import plural


@dataclass(slots=True)
class TextTotals:
    """The totals the stderr summary prints; ``top_denied`` is ((source, destination), flows), most first."""

    flows: int = 0
    allowed: int = 0
    denied: int = 0
    distinct: int = 0
    invalid: int = 0
    replaced: int = 0
    generations: set[int] = field(default_factory=set)
    by_reason: Counter[str] = field(default_factory=Counter)
    top_denied: list[tuple[tuple[str, str], int]] = field(default_factory=list)
    seconds: float = 0.0


def summary_lines(s: TextTotals) -> list[str]:
    """The human summary printed to stderr after an audit."""
    rate = f" ({s.flows / s.seconds:,.0f} flows/s)" if s.seconds > 0 and s.flows else ""
    gens = ", ".join(str(g) for g in sorted(s.generations)) or "-"
    at = "generations" if len(s.generations) > 1 else "generation"
    lines = [f"audited {plural(s.flows, 'flow')} ({s.distinct:,} distinct) at {at} {gens}"]
    lines[0] += f" in {s.seconds:.2f} s{rate}"
    width = len(f"{s.flows:,}")
    for label, n in (("allowed", s.allowed), ("denied", s.denied)):
        share = f"{100 * n / s.flows:5.1f}%" if s.flows else "    -"
        lines.append(f"  {label:<8} {n:>{width},}  {share}")
    if s.by_reason:
        lines.append("by reason:")
        name_width = max(len(r) for r in s.by_reason)
        lines.extend(f"  {r:<{name_width}}  {n:>{width},}" for r, n in s.by_reason.most_common())
    if s.invalid:
        lines.append(f"invalid lines skipped: {s.invalid:,}")
    if s.replaced:
        lines.append(f"input lines whose decision-named fields were replaced: {s.replaced:,}")
    if s.top_denied:
        lines.append("top denied (source -> destination):")
        count_width = len(f"{s.top_denied[0][1]:,}")
        lines.extend(f"  {n:>{count_width},}  {src} -> {dst}" for (src, dst), n in s.top_denied)
    return lines
