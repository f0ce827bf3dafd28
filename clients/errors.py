"""The command line's own error: a message for the user and the exit status to end with."""

from __future__ import annotations


class CommandError(Exception):
    """Bad input the user can fix (a malformed line, a bad option): ``error: <message>``, no traceback."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status
