"""``netpol-pdp audit``: decide every flow of a flow log, in input order; compare, what-if, report."""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Protocol

from netpol_pdp.clients._options import RemoteDecider, add_client_options, connect_if_asked
from netpol_pdp.clients.auditing.audit import AuditRun, run_audit
from netpol_pdp.clients.auditing.report import ReportError, check_report_path, write_report
from netpol_pdp.clients.auditing.text import TextTotals, summary_lines
from netpol_pdp.clients.auditing.whatif import WhatIf, WhatIfError, WorldChange
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.flowlogs import FORMATS, FlowLogError, read_flowlog
from netpol_pdp.clients.render import printable
from netpol_pdp.clients.sources import (
    add_service_partial_argument,
    add_source_argument,
    load_index,
    service_partial,
    warn_if_empty,
)
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.manifests import LoadResult


class BatchDecider(Protocol):
    """What the audit needs of a decision source: an :class:`Index`, or a client of a server."""

    def decide_many(self, flows: list[Flow], explain: bool = False) -> list[Decision]: ...


#: Exit status when a what-if turns an allowed flow into a denied one (CI gates on it).
EXIT_BREAKS = 3


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "audit",
        help="decide every flow of a flow log (Hubble, AWS/GCP VPC, CSV, JSON Lines)",
        description="Decide every flow of a flow log: our JSON Lines "
        '({"src_ip", "dst_ip", "protocol", "dst_port"} a line; other fields are kept), CSV with a header, '
        "Cilium Hubble (hubble observe -o json, exporter files), AWS VPC Flow Logs (default or custom "
        "format), GCP VPC Flow Logs (Cloud Logging JSON). The format is detected; .gz is read "
        "transparently. Writes one JSON line per flow, in input order, with verdict, reason and "
        "generation added (and, where the log has the enforcer's verdict, observed and agreement); "
        "a summary goes to stderr. With --with/--without, writes instead the flows whose verdict "
        "would change, grouped. Exit status: 0 done, 2 a malformed line or an unloadable source, "
        "3 a what-if turns an allowed flow into a denied one.",
    )
    parser.add_argument("flows", metavar="FLOWS", help="the flow log (.gz accepted); - reads stdin")
    add_source_argument(parser)
    add_service_partial_argument(parser)
    parser.add_argument(
        "--format",
        "-f",
        choices=sorted(FORMATS),
        help="the log's format (default: detected from its first lines)",
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="write the decisions here instead of stdout")
    parser.add_argument("--explain", "-e", action="store_true", help="add each decision's explanation")
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="report malformed lines on stderr and go on (default: stop at the first)",
    )
    parser.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FILE",
        help="also write a report: FILE.json (the numbers) or FILE.html (a page to look at); repeatable",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="denied source->destination pairs to list (default 10)",
    )
    scale = parser.add_argument_group("scale: decide in several processes (same output, in order)")
    scale.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1: in this process); with --dask local, the cluster's workers",
    )
    scale.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask cluster: a scheduler address (tcp://host:8786), or `local` for a "
        "LocalCluster of --jobs processes on loopback (needs the dask extra)",
    )
    whatif = parser.add_argument_group("what-if: judge the same flows against a changed world")
    whatif.add_argument(
        "--with",
        dest="with_paths",
        action="append",
        default=[],
        metavar="FILE",
        help="add or replace the objects (policies) of this manifest file or folder; repeatable",
    )
    whatif.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="NS/NAME|NAME",
        help="remove this NetworkPolicy (NS/NAME) or cluster-scoped policy (NAME); repeatable",
    )
    add_client_options(parser, server_default=None)
    parser.set_defaults(run=run)


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


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """A tqdm counter on stderr, only on a terminal and only once the audit has run for a second."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm  # only on a terminal: importing it costs more than a small audit

    with tqdm(unit=" flows", unit_scale=True, delay=1.0, file=sys.stderr, desc="audit") as bar:
        yield bar.update


def _warn(error: FlowLogError) -> None:
    _warn_text(error.located)


def _warn_text(located: str) -> None:
    print(printable(f"warning: {located} (skipped)"), file=sys.stderr)


def text_summary(run: AuditRun, top: int) -> list[str]:
    """The stderr summary: the totals every audit prints, then what the readers and the enforcer add."""
    s = run.summary
    s.fold()
    pairs: dict[tuple[str, str], int] = {}
    for (src, dst, _port), n in s.denied_pairs.items():
        pairs[(src, dst)] = pairs.get((src, dst), 0) + n
    totals = TextTotals(
        flows=s.total,
        allowed=s.allowed,
        denied=s.denied,
        distinct=s.dedup.decided,
        invalid=s.read.invalid,
        replaced=run.replaced,
        generations=run.generations,
        by_reason=s.reasons,
        top_denied=sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:top],
        seconds=run.seconds,
    )
    return summary_lines(totals) + s.detail_lines(top)


def run(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise CommandError("--top: must be zero or more")
    if args.jobs < 1:
        raise CommandError("--jobs: must be 1 or more")
    client = connect_if_asked(args)
    if client is not None and (args.with_paths or args.without):
        raise CommandError("--with/--without build the changed world here: give --source, not --server")
    if client is not None and (args.jobs > 1 or args.dask):
        raise CommandError("--jobs/--dask decide in local workers: give --source, not --server")
    with client or contextlib.nullcontext():
        return _audit(args, client)


def _not_the_log(option: str, path: str | None, log: str) -> None:
    """Refuse to write over the log being read: opening it for writing empties it first."""
    if path is None or path == "-" or log == "-" or not (os.path.exists(path) and os.path.exists(log)):
        return
    if os.path.samefile(path, log):
        raise CommandError(f"{option} {path}: is the flow log being read; write elsewhere")


def _load_for_good(args: argparse.Namespace) -> tuple[Index, LoadResult]:
    """The world, loaded for the rest of the process: the cycle collector neither runs while
    it loads nor walks it afterwards (``gc.freeze``).

    A load allocates ~25 objects per manifest and frees next to nothing: each collection
    on the way walks the survivors again, and each later full one all of them (measured on
    the medium world's ~250,000 objects: 0.3 s of collections in the load, ~0.15 s a full
    collection after).  Nothing cyclic is left as garbage in numbers worth collecting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = load_index(args)
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return loaded


def _audit(args: argparse.Namespace, client: Any) -> int:
    _not_the_log("-o", args.output, args.flows)
    for report in args.report:
        _not_the_log("--report", report, args.flows)
    try:
        for path in args.report:
            check_report_path(path)
        index = None
        if client is None:
            index, loaded = _load_for_good(args)
            warn_if_empty(loaded, args)
        whatif = change = None
        if index is not None and (args.with_paths or args.without):
            change = WorldChange.load(args.with_paths, args.without)
            whatif = WhatIf(index, change)
        log = read_flowlog(args.flows, args.format, args.skip_invalid, _warn)
    except (FlowLogError, WhatIfError, ReportError) as err:
        raise CommandError(str(err)) from None
    # Where decisions come from: the local index, or the server (same decide_many(flows, explain)).
    source: BatchDecider = RemoteDecider(client) if index is None else index
    decide: Callable[[Sequence[Flow]], Sequence[Decision]] = functools.partial(
        source.decide_many, explain=args.explain
    )
    if index is not None and args.explain:  # explained as the server explains: with why-not
        decide = index.explain_many

    def explain_flow(flow: Flow) -> Decision:
        if index is not None:
            return index.explain(flow)
        return source.decide_many([flow], explain=True)[0]

    parallel = index is not None and (args.jobs > 1 or bool(args.dask))
    try:
        with log, _output(args.output) as out, _progress() as progress:
            if parallel and index is not None:
                # worker processes: only with --jobs/--dask
                from netpol_pdp.clients.auditing.parallel import (
                    WorldSpec,
                    dask_cluster,
                    local_pool,
                    run_partitioned,
                )

                spec = WorldSpec(tuple(index.objects().values()), change, args.explain, service_partial(args))
                workers = (
                    dask_cluster(spec, args.dask, args.jobs) if args.dask else local_pool(spec, args.jobs)
                )
                with workers as pool:
                    audit = run_partitioned(
                        log,
                        pool,
                        write=None if whatif else out.write,
                        whatif=whatif,
                        explain_flow=explain_flow,
                        warn=_warn_text,
                        progress=progress,
                    )
            else:
                audit = run_audit(
                    log,
                    decide,
                    write=None if whatif else out.write,
                    whatif=whatif,
                    explain_flow=explain_flow,
                    progress=progress,
                )
            if whatif is not None:
                for group in whatif.sorted_groups():
                    out.write(json.dumps(group.to_dict()) + "\n")
    except FlowLogError as err:
        raise CommandError(err.located) from None
    if not parallel:
        audit.summary.read = log.stats
    for path in args.report:
        try:
            write_report(path, audit, args.flows)
        except ReportError as err:
            raise CommandError(str(err)) from None
    print(printable("\n".join(text_summary(audit, args.top))), file=sys.stderr)
    if whatif is not None:
        print(printable(whatif.render_text()), file=sys.stderr)
        return EXIT_BREAKS if whatif.breaks else 0
    return 0
