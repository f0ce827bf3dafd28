"""``netpol-pdp audit``: decide every flow of a JSON Lines flow log, in input order."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from netpol_pdp.clients.audit import Auditor, summary_lines
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.sources import add_source_argument, load_index


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "audit",
        help="decide every flow of a JSON Lines flow log",
        description="Decide every flow of a JSON Lines flow log (one "
        '{"src_ip", "dst_ip", "protocol", "dst_port"} object a line; other fields are kept). '
        "Writes one JSON line per flow, in input order, with verdict, reason and generation added; "
        "a summary goes to stderr. Exit status: 0 done, 2 a malformed line or an unloadable source.",
    )
    parser.add_argument(
        "flows", metavar="FLOWS", help="the flow log (JSON Lines, .gz accepted); - reads stdin"
    )
    add_source_argument(parser)
    parser.add_argument("-o", "--output", metavar="OUT", help="write the decisions here instead of stdout")
    parser.add_argument("--explain", "-e", action="store_true", help="add each decision's explanation")
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="report malformed lines on stderr and go on (default: stop at the first)",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="denied source->destination pairs to list (default 10)",
    )
    parser.set_defaults(run=run)


@contextlib.contextmanager
def _input(name: str) -> Iterator[tuple[Iterable[bytes], int | None]]:
    """The flow log as binary lines, with its size when known (for the progress bar)."""
    if name == "-":
        yield sys.stdin.buffer, None
        return
    path = Path(name)
    try:
        size = path.stat().st_size
        handle: io.BufferedIOBase = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
    except OSError as err:
        raise CommandError(f"{name}: {err.strerror or err}") from None
    with handle:
        yield handle, None if path.suffix == ".gz" else size


@contextlib.contextmanager
def _output(name: str | None) -> Iterator[IO[str]]:
    if name is None or name == "-":
        # JSON Lines are UTF-8 whatever the locale says (input text is copied through as is).
        if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.encoding.lower() not in ("utf-8", "utf8"):
            sys.stdout.reconfigure(encoding="utf-8")
        yield sys.stdout
        return
    try:
        handle = open(name, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as err:
        raise CommandError(f"{name}: {err.strerror or err}") from None
    with handle:
        yield handle


def run(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise CommandError("--top: must be zero or more")
    with _input(args.flows) as (lines, size):
        index, _result = load_index(args)

        def report(number: int, message: str) -> None:
            print(f"warning: line {number}: {message} (skipped)", file=sys.stderr)

        auditor = Auditor(
            index, explain=args.explain, skip_invalid=args.skip_invalid, on_invalid=report, top=args.top
        )
        with _output(args.output) as out, _progress(size) as progress:
            summary = auditor.run(lines, out.write, progress)
    print("\n".join(summary_lines(summary)), file=sys.stderr)
    return 0


@contextlib.contextmanager
def _progress(size: int | None) -> Iterator[Any]:
    """A tqdm bar on stderr, only on a terminal and only once the audit has run for a second."""
    if not sys.stderr.isatty():
        yield None
        return
    with tqdm(total=size, unit="B", unit_scale=True, delay=1.0, file=sys.stderr, desc="audit") as bar:
        yield bar.update
