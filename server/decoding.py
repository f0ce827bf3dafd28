"""Request bytes -> messages, refusing what protobuf would read wrongly or not at all.

Two cases the generated deserializers get wrong for a decision point (issue 16):

- **undecodable bytes**: grpc turns the deserializer's exception into
  ``INTERNAL: Exception deserializing request!``.  Here the deserializer
  returns a :class:`Malformed` instead, and the servicer answers
  ``INVALID_ARGUMENT`` naming the message type;
- **integers wider than their field**: protobuf reads a ``uint32`` sent as a
  wider varint modulo 2**32, so a port of 2**32 + 8080 was decided as 8080.
  Such a varint has four continuation bytes in a row; ``bytes.translate``
  and ``in`` find those (in C, a few ns per flow), and only then are the bytes walked
  (:func:`wide_field`) to name the field.  (``ByteSize()`` of the parsed
  message against the input's length would also tell, but costs a whole
  encoding: ~90 ns per flow.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_UINT32 = FieldDescriptor.TYPE_UINT32
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_MAX_UINT32 = 0xFFFFFFFF
#: Four bytes with the continuation bit in a row: every varint of 2**28 or more has
#: them.  A cheap scan in C that finds any over-wide uint32 (and, rarely, non-ASCII
#: text or large integers, which :func:`wide_field` then finds innocent).
_HIGH_BITS = bytes(0 if b < 0x80 else 1 for b in range(256))
_FOUR_HIGH = b"\x01" * 4


def _may_hold_widevarint(data: bytes) -> bool:
    """Whether ``data`` has four bytes with the continuation bit in a row (two C passes)."""
    return _FOUR_HIGH in data.translate(_HIGH_BITS)


class Malformed:
    """A request that could not be read as its message; ``message`` says why (a status message)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def lenient(cls: Any) -> Callable[[bytes], Any]:
    """A request deserializer for the message class ``cls`` returning a message or a :class:`Malformed`."""
    name = cls.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            message = cls.FromString(data)
        except Exception as exc:  # protobuf's DecodeError, or a RuntimeError from upb
            return Malformed(f"request: not a valid {name} message ({exc})")
        if _may_hold_widevarint(data):
            problem = wide_field(cls.DESCRIPTOR, data)
            if problem is not None:
                return Malformed(problem)
        return message

    return parse


def wide_field(descriptor: Descriptor, data: bytes, path: str = "") -> str | None:
    """``<field path>: ...`` for the first uint32 field of ``data`` sent wider than 32 bits, else None."""
    seen: Counter[int] = Counter()
    for number, value in _fields(data):
        field = descriptor.fields_by_number.get(number)
        if field is None:
            continue
        name = path + field.name
        if field.is_repeated:
            name += f"[{seen[number]}]"
            seen[number] += 1
        if field.type == _UINT32 and isinstance(value, int) and value > _MAX_UINT32:
            return f"{name}: {value} does not fit in 32 bits (a port is 0..65535)"
        if field.type == _MESSAGE and field.message_type is not None and isinstance(value, bytes):
            found = wide_field(field.message_type, value, name + ".")
            if found is not None:
                return found
    return None


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, varint value or length-delimited bytes) of each field; others skipped."""
    pos, end = 0, len(data)
    try:
        while pos < end:
            key, pos = varint(data, pos)
            kind = key & 7
            if kind == 0:
                value, pos = varint(data, pos)
                yield key >> 3, value
            elif kind == 2:
                size, pos = varint(data, pos)
                yield key >> 3, data[pos : pos + size]
                pos += size
            elif kind == 1:
                pos += 8
            elif kind == 5:
                pos += 4
            else:
                return
    except IndexError:
        return


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (IndexError past the end)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
