"""Errors of the model and of flows, in the Kubernetes vocabulary.

Exception tree::

    NetpolPdpError
    ├── ValidationError      one object failed validation; carries every FieldError
    ├── SourceError          a manifest source could not be loaded (file, document, object)
    └── FlowError            one flow is malformed (names the field)

Paths are built as validation descends (``FieldPath("spec").child("ingress").index(0)``)
so that every message names the exact field, as ``kubectl`` would:
``NetworkPolicy default/web: spec.ingress[0].ports[1].endPort: must be ...``.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass

#: Longest problem line reported (a status's ``last_error``, a log line, a CLI error):
#: a line quotes the user's value, which may be a megabyte string or an alias bomb.
MAX_PROBLEM = 1000

#: The quoting of a bad value in a message: a few elements per level, a few levels,
#: strings cut short; it never walks more of the value than it prints.
_value_repr = reprlib.Repr()
_value_repr.maxstring = 120
_value_repr.maxother = 120
_value_repr.maxlevel = 2
_value_repr.maxlist = _value_repr.maxtuple = _value_repr.maxdict = _value_repr.maxset = 6


def capped(text: str, limit: int = MAX_PROBLEM) -> str:
    """``text``, cut to ``limit`` characters when longer (and saying how long it was)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text):,} characters)"


def quoted(value: object) -> str:
    """A short ``repr`` of a value being reported as wrong (bounded, whatever the value)."""
    return capped(_value_repr.repr(value), 300)


class FieldPath:
    """An immutable Kubernetes-style field path (``spec.ingress[0].from[1]``)."""

    __slots__ = ("_text",)

    def __init__(self, text: str = "") -> None:
        self._text = text

    def child(self, name: str) -> FieldPath:
        return FieldPath(f"{self._text}.{name}" if self._text else name)

    def index(self, i: int) -> FieldPath:
        return FieldPath(f"{self._text}[{i}]")

    def key(self, k: str) -> FieldPath:
        return FieldPath(f"{self._text}[{k}]")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"FieldPath({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldPath) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem at one field: ``path`` (as text), a lower-case ``message``, the bad ``value``."""

    path: str
    message: str
    value: object = None

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}: {self.message} (got {quoted(self.value)})"


class NetpolPdpError(Exception):
    """Base of every error this package raises on purpose."""


class ValidationError(NetpolPdpError):
    """An object failed validation; ``errors`` lists every problem found, not just the first."""

    def __init__(self, obj: str, errors: list[FieldError]) -> None:
        self.obj = obj
        self.errors = list(errors)
        lines = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{obj}: {lines}")


class SourceError(NetpolPdpError):
    """A manifest source failed to load; ``problems`` are one line each, already located.

    Each problem reads ``file[:document N]: Kind ns/name: field.path: message``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class FlowError(NetpolPdpError):
    """A flow is malformed: ``field`` names the bad field (``src_ip``, ``dst_port``, ...)."""

    #: Longest message kept: it echoes the caller's value, and the gRPC service sends it
    #: back in the status details, which travel as metadata (limit 16 KiB): an address
    #: of 100,000 characters would otherwise turn INVALID_ARGUMENT into RESOURCE_EXHAUSTED.
    MAX_MESSAGE = 300

    def __init__(self, field: str, message: str) -> None:
        if len(message) > self.MAX_MESSAGE:
            message = f"{message[: self.MAX_MESSAGE - 30]}... ({len(message)} characters)"
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
