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
import sys
from collections.abc import Iterator
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
            import fsspec  # type: ignore[import-untyped]  # noqa: PLC0415 - optional: only URLs need it
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


def iter_lines(path: str, binary: IO[bytes]) -> Iterator[tuple[int, str]]:
    """``(line number from 1, text without the line end)``; blank lines are kept (numbering).

    A line that is not UTF-8 comes as an :class:`Undecodable` holding the reason,
    so that ``--skip-invalid`` can skip it like any other bad line.
    """
    number = 0
    try:
        for raw in binary:
            number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, Undecodable(f"not UTF-8 text (byte {exc.start})")
                continue
            yield number, text.rstrip("\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FlowLogError(path, number + 1, "", f"cannot read: {exc}") from None
