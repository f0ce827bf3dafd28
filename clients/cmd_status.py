"""``netpol-pdp status --server HOST:PORT``: the server's GetStatus as JSON.

Exit code 0 when the server is ready (its first load succeeded) and synced
(its last reload succeeded), 1 when it answers but is not (the JSON says why:
``feed.last_error``), 2 when it cannot be reached or the options are wrong.
"""

from __future__ import annotations

import argparse
import json
import sys

from netpol_pdp.clients._options import add_client_options, client_from_args
from netpol_pdp.clients.errors import CommandError


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "status",
        help="show a running server's generation, readiness, object counts and feed",
        description="Print a running server's GetStatus as JSON: generation, ready and synced, "
        "object counts, the feed and its last error, uptime.\n\n"
        "Exit status: 0 the server is ready (its first load succeeded) and synced (its last "
        "reload succeeded); 1 it answers but is not (the JSON says why: feed.last_error); "
        "2 it cannot be reached or an option is wrong.",
    )
    add_client_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from netpol_pdp.clients._channel import ClientError

    try:
        with client_from_args(args) as client:
            status = client.status()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except ClientError as exc:
        raise CommandError(f"--server {args.server}: {exc}") from None
    json.dump(status, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if status["ready"] and status["synced"] else 1
