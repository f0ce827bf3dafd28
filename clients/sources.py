"""The ``--source`` option shared by the commands, and building an index from it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from netpol_pdp.clients.render import plural, printable
from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import LoadResult, ManifestSource
from netpol_pdp.index.model import Kind


def add_source_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        "-s",
        action="append",
        metavar="PATH",
        type=Path,
        help="a manifest file or folder (read recursively); repeat to combine several. "
        "Default: the bundled example cluster",
    )


def add_service_partial_argument(parser: argparse.ArgumentParser) -> None:
    """``--service-partial deny|allow``: the verdict of a flow to a Service that some of its
    endpoints allow and some do not (docs/services.md)."""
    parser.add_argument(
        "--service-partial",
        choices=("deny", "allow"),
        default="deny",
        help="verdict of a flow to a Service that some endpoints allow and others deny "
        "(reason service-partially-allowed; default deny, docs/services.md)",
    )


def service_partial(args: argparse.Namespace) -> Verdict:
    """The ``--service-partial`` verdict (DENY when the command has no such option)."""
    return Verdict.ALLOW if getattr(args, "service_partial", "deny") == "allow" else Verdict.DENY


def source_paths(args: argparse.Namespace) -> Sequence[Path]:
    """The paths given with ``--source``, or the bundled example cluster."""
    paths: list[Path] | None = args.source
    return paths if paths else [CLUSTER]


def load_source(args: argparse.Namespace) -> LoadResult:
    """Load the source; raises :class:`SourceError` (the CLI prints it and exits 2)."""
    return ManifestSource(source_paths(args)).load()


def load_index(args: argparse.Namespace) -> tuple[Index, LoadResult]:
    """An index built from the source in one generation."""
    result = load_source(args)
    return Index.from_objects(result.objects.values(), service_partial(args)), result


def warn_if_empty(result: LoadResult, args: argparse.Namespace) -> None:
    """One line on stderr when the source holds no pod: then no flow can involve a pod, so every
    answer is ALLOW (``no-pod-involved``, ``node-traffic``) -- right by the rules, but almost
    always a wrong path or an empty export, which would otherwise pass for a permissive policy."""
    if any(key[0] is Kind.POD for key in result.objects):
        return
    paths = ", ".join(str(p) for p in source_paths(args))
    what = "no objects" if not result.objects else f"{plural(len(result.objects), 'object')} but no pods"
    print(
        printable(
            f"warning: the source ({paths}) holds {what}: every flow will be allowed (no pod is involved)"
        ),
        file=sys.stderr,
    )
