"""``netpol-pdp status --server HOST:PORT``: the server's GetStatus as JSON.

Exit code 0 when the server is ready (its first load succeeded) and synced
(its last reload succeeded), 1 when it answers but is not (the JSON says why:
``feed.last_error``), 2 when it cannot be reached or the options are wrong.
"""

from __future__ import annotations

import argparse
import json
import sys

from netpol_pdp.clients._channel import ClientError
from netpol_pdp.clients._options import add_client_options, client_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "status",
        help="show a running server's generation, readiness, object counts and feed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_client_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        with client_from_args(args) as client:
            status = client.status()
    except (ValueError, ClientError) as exc:
        print(f"netpol-pdp status: error: {exc}", file=sys.stderr)
        return 2
    json.dump(status, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if status["ready"] and status["synced"] else 1
