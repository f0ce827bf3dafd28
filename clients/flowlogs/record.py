"""What a reader yields: one flow as the decision engine wants it, plus what the log said.

A :class:`FlowRecord` keeps the normalised :class:`~netpol_pdp.index.flows.Flow`
(the decision and deduplication key), the original fields worth keeping in the
audit output, and -- when the log carries it -- what the enforcer did
(``observed``) and where it looked (``direction``), so the audit can say whether
policy and enforcement agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.flows import Flow

#: The fields an audit's output line gains (a record's own field of one of these names is overridden).
#: (``observed`` is not among them: an input ``observed`` column means the same and is normalised.)
DECISION_FIELDS = frozenset(
    {"verdict", "reason", "generation", "src", "dst", "notes", "explanation", "agreement"}
)


class Direction(StrEnum):
    """Where the enforcer observed the flow: leaving the source or entering the destination."""

    INGRESS = "ingress"
    EGRESS = "egress"


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~2x, and a record is built per line
class FlowRecord:
    """One flow read from a log.

    ``fields`` are the original fields kept for the output (JSON-serialisable);
    ``observed`` is the enforcer's verdict when the log says it was a *policy*
    verdict (a drop for another reason is not one); ``time`` is the record's time
    as ISO 8601 text when the log has one; ``text`` is the line as written when
    the output should keep it verbatim (our JSON Lines).
    """

    line: int
    flow: Flow
    fields: dict[str, Any]
    observed: Verdict | None = None
    direction: Direction | None = None
    time: str | None = None
    #: the line as written, for formats whose output keeps it (our JSON Lines)
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """A line that is well formed but not a flow to judge; ``reason`` is counted."""

    reason: str


#: The reasons readers skip lines for, explained once for summaries and docs.
SKIP_REASONS = {
    "header": "a header line (CSV, VPC custom format)",
    "reply": "a reply packet of a connection (Hubble is_reply): judged with its request",
    "non-l4": "not TCP, UDP or SCTP (ICMP, DNS-only L7 record without an L4 part, ...)",
    "not-a-flow": "a record that is not a flow (Hubble node status, lost events, ...)",
    "nodata": "VPC log-status NODATA: no traffic in the capture window",
    "skipdata": "VPC log-status SKIPDATA: records were skipped by the service",
    "missing-fields": "an address, port or protocol field is '-' (VPC: not applicable)",
}


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line skipped by ``--skip-invalid``: where, which field, and the full message."""

    line: int
    field: str
    message: str


@dataclass(slots=True)
class ReadStats:
    """Counts of one read: every non-blank line is a record, a skip, or invalid."""

    format: str = ""
    lines: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    invalid: int = 0
    invalid_examples: list[InvalidLine] = field(default_factory=list)

    #: How many invalid lines are quoted in full; the rest are only counted.
    MAX_EXAMPLES = 10

    def add_invalid(self, line: int, field: str, message: str) -> None:
        self.invalid += 1
        if len(self.invalid_examples) < self.MAX_EXAMPLES:
            self.invalid_examples.append(InvalidLine(line, field, message))

    def merge(self, other: ReadStats) -> None:
        """Add another part's counts (a log read in partitions)."""
        self.lines += other.lines
        self.records += other.records
        self.skipped.update(other.skipped)
        self.invalid += other.invalid
        room = self.MAX_EXAMPLES - len(self.invalid_examples)
        self.invalid_examples.extend(other.invalid_examples[: max(room, 0)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "lines": self.lines,
            "records": self.records,
            "skipped": dict(sorted(self.skipped.items())),
            "invalid": self.invalid,
            "invalid_examples": [e.message for e in self.invalid_examples],
        }
