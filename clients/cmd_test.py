"""``netpol-pdp test``: check expected connections against the policies, offline (for CI).

Exit status: 0 every expectation holds, 1 some do not, 2 the expectations file
or the source cannot be read.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any

from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.expectations import ExpectationError, Result, World, check, load_expectations
from netpol_pdp.clients.junit import failure_text, write_junit
from netpol_pdp.clients.sources import add_source_argument, load_source
from netpol_pdp.index.engine import Index


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="check expected connections (allow/deny) against the policies",
        description="Check a YAML list of expected connections ({from, to, port, protocol, "
        "expect: allow|deny}; ends are namespace + pod or labels, an ip or a cidr) against the "
        "manifests, with the same semantics as every decision. Prints a table and the explanation "
        "of each wrong verdict. Exit status: 0 all hold, 1 some fail, 2 unreadable input.",
    )
    parser.add_argument("expectations", metavar="EXPECTATIONS", help="the expectations file (YAML)")
    add_source_argument(parser)
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report here")
    parser.set_defaults(run=run)


def status_text(result: Result) -> str:
    if result.problem is not None:
        return "ERROR"
    return "PASS" if result.passed else "FAIL"


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    if args.junit and Path(args.junit).exists() and Path(args.junit).samefile(args.expectations):
        raise CommandError(f"--junit {args.junit}: is the expectations file; write the report elsewhere")
    try:
        expectations = load_expectations(args.expectations)
    except ExpectationError as err:
        lines = "\n".join(f"  {args.expectations}: {problem}" for problem in err.problems)
        raise CommandError(f"the expectations cannot be read:\n{lines}") from None
    loaded = load_source(args)
    index = Index.from_objects(loaded.objects.values())
    results = check(expectations, World(loaded.objects), functools.partial(index.decide, explain=True))
    seconds = time.perf_counter() - began

    out = sys.stdout
    for result in results:
        flows = len(result.checked)
        out.write(
            f"{status_text(result):<5}  {result.expectation.name}  ({flows} flow{'s' * (flows != 1)})\n"
        )
    bad = [r for r in results if not r.passed]
    for result in bad:
        out.write(f"\n{status_text(result)}: {result.expectation.name}\n")
        detail = result.problem if result.problem is not None else failure_text(result)
        out.write("".join(f"  {line}\n" for line in detail.splitlines()))
    passed = len(results) - len(bad)
    out.write(f"\n{passed} passed, {len(bad)} failed\n")
    if args.junit:
        try:
            write_junit(args.junit, Path(args.expectations).stem, results, seconds)
        except OSError as err:
            raise CommandError(f"--junit {args.junit}: {err.strerror or err}") from None
    return 1 if bad else 0
