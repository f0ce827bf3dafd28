"""One audit pass: records in, decisions out in input order, the summary (and what-if) filled.

The pass does not care where records come from (any reader) nor where decisions
come from (``decide`` is any :data:`~netpol_pdp.clients.auditing.deciding.Decider`:
an in-process index, a gRPC client, a worker pool).  Each distinct flow's
decision is rendered to JSON once; an output line is the input line as written
(our JSON Lines) with the decision's fields spliced in before the closing
brace, or -- for other formats, or when the input already has a field the
decision adds -- the kept fields and the decision serialised together.  When
the log says what the enforcer did, the line also gets ``observed`` and
``agreement``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from netpol_pdp.clients.auditing.agreement import Agreement, compare
from netpol_pdp.clients.auditing.deciding import Decider, decide_batches
from netpol_pdp.clients.auditing.summary import AuditSummary
from netpol_pdp.clients.auditing.whatif import WhatIf
from netpol_pdp.clients.flowlogs.record import FlowRecord
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import NetpolPdpError
from netpol_pdp.index.flows import Flow

#: The fields an output line gains.
#: (``observed`` is not among them: an input ``observed`` column means the same and is normalised.)
DECISION_FIELDS = frozenset(
    {"verdict", "reason", "generation", "src", "dst", "notes", "explanation", "agreement"}
)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A decision with its JSON rendered once (per distinct flow, not per line)."""

    decision: Decision
    value: dict[str, Any]
    fragment: str

    @classmethod
    def of(cls, decision: Decision) -> Rendered:
        value = decision.to_dict()
        return cls(decision, value, json.dumps(value)[1:-1])


@dataclass(slots=True)
class AuditRun:
    """What a pass leaves: the summary, the what-if diff (when asked), and timing."""

    summary: AuditSummary
    whatif: WhatIf | None = None
    seconds: float = 0.0
    generations: set[int] = field(default_factory=set)
    replaced: int = 0
    #: the reader's error that ended the pass, when ``run_audit`` was told to keep it
    error: NetpolPdpError | None = None


def output_line(record: FlowRecord, rendered: Rendered, agreement: Agreement | None) -> tuple[str, bool]:
    """The output text for one record, and whether input fields had to be overridden."""
    extra = ""
    if record.observed is not None:
        extra = f', "observed": "{record.observed.value}", "agreement": "{agreement}"'
    clash = not DECISION_FIELDS.isdisjoint(record.fields)
    if (
        record.text is not None
        and not clash
        and "observed" not in record.fields
        and record.text.endswith("}")
    ):
        body = record.text[:-1].rstrip()
        sep = ", " if body != "{" else ""
        return f"{body}{sep}{rendered.fragment}{extra}}}", False
    if clash:
        value = {**record.fields, **rendered.value}
        if record.observed is not None:
            value["observed"] = record.observed.value
            value["agreement"] = None if agreement is None else agreement.value
        return json.dumps(value), True
    fields = record.fields
    if record.observed is not None and "observed" in fields:
        fields = {k: v for k, v in fields.items() if k != "observed"}  # normalised below
    head = json.dumps(fields)[:-1] if fields else "{"
    sep = ", " if fields else ""
    return f"{head}{sep}{rendered.fragment}{extra}}}", False


#: The young-generation threshold of the cycle collector during a pass (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cycle collector less often while a pass runs.

    A pass allocates a handful of short-lived objects per line (the parsed
    record, its flow key, the output text); with the default threshold the
    collector runs every ~100 lines and walks every surviving container each
    time: measured at ~15% of a 1,000,000-line audit.  Nearly all of it is freed
    by reference counting, so collecting every 50,000 allocations bounds the
    garbage just as well.  The previous thresholds are restored after.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def run_audit(
    records: Iterable[FlowRecord],
    decide: Decider,
    *,
    write: Callable[[str], object] | None = None,
    whatif: WhatIf | None = None,
    explain_flow: Callable[[Flow], Decision] | None = None,
    progress: Callable[[int], object] | None = None,
    chunk: int = 4096,
    finish: bool = True,
    keep_error: bool = False,
) -> AuditRun:
    """Decide every record; ``write`` gets output lines in chunks (text ending in a newline).

    With ``whatif``, each distinct flow is decided in both of its worlds (its
    current world should be what ``decide`` answers from) and the diff is
    collected.  A reader's error is raised after every record before it has
    been written.  ``explain_flow`` names the isolating policies of the top denied
    pairs at the end.  ``progress(n)`` is called per chunk with records done.
    A partition of a larger audit passes ``finish=False`` (explaining happens
    once, after merging) and ``keep_error=True`` (the error is returned in
    :attr:`AuditRun.error` with the partial counts, not raised).
    """
    with fewer_collections():
        return _run_audit(records, decide, write, whatif, explain_flow, progress, chunk, finish, keep_error)


def _run_audit(
    records: Iterable[FlowRecord],
    decide: Decider,
    write: Callable[[str], object] | None,
    whatif: WhatIf | None,
    explain_flow: Callable[[Flow], Decision] | None,
    progress: Callable[[int], object] | None,
    chunk: int,
    finish: bool,
    keep_error: bool,
) -> AuditRun:
    began = time.perf_counter()
    summary = AuditSummary()
    run = AuditRun(summary, whatif)

    def answer(flows: Sequence[Flow]) -> list[tuple[Rendered, Decision | None]]:
        if whatif is None:
            answers: list[tuple[Rendered, Decision | None]] = [(Rendered.of(d), None) for d in decide(flows)]
        else:
            answers = [(Rendered.of(now), then) for now, then in whatif.decide_pair(flows)]
        run.generations.update(r.decision.generation for r, _ in answers)
        return answers

    stopped: list[NetpolPdpError] = []

    def until_error() -> Iterator[FlowRecord]:
        # A bad line ends the read; what came before it is still decided and written.
        try:
            yield from records
        except NetpolPdpError as err:
            stopped.append(err)

    out: list[str] = []
    add = summary.add
    for batch, answers in decide_batches(until_error(), answer, summary.dedup, batch_size=chunk):
        for record, (rendered, changed) in zip(batch, answers, strict=True):
            decision = rendered.decision
            observed = record.observed
            agreement = None if observed is None else compare(observed, record.direction, decision)
            add(record, decision, agreement)
            if whatif is not None and changed is not None:
                whatif.add(record, decision, changed)
            if write is not None:
                line, clash = output_line(record, rendered, agreement)
                if clash:
                    run.replaced += 1
                out.append(line)
        if write is not None and out:
            out.append("")
            write("\n".join(out))
            out.clear()
        if progress is not None:
            progress(len(batch))
    if stopped:
        if not keep_error:
            raise stopped[0]
        run.error = stopped[0]
    if finish and explain_flow is not None:
        summary.explain_top(explain_flow)
    if finish and whatif is not None:
        whatif.explain()
    run.seconds = time.perf_counter() - began
    return run
