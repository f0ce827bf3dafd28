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
from typing import TYPE_CHECKING, Any

from netpol_pdp.clients._options import add_client_options, connect_if_asked
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.expectations import (
    ExpectationError,
    Result,
    World,
    check,
    check_remote,
    load_expectations,
)
from netpol_pdp.clients.junit import failure_text, write_junit
from netpol_pdp.clients.render import plural, printable
from netpol_pdp.clients.sources import add_source_argument, load_source, warn_if_empty
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.ends import FlowByName
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError

if TYPE_CHECKING:  # grpc is imported only when --server is given (cli.py's rule)
    from netpol_pdp.clients.client import DecisionClient


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="check expected connections (allow/deny) against the policies",
        description="Check a YAML list of expected connections ({from, to, port, protocol, "
        "expect: allow|deny}; ends are NAMESPACE/NAME, node/NAME, namespace + pod or labels, an ip or "
        "a cidr) against the manifests (or a --server), with the same semantics as every decision. "
        "Prints a table and the explanation "
        "of each wrong verdict; an expectation that cannot be checked (it selects no pod, names a port "
        "the pod lacks) is an ERROR, and counts as a failure. "
        "Exit status: 0 all hold, 1 some fail or are in error, 2 unreadable input.",
    )
    parser.add_argument("expectations", metavar="EXPECTATIONS", help="the expectations file (YAML)")
    add_source_argument(parser)
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report here")
    add_client_options(parser, server_default=None)
    parser.set_defaults(run=run)


def _remote(client: DecisionClient, asked: FlowByName) -> Decision | FlowError:
    """One expectation decided by the server: its decision, or the server's refusal of a name."""
    from netpol_pdp.clients._channel import ClientError

    try:
        return client.decide(asked, explain=True)
    except FlowError as err:
        return err
    except ClientError as exc:
        raise CommandError(f"--server {client.target}: {exc}") from None


def status_text(result: Result) -> str:
    if result.problem is not None:
        return "ERROR"
    return "PASS" if result.passed else "FAIL"


def totals_text(results: list[Result]) -> str:
    """``7 passed, 1 failed, 1 error (an expectation that could not be checked counts as failed)``."""
    errors = sum(1 for r in results if r.problem is not None)
    failed = sum(1 for r in results if not r.passed) - errors
    text = f"{len(results) - failed - errors} passed, {failed} failed"
    if errors:
        text += f", {plural(errors, 'error')} (an expectation that could not be checked counts as failed)"
    return text


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    if args.junit and Path(args.junit).exists() and Path(args.junit).samefile(args.expectations):
        raise CommandError(f"--junit {args.junit}: is the expectations file; write the report elsewhere")
    try:
        expectations = load_expectations(args.expectations)
    except ExpectationError as err:
        count = plural(len(err.problems), "problem")
        listed = "\n".join(f"  {args.expectations}: {problem}" for problem in err.problems)
        raise CommandError(f"cannot load the expectations ({count}):\n{listed}") from None
    client = connect_if_asked(args)
    if client is not None:
        with client:
            results = check_remote(expectations, functools.partial(_remote, client))
    else:
        loaded = load_source(args)
        warn_if_empty(loaded, args)
        index = Index.from_objects(loaded.objects.values())
        gen = index.snapshot()
        results = check(expectations, World(loaded.objects, gen), functools.partial(index.explain, gen=gen))
    seconds = time.perf_counter() - began

    lines = [
        f"{status_text(result):<5}  {result.expectation.name}  ({plural(len(result.checked), 'flow')})"
        for result in results
    ]
    bad = [r for r in results if not r.passed]
    for result in bad:
        lines += ["", f"{status_text(result)}: {result.expectation.name}"]
        detail = result.problem if result.problem is not None else failure_text(result)
        lines.extend(f"  {line}" for line in detail.splitlines())
    lines += ["", totals_text(results)]
    sys.stdout.write(printable("\n".join(lines)) + "\n")
    if args.junit:
        try:
            write_junit(args.junit, Path(args.expectations).stem, results, seconds)
        except OSError as err:
            raise CommandError(f"--junit {args.junit}: {err.strerror or err}") from None
    return 1 if bad else 0
