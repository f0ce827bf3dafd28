"""Byte ranges tile a log: every line is read by exactly one range, whatever the cut points."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest

from netpol_pdp.clients.flowlogs.source import count_range, header_end, range_lines, splittable

TEXT = b'first\n\nthird line\r\n{"x": 1}\nlast without newline'


@pytest.mark.parametrize("size", range(1, len(TEXT) + 2), ids=lambda n: f"ranges of {n} bytes")
def test_ranges_of_any_size_read_every_line_once_in_order(tmp_path: Path, size: int) -> None:
    path = tmp_path / "log"
    path.write_bytes(TEXT)
    bounds = [*range(0, len(TEXT), size), len(TEXT)]
    lines = [line for a, b in itertools.pairwise(bounds) for line in range_lines(str(path), a, b)]
    assert lines == TEXT.splitlines(keepends=True)
    assert sum(count_range(str(path), a, b) for a, b in itertools.pairwise(bounds)) == 5


def test_the_header_end_is_where_the_second_line_starts(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(TEXT)
    assert header_end(str(path), 1) == len(b"first\n")


def test_only_plain_files_other_processes_can_open_are_split(tmp_path: Path) -> None:
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.write_bytes(TEXT)
    packed.write_bytes(gzip.compress(TEXT))
    assert splittable(str(plain))
    assert not splittable(str(packed))
    assert not splittable("-")
    assert not splittable("memory://somewhere/log")
