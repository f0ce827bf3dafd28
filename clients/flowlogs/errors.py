"""The one error a flow-log reader raises: a line it cannot read, located exactly."""

from __future__ import annotations

from netpol_pdp.index.errors import NetpolPdpError

#: The longest message a bad line reports: a quoted value may be megabytes long.
MAX_MESSAGE = 200


def clip(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (with ``...``): a bad value quoted in a message stays short."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FlowLogError(NetpolPdpError):
    """A flow log could not be read at ``source`` line ``line``; ``field`` names the bad field.

    ``line`` is 0 for problems with the log as a whole (cannot open it, cannot tell
    its format).  The message reads ``source: line N: field: message`` (field and
    message clipped, so a huge bad value is not quoted in full);
    :attr:`located` is the same without the source.
    """

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        self.source = source
        self.line = line
        self.field = clip(field)
        self.message = clip(message, MAX_MESSAGE)
        super().__init__(f"{source}: {self.located}" if line else f"{source}: {self.detail}")

    @property
    def detail(self) -> str:
        """``field: message`` (or just the message when no field is to blame)."""
        return f"{self.field}: {self.message}" if self.field else self.message

    @property
    def located(self) -> str:
        """``line N: field: message``: the message without the file, for a command given one log."""
        return f"line {self.line}: {self.detail}" if self.line else self.detail


class LineError(Exception):
    """Raised by a reader's ``parse`` for one bad line; :mod:`reading` adds file and line.

    Kept apart from :class:`FlowLogError` so readers stay free of file bookkeeping.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
