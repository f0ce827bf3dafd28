"""The ``netpol-pdp`` command line: one argparse parser, one module per subcommand.

A subcommand is a module ``netpol_pdp.clients.cmd_<name>`` exposing
``add_parser(subparsers) -> None`` (which registers the subcommand and its
options) and ``run(args) -> int`` (the exit status).  Adding one is one line in
:data:`COMMANDS`; modules are imported when the parser is built, so a command's
heavy dependencies belong inside its ``run``.

Exit statuses shared by every command: 0 success, 1 a negative answer (a DENY,
validation errors), 2 bad input or a source that cannot be loaded, 130 when
interrupted.  Expected failures print ``error: ...`` and never a traceback; every
message goes through :func:`~netpol_pdp.clients.render.printable`, so a control
character or an undecodable file name can neither garble a terminal nor fail to print.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.render import printable
from netpol_pdp.index.errors import SourceError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

#: Subcommands, in help order; each is ``clients/cmd_<name>.py``.
COMMANDS: list[str] = [
    "decide",
    "reach",
    "matrix",
    "audit",
    "validate",
    "test",
    "serve",
    "status",
    "bench",
]

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.HelpFormatter):
    """Every command's ``--help``: descriptions wrapped paragraph by paragraph (a blank line
    separates them), and ``(default: X)`` after each option that has a default and does not
    already state it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            super(HelpFormatter, self)._fill_text(p, width, indent) for p in text.split("\n\n")
        )

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
        ):
            return action.help
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse's parser, printing usage and errors through :func:`printable` (argparse echoes
    the arguments it refuses, which may hold any text), with :class:`HelpFormatter`;
    subcommand parsers share the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        super()._print_message(printable(message), file)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="netpol-pdp",
        description="A policy decision point for Kubernetes NetworkPolicy: is this flow allowed, and why?",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('netpol-pdp')}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"netpol_pdp.clients.cmd_{name}")
        module.add_parser(subparsers)
    return parser


def report_source_error(err: SourceError) -> int:
    """Print every problem of a source that failed to load; the exit status for it."""
    count = f"{len(err.problems)} problem{'' if len(err.problems) == 1 else 's'}"
    print(f"error: cannot load the manifest source ({count}):", file=sys.stderr)
    for problem in err.problems:
        print(f"  {printable(problem)}", file=sys.stderr)
    return EXIT_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except SourceError as err:
        return report_source_error(err)
    except CommandError as err:
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return err.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
