"""One audit pass: records in, decisions out in input order, the summary (and what-if) filled.

The pass does not care where records come from (any reader) nor where decisions
come from (``decide`` is any :data:`~netpol_pdp.clients.auditing.deciding.Decider`:
an in-process index, a gRPC client, a worker pool).  Given a flow log
(:class:`~netpol_pdp.clients.flowlogs.reading.FlowLog` or its
:class:`~netpol_pdp.clients.flowlogs.reading.RawLines`), it reads raw lines
and answers a repeated line from what it gave the first time
(:mod:`~netpol_pdp.clients.auditing.lines`); given any other iterable of
records, it decides them batch by batch.  Both make the same output lines
(:mod:`~netpol_pdp.clients.auditing.output`) and the same summary.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from netpol_pdp.clients.auditing.agreement import compare
from netpol_pdp.clients.auditing.deciding import Decider, decide_batches
from netpol_pdp.clients.auditing.lines import LinePass
from netpol_pdp.clients.auditing.output import DECISION_FIELDS, Rendered, Renderer, output_line
from netpol_pdp.clients.auditing.summary import AuditSummary
from netpol_pdp.clients.auditing.whatif import WhatIf
from netpol_pdp.clients.flowlogs.errors import FlowLogError
from netpol_pdp.clients.flowlogs.reading import FlowLog, RawLines
from netpol_pdp.clients.flowlogs.record import FlowRecord
from netpol_pdp.clients.flowlogs.source import READ_ERRORS
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import NetpolPdpError
from netpol_pdp.index.flows import Flow

__all__ = ["DECISION_FIELDS", "AuditRun", "Rendered", "output_line", "run_audit"]


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

#: The young-generation threshold of the cycle collector during a pass (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cycle collector less often while a pass runs, and never over what was there before it.

    A pass allocates a handful of short-lived objects per line (the parsed
    record, its flow key, the output text); with the default threshold the
    collector runs every ~100 lines and walks every surviving container each
    time: measured at ~15% of a 1,000,000-line audit.  Nearly all of it is freed
    by reference counting, so collecting every 50,000 allocations bounds the
    garbage just as well.  And what lived before the pass (the loaded world and
    its index: ~250,000 tracked objects for the medium world) is frozen
    (``gc.freeze``) for the pass: the full collections the pass's own survivors
    set off would otherwise walk all of it, each time (measured: 0.1-0.2 s of a
    0.5-0.7 s pass over 500,000 lines).  The previous thresholds are restored,
    and everything unfrozen, after -- unless something was frozen before the
    pass (a command that keeps its world to the end, ``netpol-pdp audit``): that
    stays frozen.
    """
    before = gc.get_threshold()
    outer = gc.get_freeze_count() > 0
    gc.set_threshold(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])
    gc.freeze()
    try:
        yield
    finally:
        if not outer:
            gc.unfreeze()
        gc.set_threshold(*before)


def run_audit(
    records: Iterable[FlowRecord] | FlowLog | RawLines,
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
    pairs at the end.  ``progress(n)`` is called per chunk with records (with a
    log: lines) done.  A partition of a larger audit passes ``finish=False``
    (explaining happens once, after merging) and ``keep_error=True`` (the error
    is returned in :attr:`AuditRun.error` with the partial counts, not raised).
    A :class:`FlowLog` is read by its raw lines (the log's ``stats`` are filled).
    """
    began = time.perf_counter()
    summary = AuditSummary()
    run = AuditRun(summary, whatif)

    rendered = Renderer().of  # each end's JSON once per pass

    def answer(flows: Sequence[Flow]) -> list[tuple[Rendered, Decision | None]]:
        if whatif is None:
            answers: list[tuple[Rendered, Decision | None]] = [(rendered(d), None) for d in decide(flows)]
        else:
            answers = [(rendered(now), then) for now, then in whatif.decide_pair(flows)]
        run.generations.update(r.decision.generation for r, _ in answers)
        return answers

    if isinstance(records, FlowLog):
        records = records.raw_lines()
    with fewer_collections():
        if isinstance(records, RawLines):
            _run_lines(records, answer, run, write, progress, chunk)
        else:
            _run_records(records, answer, run, write, progress, chunk)
    if run.error is not None and not keep_error:
        raise run.error
    if finish and explain_flow is not None:
        summary.explain_top(explain_flow)
    if finish and whatif is not None:
        whatif.explain()
    run.seconds = time.perf_counter() - began
    return run


#: Output pieces written at a time: each a line with its newline, or a line's own head
#: and the rest it shares with its quick key (joined only here, once).  Text of a few
#: hundred KiB or more is allocated with mmap, and filling fresh pages costs more than
#: the copying (measured: 0.65 µs a line in pieces of 4,096 lines, 0.03 µs in pieces of
#: 128: bench/flowlog_parsers.py's figures).
WRITE_LINES = 128

Answerer = Callable[[Sequence[Flow]], list[tuple[Rendered, Decision | None]]]


def _run_lines(
    lines: RawLines,
    answer: Answerer,
    run: AuditRun,
    write: Callable[[str], object] | None,
    progress: Callable[[int], object] | None,
    chunk: int,
) -> None:
    """A log's raw lines: repeated lines answered from the line cache (see ``lines.py``)."""
    state = LinePass(
        lines.reader,
        lines.stats,
        lines.path,
        run.summary,
        answer,
        render=None if write is None else output_line,
        whatif=run.whatif,
        skip_invalid=lines.skip_invalid,
        on_invalid=lines.on_invalid,
    )
    out: list[str] = []

    def written(read: int) -> None:
        if write is not None:
            for at in range(0, len(out), WRITE_LINES):  # (each piece ends in its newline)
                write("".join(out[at : at + WRITE_LINES]))
        out.clear()  # (without ``write``: placeholders)
        if progress is not None and read:
            progress(read)

    try:
        while True:
            read = state.chunk(lines.numbered, chunk, out)
            written(read)
            if state.error is not None or read < chunk:
                break
        raw = iter(lines.blocks) if lines.blocks is not None else None
        number = lines.first
        while raw is not None and state.error is None:
            try:
                block = list(islice(raw, chunk))
            except READ_ERRORS as exc:  # a plain file: the lines of this block are lost with it
                state.error = FlowLogError(lines.path, number, "", f"cannot read: {exc}")
                break
            if not block:
                break
            state.block(block, number, out)
            number += len(block)
            written(len(block))
    finally:
        lines.close()
        state.flush()
    run.replaced = state.replaced
    run.error = state.error


def _run_records(
    records: Iterable[FlowRecord],
    answer: Answerer,
    run: AuditRun,
    write: Callable[[str], object] | None,
    progress: Callable[[int], object] | None,
    chunk: int,
) -> None:
    """Records from anywhere, batch by batch, each distinct flow decided once."""
    summary, whatif = run.summary, run.whatif

    def until_error() -> Iterator[FlowRecord]:
        # A bad line ends the read; what came before it is still decided and written.
        try:
            yield from records
        except NetpolPdpError as err:
            run.error = err

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
