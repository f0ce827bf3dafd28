"""The ``--source`` option shared by the commands, and building an index from it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from netpol_pdp.examples import CLUSTER
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import LoadResult, ManifestSource


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
    return Index.from_objects(result.objects.values()), result
