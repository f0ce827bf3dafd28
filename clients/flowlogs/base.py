"""The interface every reader implements, and the helpers they share.

A reader is a small class: ``sniff`` says from a log's first non-blank lines
whether it is this format, and an instance (one per log, so it may remember a
header) turns each line into a :class:`FlowRecord`, a :class:`Skip`, or raises
:class:`LineError` naming the field in the log's own vocabulary
(``flow.IP.source``, ``dstaddr``, ``jsonPayload.connection.dest_port``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import msgspec

from netpol_pdp.clients.flowlogs.errors import LineError
from netpol_pdp.clients.flowlogs.record import FlowRecord, Skip
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow, make_flow
from netpol_pdp.index.model import PORT_PROTOCOLS

#: A raw line: the bytes as read, or text (a log's first lines, lines shipped to a worker).
RawLine = bytes | str
#: A reader's optional ``quick(raw, number)``: the line's key and head, a Skip, or None (parse it).
Quick = Callable[[RawLine, int], "Skip | tuple[Hashable, str] | None"]


class Reader(Protocol):
    """A log format.

    ``parse``'s answer for a line depends on the line's text alone, except for
    header lines (``Skip("header")``), which may set the reader up for the lines
    after them: the audit reuses a repeated line's answer (``clients/auditing/lines.py``).

    A reader may also offer ``quick(raw, number)`` (see :data:`Quick`), cheaper
    than ``parse``, for lines that differ only in a field of their own (a time):
    ``(key, head)``, where ``key`` determines the record and its output line
    except for its first characters, ``head``; or a :class:`Skip`; or None when
    the line must be parsed.  The audit parses the first line of each key and
    reuses the rest of its output line for the next ones.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def sniff(cls, lines: Sequence[str]) -> bool:
        """True when these first non-blank lines are this format."""
        ...

    def parse(self, line: int, text: str) -> FlowRecord | Skip:
        """One non-blank line; raises :class:`LineError` when it is malformed."""
        ...


#: msgspec's JSON decoder (measured against orjson and the stdlib scanner on our JSON
#: Lines and Hubble lines: see docs/benchmarks.md).  Where it answers, it answers what
#: ``json.loads`` would (integers of any size stay ints; orjson turns those beyond
#: 64 bits into floats); what it refuses (NaN, lone surrogates, 1e400, bad JSON) is
#: left to ``json.loads`` and its messages.
_DECODE = msgspec.json.Decoder().decode


def json_object(text: str, what: str = "line") -> dict[str, Any]:
    """One line as a JSON object, or a :class:`LineError` saying why not (``what`` names the object)."""
    text = text.strip()
    if text[:1] == "{":
        try:
            value = _DECODE(text)
        except (msgspec.DecodeError, RecursionError, ValueError):
            pass
        else:
            if type(value) is dict:
                return value
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError("", f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:  # json's parser recurses per level: a line of 100,000 '[' exhausts it
        raise LineError("", "not valid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits: int()'s own limit
        raise LineError("", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LineError(what, f"must be an object (got {type(value).__name__})")
    return value


def quick_json(text: str | bytes) -> dict[str, Any] | None:
    """A line as a JSON object when msgspec reads it as one, else None (no error: parse it to report one)."""
    try:
        value = _DECODE(text)
    except (msgspec.DecodeError, RecursionError, ValueError):
        return None
    return value if type(value) is dict else None


def first_json_objects(lines: Sequence[str]) -> list[dict[str, Any]]:
    """The sniffing lines that parse as JSON objects (others are ignored when sniffing)."""
    out = []
    for text in lines:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


#: Raw field values -> the parsed flow, per process: parsing addresses costs more than
#: deciding a cached flow, and logs repeat the same few thousand flows.  Types are part
#: of the key (``True == 1``).  Emptied when full, so memory stays bounded.
_PARSED: dict[tuple[object, ...], Flow] = {}
PARSED_MAX = 200_000


def build_flow(src: object, dst: object, protocol: object, port: object, names: Mapping[str, str]) -> Flow:
    """:func:`make_flow`, with the failing field renamed to the log's own name for it (memoised)."""
    key = (src, dst, protocol, port, type(protocol), type(port))
    try:
        hit = _PARSED.get(key)
    except TypeError:  # an unhashable value (a list where a string belongs): parse it to report it
        return _build_flow(src, dst, protocol, port, names)
    if hit is not None:
        return hit
    flow = _build_flow(src, dst, protocol, port, names)
    if len(_PARSED) >= PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = flow
    return flow


def _build_flow(src: object, dst: object, protocol: object, port: object, names: Mapping[str, str]) -> Flow:
    for field, value in (("src_ip", src), ("dst_ip", dst)):
        if value is None:
            raise LineError(names.get(field, field), "is required")
    try:
        return make_flow(src, dst, protocol, port)
    except FlowError as exc:
        raise LineError(names.get(exc.field, exc.field), exc.message) from None


def is_port_protocol(flow: Flow) -> bool:
    return flow.protocol in PORT_PROTOCOLS


def epoch_to_iso(seconds: int, field: str = "start") -> str:
    """Seconds since the epoch as ISO 8601 text; a time the platform cannot represent is a bad field."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise LineError(field, f"is not a time that can be represented (got {seconds})") from None


def dig(obj: Mapping[str, Any], *path: str) -> Any:
    """``obj[a][b]...`` or None where any step is missing or not an object (JSON objects are dicts)."""
    value: Any = obj
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value
