"""The one error a flow-log reader raises: a line it cannot read, located exactly."""

from __future__ import annotations

from netpol_pdp.index.errors import NetpolPdpError


class FlowLogError(NetpolPdpError):
    """A flow log could not be read at ``source`` line ``line``; ``field`` names the bad field.

    ``line`` is 0 for problems with the log as a whole (cannot open it, cannot tell
    its format).  The message reads ``source: line N: field: message``.
    """

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.message = message
        where = f"{source}: line {line}" if line else source
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class LineError(Exception):
    """Raised by a reader's ``parse`` for one bad line; :mod:`reading` adds file and line.

    Kept apart from :class:`FlowLogError` so readers stay free of file bookkeeping.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
