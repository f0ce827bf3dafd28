"""Opening a flow log: a path, ``-`` for stdin, or an fsspec URL; gzip is undone transparently.

Gzip is recognised by its magic bytes, not by the name, so ``zcat``-less pipes
(``cat log.gz | netpol-pdp audit -``) work too.  Lines are read as bytes and
decoded one at a time, so a bad byte is reported with its line number and
memory stays flat however long the log.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, cast

from netpol_pdp.clients.flowlogs.errors import FlowLogError

GZIP_MAGIC = b"\x1f\x8b"


def is_url(path: str) -> bool:
    """``scheme://...`` (``s3://``, ``memory://``, ``file://``): opened with fsspec."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isidentifier()


def _open_binary(path: str, stack: contextlib.ExitStack) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    if is_url(path):
        try:
            import fsspec  # noqa: PLC0415 - optional: only URLs need it
        except ImportError:
            raise FlowLogError(path, 0, "", "reading a URL needs fsspec (pip install fsspec)") from None
        try:
            return cast(IO[bytes], stack.enter_context(fsspec.open(path, "rb")))
        except (OSError, ValueError, ImportError) as exc:
            raise FlowLogError(path, 0, "", str(exc)) from None
    try:
        return stack.enter_context(open(path, "rb"))  # closed by the stack
    except OSError as exc:
        raise FlowLogError(path, 0, "", str(exc.strerror or exc)) from None


def open_binary(path: str, stack: contextlib.ExitStack) -> IO[bytes]:
    """The log's bytes, gunzipped when they start with the gzip magic."""
    raw = _open_binary(path, stack)
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return cast(IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=buffered, mode="rb")))
    return cast(IO[bytes], buffered)


class Undecodable(str):
    """A line that is not UTF-8: its text is the reason, so the reader reports it as a bad line."""

    __slots__ = ()


#: What reading a log's bytes may raise (gzip.BadGzipFile is an OSError).
READ_ERRORS = (OSError, EOFError, zlib.error)


def decode_line(raw: bytes, number: int) -> str:
    """Line ``number`` as text without its line end, or an :class:`Undecodable` saying why not.

    A byte-order mark opening the file (Excel's "CSV UTF-8" writes one) is
    dropped: it would hide the header's first column name and defeat format
    detection.
    """
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return Undecodable(f"not UTF-8 text (byte {exc.start})")
    return text.rstrip("\r\n")


def iter_lines(path: str, binary: Iterable[bytes], first: int = 1) -> Iterator[tuple[int, str]]:
    """``(line number, text without the line end)`` from ``first`` on; blank lines are kept (numbering).

    A line that is not UTF-8 comes as an :class:`Undecodable` holding the reason,
    so that ``--skip-invalid`` can skip it like any other bad line (see :func:`decode_line`).
    """
    number = first - 1
    try:
        for raw in binary:
            number += 1
            yield number, decode_line(raw, number)
    except READ_ERRORS as exc:
        raise FlowLogError(path, number + 1, "", f"cannot read: {exc}") from None


# --- byte ranges: partitions a worker reads by itself ------------------------------------


def splittable(path: str) -> bool:
    """A plain (not gzipped) file or URL that other processes can open: read by byte ranges.

    stdin, gzip and ``memory://`` (which lives in one process) are read here instead.
    """
    if path == "-" or path.startswith("memory://"):
        return False
    with contextlib.ExitStack() as stack:
        try:
            raw = _open_binary(path, stack)
            return bool(raw.read(2) != GZIP_MAGIC)
        except (FlowLogError, OSError):
            return False


def size_of(path: str) -> int:
    if is_url(path):
        import fsspec  # noqa: PLC0415 - optional: only URLs need it

        fs, _, [where] = fsspec.get_fs_token_paths(path)
        return int(fs.size(where))
    return os.path.getsize(path)


def range_lines(path: str, start: int, end: int) -> Iterator[bytes]:
    """The lines that *start* in bytes ``[start, end)``: ranges that tile a file yield each line once."""
    with contextlib.ExitStack() as stack:
        f = _open_binary(path, stack)
        if start > 0:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()  # the line under way belongs to the range before
        while f.tell() < end:
            line = f.readline()
            if not line:
                return
            yield line


def count_range(path: str, start: int, end: int) -> int:
    """How many lines start in ``[start, end)`` (to number the next range's lines)."""
    return sum(1 for _ in range_lines(path, start, end))


def header_end(path: str, line: int) -> int:
    """The byte offset just after line ``line`` (the header a partition must not read again)."""
    with contextlib.ExitStack() as stack:
        f = _open_binary(path, stack)
        for _ in range(line):
            f.readline()
        return int(f.tell())
