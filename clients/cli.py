"""The ``netpol-pdp`` command line: one argparse parser, one module per subcommand.

A subcommand is a module ``netpol_pdp.clients.cmd_<name>`` exposing
``add_parser(subparsers) -> None`` (which registers the subcommand and its
options) and ``run(args) -> int`` (the exit status).  Adding one is one line in
:data:`COMMANDS`; modules are imported when the parser is built, so a command's
heavy dependencies belong inside its ``run``.

Exit statuses shared by every command: 0 success, 1 a negative answer (a DENY,
validation errors), 2 bad input or a source that cannot be loaded, 130 when
interrupted.  Expected failures print ``error: ...`` and never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.index.errors import SourceError

#: Subcommands, in help order; each is ``clients/cmd_<name>.py``.
COMMANDS: list[str] = [
    "decide",
    "audit",
    "validate",
    "test",
    "serve",
    "status",
    "bench",
]

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        print(f"  {problem}", file=sys.stderr)
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
        print(f"error: {err}", file=sys.stderr)
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
