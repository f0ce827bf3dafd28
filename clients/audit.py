"""Auditing a flow log: stream JSON Lines in, one decision per flow out, in input order.

Flow logs repeat heavily (the same client calls the same service all day), so
each *distinct* flow is decided once: lines are read in chunks, the chunk's
flows not seen before are decided together with ``Index.decide_many`` (one
generation for the whole batch), and every line is answered from the
distinct-flow table.  Memory is that table (and the table of parsed raw
fields, about as large) plus one chunk, whatever the length of the log.

The output line is the input line with the decision's fields appended: the
input text is kept as written (field order, number formatting) and the
decision's JSON, rendered once per distinct flow, is spliced in before the
closing brace.  When an input record already has a field the decision adds
(``verdict``, ``reason``, ...) the record is re-serialised with the decision's
value, and the summary counts it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.render import endpoint_key
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, parse_flow

#: The fields an output line gains (``explanation`` only with explain, ``notes`` when any).
DECISION_FIELDS = frozenset({"verdict", "reason", "generation", "src", "dst", "notes", "explanation"})
CHUNK = 4096


class Decider(Protocol):
    """What the auditor needs of an index (``netpol_pdp.index.engine.Index`` is one)."""

    def decide_many(self, flows: list[Flow], explain: bool = False) -> list[Decision]: ...


class _Distinct:
    """One distinct flow: its decision rendered once, and how often it occurred."""

    __slots__ = ("allowed", "count", "fragment", "pair", "reason", "value")

    def __init__(self, flow: Flow, decision: Decision) -> None:
        self.value: dict[str, Any] = decision.to_dict()
        self.fragment = json.dumps(self.value)[1:-1]
        self.allowed = decision.allowed
        self.reason = decision.reason.value
        self.pair = (
            None
            if decision.allowed
            else (endpoint_key(decision.src, flow.src_ip), endpoint_key(decision.dst, flow.dst_ip))
        )
        self.count = 0


@dataclass(slots=True)
class AuditSummary:
    """Totals of one audit; ``top_denied`` is ((source, destination), flows), most first."""

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


class Auditor:
    """Decides a flow log against one index; see the module docstring for the streaming shape.

    ``on_invalid(line_number, message)`` is called for each malformed line when
    ``skip_invalid`` is set; otherwise the first one raises :class:`CommandError`
    (``line N: field: message``) after every earlier line has been written.
    """

    def __init__(
        self,
        index: Decider,
        *,
        explain: bool = False,
        skip_invalid: bool = False,
        on_invalid: Callable[[int, str], None] | None = None,
        top: int = 10,
        chunk: int = CHUNK,
    ) -> None:
        self.index = index
        self.explain = explain
        self.skip_invalid = skip_invalid
        self.on_invalid = on_invalid
        self.top = top
        self.chunk = chunk
        self._seen: dict[Flow, _Distinct] = {}
        self._parsed: dict[tuple[object, ...], Flow] = {}
        self._summary = AuditSummary()

    def run(
        self,
        lines: Iterable[bytes],
        write: Callable[[str], object],
        progress: Callable[[int], object] | None = None,
    ) -> AuditSummary:
        """Read every line, ``write`` the answers (text ending in newlines), return the totals.

        ``progress(n_bytes)`` is called once per chunk with the bytes consumed.
        """
        began = time.perf_counter()
        pending: list[tuple[str, dict[str, Any], Flow]] = []
        consumed = 0
        for number, raw in enumerate(lines, start=1):
            consumed += len(raw)
            parsed = self._parse(number, raw)
            if parsed is None:
                continue
            if isinstance(parsed, str):
                self._flush(pending, write)
                raise CommandError(f"line {number}: {parsed}")
            pending.append(parsed)
            if len(pending) >= self.chunk:
                self._flush(pending, write)
                if progress is not None:
                    progress(consumed)
                    consumed = 0
        self._flush(pending, write)
        if progress is not None:
            progress(consumed)
        return self._finish(time.perf_counter() - began)

    def _parse(self, number: int, raw: bytes) -> tuple[str, dict[str, Any], Flow] | str | None:
        """The line's (text, record, flow); None for a blank or skipped line; the problem otherwise."""
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            return self._invalid(number, f"not UTF-8 text (byte {err.start})")
        if not text:
            return None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            return self._invalid(number, f"not valid JSON: {err.msg} (column {err.colno})")
        # Parsing addresses costs more than deciding a cached flow, so the parsed
        # flow is remembered by its raw fields (types included: ``True == 1``).
        try:
            proto, port = record.get("protocol"), record.get("dst_port")
            key = (record["src_ip"], record["dst_ip"], proto, port, type(proto), type(port))
            flow = self._parsed.get(key)
        except (AttributeError, KeyError, TypeError):  # not an object, a field missing or unhashable
            key, flow = None, None
        if flow is None:
            try:
                flow = parse_flow(record)
            except FlowError as err:
                return self._invalid(number, str(err))
            if key is not None:
                self._parsed[key] = flow
        return text, record, flow

    def _invalid(self, number: int, message: str) -> str | None:
        if not self.skip_invalid:
            return message
        self._summary.invalid += 1
        if self.on_invalid is not None:
            self.on_invalid(number, message)
        return None

    def _flush(self, pending: list[tuple[str, dict[str, Any], Flow]], write: Callable[[str], object]) -> None:
        if not pending:
            return
        seen = self._seen
        new = list(dict.fromkeys(flow for _t, _r, flow in pending if flow not in seen))
        if new:
            for flow, decision in zip(new, self.index.decide_many(new, explain=self.explain), strict=True):
                seen[flow] = _Distinct(flow, decision)
                self._summary.generations.add(decision.generation)
        out: list[str] = []
        for text, record, flow in pending:
            entry = seen[flow]
            entry.count += 1
            if DECISION_FIELDS.isdisjoint(record):
                out.append(f"{text[:-1]}, {entry.fragment}}}" if len(record) else f"{{{entry.fragment}}}")
            else:
                self._summary.replaced += 1
                out.append(json.dumps({**record, **entry.value}))
        out.append("")
        write("\n".join(out))
        pending.clear()

    def _finish(self, seconds: float) -> AuditSummary:
        s = self._summary
        pairs: Counter[tuple[str, str]] = Counter()
        for entry in self._seen.values():
            s.flows += entry.count
            s.by_reason[entry.reason] += entry.count
            if entry.allowed:
                s.allowed += entry.count
            elif entry.pair is not None:
                s.denied += entry.count
                pairs[entry.pair] += entry.count
        s.distinct = len(self._seen)
        s.top_denied = pairs.most_common(self.top)
        s.seconds = seconds
        return s


def summary_lines(s: AuditSummary) -> list[str]:
    """The human summary printed to stderr after an audit."""
    rate = f" ({s.flows / s.seconds:,.0f} flows/s)" if s.seconds > 0 and s.flows else ""
    gens = ", ".join(str(g) for g in sorted(s.generations)) or "-"
    lines = [f"audited {s.flows:,} flows ({s.distinct:,} distinct) at generation {gens}"]
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
