"""The ``netpol-pdp`` command line: one argparse parser, one module per subcommand.

A subcommand is a module ``netpol_pdp.clients.cmd_<name>`` exposing
``add_parser(subparsers) -> None`` (which registers the subcommand and its
options) and ``run(args) -> int`` (the exit status).  Adding one is one line in
:data:`COMMANDS`.  A run imports only the module of the command it names
(:func:`command_named`); help, an unknown command and :func:`build_parser` import
them all, so a command's heavy dependencies belong inside its ``run`` all the
same.  ``--version`` reads the installed version only when asked.

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
from typing import TYPE_CHECKING, Any, NoReturn

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


class VersionAction(argparse.Action):
    """``--version``: argparse's, with the installed version read only when it is asked for
    (``importlib.metadata`` costs a start-up ~25 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> NoReturn:
        from importlib.metadata import version  # noqa: PLC0415 (only for --version)

        parser._print_message(f"{parser.prog} {version('netpol-pdp')}\n", sys.stdout)
        parser.exit()


def command_named(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when parsing it needs no other command's module.

    None for help (``-h`` before the command, or no command at all) and for an
    unknown command (its error lists them all); the top-level parser has no
    option taking a value, so the first word not starting with ``-`` is the command.
    """
    for word in argv:
        if word in ("-h", "--help") or word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return "" if argv else None  # only options (--version, or an error): no command module needed


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, just that subcommand's (``""``: none), for one run."""
    parser = Parser(
        prog="netpol-pdp",
        description="A policy decision point for Kubernetes NetworkPolicy: is this flow allowed, and why?",
    )
    parser.add_argument("--version", action=VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is None or name == only:
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
    parser = build_parser(command_named(sys.argv[1:] if argv is None else argv))
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
