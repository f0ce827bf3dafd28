"""``netpol-pdp matrix``: the reachability matrix of a set of pods (docs/queries.md "Reachability matrix").

Rows are sources, columns destinations, one table per port, in the layout of
the upstream conformance tests' truth tables (``.`` allowed, ``X`` denied).
``--diff OTHER_SOURCE`` decides the same cells against another manifest source
and shows exactly which ones change.  Exit status: 0 (with ``--diff``: no cell
changes), 1 some cell changes, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from netpol_pdp.clients._options import add_client_options, connect_if_asked
from netpol_pdp.clients.cmd_reach import add_pod_set_options
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.queryout import (
    diff_csv,
    diff_json,
    diff_text,
    matrix_csv,
    matrix_html,
    matrix_json,
    matrix_text,
)
from netpol_pdp.clients.render import printable
from netpol_pdp.clients.sources import add_source_argument, load_index, source_paths, warn_if_empty
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import ManifestSource
from netpol_pdp.index.matrix import Matrix, MatrixError, changes, matrix, parse_port
from netpol_pdp.index.selectors import parse_selector_text

FORMATS = ("text", "csv", "json", "html")


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "matrix",
        help="the allowed/denied matrix of a set of pods",
        description="Decide every pod pair of a namespace, a selector or the whole cluster on each port, "
        "and print the table: rows from, columns to, '.' allowed, 'X' denied (the upstream conformance "
        "tests' truth tables). Exit status: 0, or with --diff 0 when no cell changes and 1 when some "
        "do; 2 bad input.",
    )
    add_source_argument(parser)
    add_pod_set_options(parser, "only the pods of this namespace (default: every namespace)", "only pods")
    parser.add_argument(
        "--pod", action="append", metavar="NAMESPACE/POD", help="exactly these pods, in this order (repeat)"
    )
    parser.add_argument(
        "--port",
        action="append",
        metavar="[PROTO/]N",
        help="a port to decide: 80 (TCP), UDP/53, SCTP/9000, ICMP; repeat for several. Default: TCP/80",
    )
    parser.add_argument("--format", "-f", choices=FORMATS, default="text", help="output format")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument(
        "--diff",
        action="append",
        metavar="OTHER_SOURCE",
        type=Path,
        help="a manifest file or folder (repeat to combine): show which cells deciding against it changes",
    )
    add_client_options(parser, server_default=None)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.pod and (args.namespace or args.selector):
        raise CommandError("--pod: and --namespace/--selector exclude each other")
    try:
        ports = [parse_port(p, "--port") for p in (args.port or ["TCP/80"])]
        selector = parse_selector_text(args.selector) if args.selector else None
    except MatrixError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:
        raise CommandError(f"--selector: {exc}") from None
    client = connect_if_asked(args)
    try:
        if client is not None:
            from netpol_pdp.clients._channel import ClientError

            with client:
                try:
                    base = client.matrix(
                        ports, namespace=args.namespace, selector=args.selector, pods=args.pod
                    )
                except ClientError as exc:
                    raise CommandError(f"--server {client.target}: {exc}") from None
            title = f"--server {args.server}"
        else:
            index, result = load_index(args)
            warn_if_empty(result, args)
            base = matrix(index, ports, args.namespace, selector, args.pod)
            title = ", ".join(str(p) for p in source_paths(args))
        after: Matrix | None = None
        if args.diff:
            other = Index.from_objects(ManifestSource(args.diff).load().objects.values())
            after = matrix(other, list(base.ports), pods=list(base.pods))
            title += " vs " + ", ".join(str(p) for p in args.diff)
    except MatrixError as exc:
        raise CommandError(str(exc)) from None
    text = _render(args.format, base, after, title)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--output {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(printable(text))
    if after is not None:
        return 1 if changes(base, after) else 0
    return 0


def _render(fmt: str, base: Matrix, after: Matrix | None, title: str) -> str:
    if fmt == "html":
        return matrix_html(base, title, after)
    if after is None:
        return {"text": matrix_text, "csv": matrix_csv, "json": matrix_json}[fmt](base)
    changed = changes(base, after)
    if fmt == "csv":
        return diff_csv(changed)
    if fmt == "json":
        return diff_json(base, after, changed)
    return diff_text(base, after, changed)
