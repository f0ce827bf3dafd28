"""The audit pass over a log's raw lines: a line seen before is answered from what it gave the first time.

Flow logs repeat: the same client calls the same service thousands of times,
and a log of only the flow fields repeats whole lines.  A reader's answer for
a line depends on its text alone (header lines aside: see
:class:`~netpol_pdp.clients.flowlogs.base.Reader`), so this pass keeps, per
distinct raw line (the bytes as read, before decoding), an :class:`Entry`: the
record, its decision (rendered once per distinct flow), the agreement and the
finished output line.  A repeat costs one dictionary lookup; its output line
is reused as it is, and its counts reach the summary and the read statistics
in bulk (``Entry.count``, added by :meth:`LinePass.flush`).

A line not seen before goes the plain way: decoded, parsed by the reader
(errors and ``--skip-invalid`` as
:func:`~netpol_pdp.clients.flowlogs.reading.parse_lines` has them), its flow
decided with the chunk's other new flows (each distinct flow once, as
:func:`~netpol_pdp.clients.auditing.deciding.decide_batches` does), rendered
by :func:`~netpol_pdp.clients.auditing.output.output_line`.  Logs whose lines
never repeat (Hubble and VPC records carry times, ports, counters) turn the
line cache off after :data:`PROBE_LINES` lines, and still share each distinct
flow's rendered decision.

A plain file's lines are read in blocks of 4,096 and the line cache is asked
for the whole block at once (a C-level ``map``; repeats counted with a
``Counter``), so a repeat costs no Python bytecode of its own; gzip and stdin
come line by line, so that a read error names its line.

Memory is bounded: at most :data:`LINE_CACHE_SIZE` lines are remembered
(counts flushed and the cache emptied when full), and at most ``MEMO_SIZE``
distinct flows, as in ``deciding``.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from itertools import islice

from netpol_pdp.clients.auditing.agreement import Agreement, compare
from netpol_pdp.clients.auditing.deciding import MEMO_SIZE
from netpol_pdp.clients.auditing.output import Rendered
from netpol_pdp.clients.auditing.summary import AuditSummary
from netpol_pdp.clients.auditing.whatif import WhatIf
from netpol_pdp.clients.flowlogs.base import Quick, RawLine, Reader
from netpol_pdp.clients.flowlogs.errors import FlowLogError, LineError
from netpol_pdp.clients.flowlogs.record import FlowRecord, ReadStats, Skip
from netpol_pdp.clients.flowlogs.source import READ_ERRORS, Undecodable, decode_line
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.errors import NetpolPdpError
from netpol_pdp.index.flows import Flow

#: Distinct raw lines remembered.  Each holds its line, its output line and a few
#: references (~0.6 KiB for our JSON Lines: ~40 MiB when full); flushed and emptied when full.
LINE_CACHE_SIZE = 65_536
#: After this many lines, the line cache is turned off if fewer than 1 in 4 were repeats.
PROBE_LINES = 16_384

#: Per distinct flow: the decision rendered once, and the what-if world's decision (or None).
Answer = tuple[Rendered, Decision | None]
#: How an output line is made (``output_line``): the text, and whether input fields were overridden.
Render = Callable[[FlowRecord, Rendered, Agreement | None], tuple[str, bool]]
#: A new record of a chunk: (its place in the output, its entry, the raw line to remember once answered)
Fresh = tuple[int, "Entry", RawLine | None]


@dataclasses.dataclass(slots=True, eq=False)
class Entry:
    """What one distinct raw line gave: a record with its answer and output line, or a skip's ``reason``.

    ``count`` is how many repeats of the line are not yet in the counters.
    """

    record: FlowRecord | None
    reason: str = ""
    decision: Decision | None = None
    changed: Decision | None = None
    agreement: Agreement | None = None
    #: the output line with its newline (for a quick key's entry: what follows the head)
    output: str | None = None
    clash: bool = False
    count: int = 0
    #: for an entry kept by a reader's quick key: the first line's own head (``output`` is what follows it)
    head: str | None = None


#: The stand-in for a line the cache does not know (in :meth:`LinePass.block`)
_MISS = Entry(None)
_OUTPUT = operator.attrgetter("output")


class LinePass:
    """One pass's state: the reader and the counters it fills, the line cache and the distinct flows."""

    def __init__(
        self,
        reader: Reader,
        stats: ReadStats,
        path: str,
        summary: AuditSummary,
        answer: Callable[[Sequence[Flow]], list[Answer]],
        *,
        render: Render | None,
        whatif: WhatIf | None = None,
        skip_invalid: bool = False,
        on_invalid: Callable[[FlowLogError], None] | None = None,
    ) -> None:
        self.reader = reader
        self.stats = stats
        self.path = path
        self.summary = summary
        self.answer = answer
        self.render = render
        self.whatif = whatif
        self.skip_invalid = skip_invalid
        self.on_invalid = on_invalid
        self.lines: dict[RawLine, Entry] = {}
        #: a reader's quick key -> entry (not in a what-if pass: the diff wants each record)
        self.keyed: dict[Hashable, Entry] = {}
        self.quick: Quick | None = None if whatif is not None else getattr(reader, "quick", None)
        self.flows: dict[Flow, Answer] = {}
        self.caching = True
        self.seen = 0
        self.repeats = 0
        #: output lines whose input fields were overridden by the decision's
        self.replaced = 0
        #: the error that ended the read (a bad line without ``skip_invalid``, an unreadable file)
        self.error: NetpolPdpError | None = None

    def chunk(self, numbered: Iterator[tuple[int, RawLine]], size: int, out: list[str]) -> int:
        """Up to ``size`` lines, their output lines appended to ``out`` in order; returns the lines read.

        Stops early at an error that ends the read (:attr:`error`): the lines
        before it are still answered.
        """
        get = self.lines.get
        whatif = self.whatif
        fresh: list[Fresh] = []
        waiting: list[tuple[int, Entry, str]] = []  # repeats of records first seen in this chunk
        diff: list[tuple[int, Entry, bool]] = []  # what-if: records in line order (number, entry, first?)
        read = repeats = number = 0
        try:
            if not self.caching:  # lines that never repeat whole: not even hashed
                quick, keyed = self.quick, self.keyed
                for number, raw in islice(numbered, size):
                    read += 1
                    if quick is not None:  # a known quick key with its output: the common case, inline
                        known = quick(raw, number)
                        if isinstance(known, Skip):
                            self.stats.lines += 1
                            self.stats.skipped[known.reason] += 1
                            continue
                        if known is not None:
                            key, line_head = known
                            try:
                                entry = keyed.get(key)
                            except TypeError:
                                entry = None
                            if entry is not None and entry.output is not None:
                                entry.count += 1
                                out.append(line_head)  # two pieces: joined once, when written
                                out.append(entry.output)
                                continue
                    text = self._miss(number, raw, len(out), fresh, waiting, diff)
                    if text is not None:
                        out.append(text)
                    elif self.error is not None:
                        break
                numbered = iter(())
            for number, raw in islice(numbered, size):
                read += 1
                entry = get(raw)
                if entry is not None:
                    repeats += 1
                    entry.count += 1
                    if entry.output is not None:
                        out.append(entry.output)
                    elif entry.decision is None and entry.record is not None:
                        waiting.append((len(out), entry, ""))  # first seen in this chunk: answered at its end
                        out.append("")
                    if whatif is not None and entry.record is not None:
                        diff.append((number, entry, False))
                    continue
                text = self._miss(number, raw, len(out), fresh, waiting, diff)
                if text is not None:
                    out.append(text)
                elif self.error is not None:
                    break
        except READ_ERRORS as exc:
            self.error = FlowLogError(self.path, number + 1, "", f"cannot read: {exc}")
        except NetpolPdpError as exc:  # raised by the source of the lines
            self.error = exc
        self._finish(fresh, waiting, diff, out, read, repeats)
        return read

    def block(self, raws: Sequence[RawLine], first: int, out: list[str]) -> None:
        """Consecutive raw lines numbered from ``first``: as :meth:`chunk`, repeats looked up all at once.

        The line cache is asked for every line in one C-level ``map``; the
        lines it does not answer with an output line (new lines, skips) are
        then taken one by one, in order.  Repeats are counted with a
        ``Counter`` and their output lines joined as they are.
        """
        if not self.caching or self.render is None or self.whatif is not None:
            self.chunk(enumerate(raws, first), len(raws), out)
            return
        get = self.lines.get
        entries = list(map(get, raws))
        misses = 0
        at = -1
        try:
            while True:  # the lines not seen before: a stand-in, so that every entry has an output field
                at = entries.index(None, at + 1)
                entries[at] = _MISS
                misses += 1
        except ValueError:
            pass
        outputs: list[str | None] = list(map(_OUTPUT, entries))
        fresh: list[Fresh] = []
        waiting: list[tuple[int, Entry, str]] = []
        at = -1
        end = len(raws)
        try:
            while True:  # lines without an output line of their own yet, in order
                at = outputs.index(None, at + 1)
                entry = entries[at]
                if entry is not _MISS:
                    continue  # a skip (counted below) or ... nothing else has no output
                raw = raws[at]
                again = get(raw)  # seen earlier in this block?
                if again is not None:
                    again.count += 1
                    if again.record is not None:
                        waiting.append((at, again, ""))
                        outputs[at] = ""
                    continue
                outputs[at] = self._miss(first + at, raw, at, fresh, waiting, None)
                if self.error is not None:
                    end = at
                    break
        except ValueError:
            pass
        if end < len(raws):  # the read ends at a bad line: nothing after it counts
            del entries[end:], outputs[end:]
        for entry, count in Counter(entries).items():
            if entry is not _MISS and entry is not None:
                entry.count += count
        self._finish(fresh, waiting, [], outputs, 0, 0)
        out.extend(filter(None, outputs))
        self.seen += end
        self.repeats += end - misses

    def _miss(
        self,
        number: int,
        raw: RawLine,
        at: int,
        fresh: list[Fresh],
        waiting: list[tuple[int, Entry, str]],
        diff: list[tuple[int, Entry, bool]] | None,
    ) -> str | None:
        """A line the line cache has not answered: its output text, "" (answered later at ``at``) or None."""
        head: str | None = None
        key: Hashable = None
        if self.quick is not None:
            known = self.quick(raw, number)
            if isinstance(known, Skip):
                self.stats.lines += 1
                self.stats.skipped[known.reason] += 1
                return None
            if known is not None:
                key, line_head = known
                try:
                    entry = self.keyed.get(key)
                except TypeError:  # an unhashable value where a string belongs: parse to report it
                    entry = None
                else:
                    head = line_head
                if entry is not None:
                    entry.count += 1
                    if entry.output is not None:
                        line = line_head + entry.output
                        if self.caching:  # this very line's next repeat: from the line cache
                            self.lines[raw] = Entry(  # (dataclasses.replace: ~5x the cost)
                                entry.record, entry.reason, entry.decision, entry.changed, entry.agreement,
                                line, entry.clash,
                            )
                        return line
                    if entry.decision is None:
                        waiting.append((at, entry, line_head))
                        return ""
                    return None
        result = self._parse(number, raw)
        if result is None:
            return None
        if type(result) is Skip:
            self.stats.skipped[result.reason] += 1
            if self.caching and result.reason != "header":  # a header line may set the reader up
                self.lines[raw] = Entry(None, result.reason)
            return None
        assert type(result) is FlowRecord
        entry = Entry(result, head=head)
        if head is not None:
            self.keyed[key] = entry
            fresh.append((at, entry, raw if self.caching else None))
        else:
            if self.caching:
                self.lines[raw] = entry
            fresh.append((at, entry, None))
        if diff is not None and self.whatif is not None:
            diff.append((number, entry, True))
        return ""

    def _finish(
        self,
        fresh: list[Fresh],
        waiting: list[tuple[int, Entry, str]],
        diff: list[tuple[int, Entry, bool]],
        out: list[str] | list[str | None],
        read: int,
        repeats: int,
    ) -> None:
        """Answer the new records, fill in their repeats, and keep the caches bounded."""
        if fresh:
            self._answer(fresh, out)
        for at, entry, head in waiting:
            if entry.output is not None:
                out[at] = head + entry.output
        if diff:
            self._whatif(diff)
        self.seen += read
        self.repeats += repeats
        keyed = self.keyed
        if self.caching and self.seen >= PROBE_LINES and self.repeats * 4 < self.seen:
            self.flush()
            self.lines.clear()
            self.caching = False
        elif len(self.lines) >= LINE_CACHE_SIZE or len(keyed) >= LINE_CACHE_SIZE:
            self.flush()
            self.lines.clear()
            keyed.clear()

    def _parse(self, number: int, raw: RawLine) -> FlowRecord | Skip | None:
        """The reader's answer for a line not seen before; None for a blank or a bad line."""
        text = decode_line(raw, number) if isinstance(raw, bytes) else raw
        if not text.strip():
            return None
        self.stats.lines += 1
        try:
            if type(text) is Undecodable:
                raise LineError("", str(text))
            return self.reader.parse(number, text)
        except LineError as exc:
            error = FlowLogError(self.path, number, exc.field, exc.message)
            if not self.skip_invalid:
                self.error = error
                return None
            self.stats.add_invalid(number, exc.field, str(error))
            if self.on_invalid is not None:
                self.on_invalid(error)
            return None

    def _answer(self, fresh: list[Fresh], out: list[str] | list[str | None]) -> None:
        """Decide the chunk's new records (each distinct flow once), render them, remember their lines."""
        flows = self.flows
        records = [entry.record for _, entry, _ in fresh]
        missing = list(dict.fromkeys(f for r in records if r is not None and (f := r.flow) not in flows))
        if missing:
            if len(flows) + len(missing) > MEMO_SIZE:
                flows.clear()  # then every flow of these records is missing, not only the new ones
                missing = list(dict.fromkeys(r.flow for r in records if r is not None))
            answers = self.answer(missing)
            if len(answers) != len(missing):
                raise RuntimeError(f"the decider answered {len(answers)} flows for {len(missing)} asked")
            flows.update(zip(missing, answers, strict=True))
        summary = self.summary
        summary.dedup.flows += len(fresh)
        summary.dedup.decided += len(missing)
        self.stats.records += len(fresh)
        add, render = summary.add, self.render
        lines = self.lines
        for at, entry, raw in fresh:
            record = entry.record
            assert record is not None
            rendered, changed = flows[record.flow]
            decision = rendered.decision
            observed = record.observed
            agreement = None if observed is None else compare(observed, record.direction, decision)
            add(record, decision, agreement)
            entry.decision, entry.changed, entry.agreement = decision, changed, agreement
            if render is not None:
                line, entry.clash = render(record, rendered, agreement)
                line += "\n"
                self.replaced += entry.clash
                out[at] = line
                head = entry.head
                if head is None:
                    entry.output = line
                else:  # kept by its key: the part after the line's own head is the same for every line
                    assert line.startswith(head), "a reader's quick head is not its output's start"
                    entry.output = line[len(head) :]
                    if raw is not None:
                        lines[raw] = Entry(record, "", decision, changed, agreement, line, entry.clash)

    def _whatif(self, diff: list[tuple[int, Entry, bool]]) -> None:
        """The chunk's records into the what-if diff, in line order (it keeps first and last seen)."""
        whatif = self.whatif
        assert whatif is not None
        for number, entry, first in diff:
            record, before, after = entry.record, entry.decision, entry.changed
            if record is None or before is None or after is None:
                continue
            if first:
                whatif.add(record, before, after)
            elif before.verdict is after.verdict:
                whatif.flows += 1  # what WhatIf.add counts of an unchanged flow
            else:
                whatif.add(dataclasses.replace(record, line=number), before, after)

    def flush(self) -> None:
        """Add the repeats counted in the entries to the summary and the read statistics."""
        stats, summary = self.stats, self.summary
        for entry in itertools.chain(self.lines.values(), self.keyed.values()):
            count = entry.count
            if not count:
                continue
            entry.count = 0
            stats.lines += count
            record = entry.record
            if record is None:
                stats.skipped[entry.reason] += count
                continue
            assert entry.decision is not None
            stats.records += count
            summary.dedup.flows += count
            summary.add_repeats(record.flow, entry.decision, entry.agreement, count)
            self.replaced += entry.clash * count
