"""``netpol-pdp validate``: load the manifests and list every problem, or summarise what is there."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netpol_pdp.clients.render import plural, printable
from netpol_pdp.clients.sources import add_source_argument, load_source, source_paths
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.tiers import priority_ties


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="check manifests: every error, one per line",
        description="Load the manifests and print every problem, one per line (exit status 1), "
        "or a one-line summary of what was read (exit status 0).",
    )
    add_source_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = load_source(args)
    except SourceError as err:
        for problem in err.problems:
            sys.stdout.write(printable(problem) + "\n")
        sys.stderr.write(f"{plural(len(err.problems), 'problem')} found\n")
        return 1
    counts = ", ".join(f"{n} {kind}" for kind, n in result.counts().items())
    summary = f"ok: {plural(len(result.objects), 'object')} in {plural(result.files, 'file')} ({counts})"
    if result.ignored:
        ignored = ", ".join(f"{n} {kind}" for kind, n in sorted(result.ignored.items()))
        summary += f"; ignored: {ignored}"
    paths = ", ".join(str(p) for p in source_paths(args))
    sys.stdout.write(printable(f"{summary} from {paths}") + "\n")
    for warning in priority_ties(result.objects.values()):
        sys.stderr.write(printable(warning) + "\n")
    return 0
