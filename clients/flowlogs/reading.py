"""The entry point: :func:`read_flowlog` opens a log, picks its reader, and streams records.

A :class:`FlowLog` is iterated once; it yields :class:`FlowRecord` in line order
and counts everything else in ``stats`` (skips by reason, invalid lines).  A
malformed line raises :class:`FlowLogError` naming the file, line and field, or
with ``skip_invalid`` is counted and quoted in ``stats.invalid_examples``.
Only the first few lines are buffered (for detection): memory stays flat.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import IO

from netpol_pdp.clients.flowlogs.base import RawLine, Reader
from netpol_pdp.clients.flowlogs.detect import READERS, SNIFF_LINES, detect_format
from netpol_pdp.clients.flowlogs.errors import FlowLogError, LineError, clip
from netpol_pdp.clients.flowlogs.record import FlowRecord, ReadStats, Skip
from netpol_pdp.clients.flowlogs.source import Undecodable, iter_lines, open_binary

#: ``--format`` name -> reader class.
FORMATS: dict[str, type[Reader]] = {reader.name: reader for reader in READERS}


def usable(text: str) -> bool:
    """A line detection may look at: not blank, and text."""
    return bool(text.strip()) and type(text) is not Undecodable


class FlowLog:
    """One flow log being read: iterate it for records; ``stats`` fills as it goes.

    The file closes when iteration ends (or fails); use it as a context manager
    when a read may stop early.
    """

    def __init__(
        self,
        path: str,
        fmt: str | None = None,
        skip_invalid: bool = False,
        on_invalid: Callable[[FlowLogError], None] | None = None,
    ) -> None:
        if fmt is not None and fmt not in FORMATS:
            raise FlowLogError(path, 0, "--format", f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        self.path = path
        self.skip_invalid = skip_invalid
        self.on_invalid = on_invalid
        #: the header line every partition's reader is fed first (set by partitions/read_preamble)
        self.preamble: tuple[int, str] | None = None
        self._stack = contextlib.ExitStack()
        try:
            self._binary: IO[bytes] = open_binary(path, self._stack)
            self._lines = iter_lines(path, self._binary)
            head: list[tuple[int, str]] = []
            for number, text in self._lines:
                head.append((number, text))
                if sum(1 for _, t in head if usable(t)) >= SNIFF_LINES:
                    break
            self._head = head
            reader = FORMATS[fmt] if fmt else self._detect([t for _, t in head if usable(t)])
        except BaseException:
            self._stack.close()
            raise
        self.reader: Reader = reader()
        self.stats = ReadStats(format=reader.name)

    def _detect(self, first: list[str]) -> type[Reader]:
        if not first:
            return FORMATS["jsonl"]  # an empty log is empty in every format
        reader = detect_format(first)
        if reader is None:
            shown = clip(first[0])
            raise FlowLogError(
                self.path,
                0,
                "",
                f"cannot tell the format from the first line {shown!r}: give --format ({', '.join(FORMATS)})",
            )
        return reader

    def __iter__(self) -> Iterator[FlowRecord]:
        try:
            yield from parse_lines(
                self.reader,
                itertools.chain(self._head, self._lines),
                self.stats,
                self.path,
                self.skip_invalid,
                self.on_invalid,
            )
        finally:
            self._stack.close()

    def raw_lines(self) -> RawLines:
        """Instead of iterating: the numbered raw lines and the reader, for the audit's line pass.

        The first lines come as text (read for detection), the rest as the
        file's bytes, undecoded; the log closes when they are read (or on
        :meth:`close`).
        """
        head = self._head
        after = head[-1][0] + 1 if head else 1
        plain = type(self._binary) is io.BufferedReader and self.path != "-"
        return RawLines(
            self.reader,
            iter(head) if plain else numbered_lines(head, self._binary, after),
            self.stats,
            self.path,
            self.skip_invalid,
            self.on_invalid,
            self._stack.close,
            self._binary if plain else None,
            after,
        )

    def partitions(self, size: int) -> Iterator[list[tuple[int, str]]]:
        """The raw lines in chunks of ``size``, for readers in other processes (instead of iterating).

        A header line (CSV, VPC custom format) is parsed here, counted in
        ``stats`` and kept in :attr:`preamble`: each partition's reader is fed it
        first, so every partition reads its lines as the whole log would.
        """
        self.preamble = None
        looking = True
        try:
            chunk: list[tuple[int, str]] = []
            for number, text in itertools.chain(self._head, self._lines):
                if looking and usable(text):
                    looking = False
                    if self._is_header(number, text):
                        self.preamble = (number, text)
                        self.stats.lines += 1
                        self.stats.skipped["header"] += 1
                        continue
                chunk.append((number, text))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        finally:
            self._stack.close()

    def read_preamble(self) -> tuple[int, str] | None:
        """Instead of iterating: the header line (counted in ``stats``), if the log starts with one.

        For partitions that workers read by byte range; the log is closed after.
        """
        self.preamble = None
        try:
            first = next(((n, t) for n, t in self._head if usable(t)), None)
            if first is not None and self._is_header(*first):
                self.preamble = first
                self.stats.lines += 1
                self.stats.skipped["header"] += 1
        finally:
            self._stack.close()
        return self.preamble

    def _is_header(self, number: int, text: str) -> bool:
        try:
            first = self.reader.parse(number, text)
        except LineError:
            return False  # a bad first line is reported by the partition that reads it
        return isinstance(first, Skip) and first.reason == "header"

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> FlowLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass(slots=True)
class RawLines:
    """A log's numbered raw lines with the reader that parses them and the counts to fill.

    What the audit's line pass reads: a line is decoded and parsed only the
    first time its bytes are seen (see ``clients/auditing/lines.py``).
    """

    reader: Reader
    numbered: Iterator[tuple[int, RawLine]]
    stats: ReadStats
    path: str
    skip_invalid: bool = False
    on_invalid: Callable[[FlowLogError], None] | None = None
    #: called when the pass is done with the lines (closes the log)
    close: Callable[[], object] = lambda: None
    #: after ``numbered``: the rest of a plain file's lines, read in blocks, numbered from ``first``
    #: (gzip and stdin come line by line in ``numbered``, so a read error names its line)
    blocks: Iterable[bytes] | None = None
    first: int = 1


def numbered_lines(
    head: Iterable[tuple[int, str]], raw: Iterable[bytes] | None = None, first: int = 1
) -> Iterator[tuple[int, RawLine]]:
    """The head's numbered text, then the ``raw`` lines numbered from ``first``.

    Built of C iterators: no Python step per line.
    """
    if raw is None:
        return iter(head)
    return itertools.chain(head, enumerate(raw, first))


def parse_lines(
    reader: Reader,
    lines: Iterable[tuple[int, str]],
    stats: ReadStats,
    path: str,
    skip_invalid: bool = False,
    on_invalid: Callable[[FlowLogError], None] | None = None,
) -> Iterator[FlowRecord]:
    """The records of numbered lines, counting blanks out and skips and bad lines in ``stats``.

    The one loop every read goes through, in this process or in a worker's
    partition, so both count and fail alike.
    """
    parse = reader.parse
    for number, text in lines:
        if not text.strip():
            continue
        stats.lines += 1
        try:
            if type(text) is Undecodable:
                raise LineError("", str(text))
            result = parse(number, text)
        except LineError as exc:
            error = FlowLogError(path, number, exc.field, exc.message)
            if not skip_invalid:
                raise error from None
            stats.add_invalid(number, exc.field, str(error))
            if on_invalid is not None:
                on_invalid(error)
            continue
        if isinstance(result, Skip):
            stats.skipped[result.reason] += 1
            continue
        stats.records += 1
        yield result


def read_flowlog(
    path: str,
    fmt: str | None = None,
    skip_invalid: bool = False,
    on_invalid: Callable[[FlowLogError], None] | None = None,
) -> FlowLog:
    """Open ``path`` (a file, ``-`` for stdin, an fsspec URL; gzip or not) as a flow log.

    ``fmt`` forces a reader by name (see :data:`FORMATS`); otherwise the format
    is detected from the first lines.  Raises :class:`FlowLogError` when the log
    cannot be opened or its format cannot be told.  With ``skip_invalid``, each
    malformed line is counted and passed to ``on_invalid`` (to warn as it happens).
    """
    return FlowLog(path, fmt, skip_invalid, on_invalid)
