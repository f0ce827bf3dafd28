"""A reload parses only the files that changed, and always loads what a fresh read would.

ManifestSource replays the parsed outcomes of a file whose (device, inode, size,
mtime, ctime) is unchanged and which was not written within ``RACY_NS`` of
being read.  These tests shrink that window to 20 ms (``short_racy_window``;
file timestamps move in steps of a kernel tick, at most 10 ms) and ``settle()``
past it where a file must be old enough to be cached; the full 2 s window is
tested as it is.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netpol_pdp.index import manifests
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.manifests import FeedReport, LoadResult, ManifestFeed, ManifestSource

from .test_manifests import NS, POD, POLICY, write

WINDOW_NS = 20_000_000


@pytest.fixture
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifests, "RACY_NS", WINDOW_NS)


def settle() -> None:
    """Wait until every file written so far is older than the (short) racy window."""
    time.sleep(WINDOW_NS / 1e9 + 0.005)


def load_or_problems(source: ManifestSource) -> LoadResult | list[str]:
    try:
        return source.load()
    except SourceError as err:
        return err.problems


def same(a: LoadResult | list[str], b: LoadResult | list[str]) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return a == b
    return (a.objects, a.ignored, a.files) == (b.objects, b.ignored, b.files)


def cluster(root: Path) -> None:
    write(root, "ns.yaml", NS.format(name="shop", team="a") + "---\n" + NS.format(name="bank", team="b"))
    write(root, "pods/shop.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
    write(root, "pods/bank.yaml", POD.format(name="vault", ns="bank", ip="10.0.1.1"))
    write(root, "policies/shop.yaml", POLICY.format(name="web", ns="shop", port=80))


@pytest.mark.usefixtures("short_racy_window")
def test_a_reload_parses_only_the_changed_file_and_loads_the_same_objects(tmp_path: Path) -> None:
    cluster(tmp_path)
    settle()
    source = ManifestSource(tmp_path)
    first = source.load()
    assert (first.files, first.parsed) == (4, 4)
    again = source.load()
    assert again.parsed == 0
    assert again.objects == first.objects
    assert all(again.objects[k] is first.objects[k] for k in first.objects), "replayed, not re-parsed"
    write(tmp_path, "policies/shop.yaml", POLICY.format(name="web", ns="shop", port=443))
    edited = source.load()
    assert edited.parsed == 1
    assert same(edited, ManifestSource(tmp_path).load())


@pytest.mark.usefixtures("short_racy_window")
def test_a_same_size_rewrite_that_keeps_the_old_mtime_is_still_seen(tmp_path: Path) -> None:
    """Tools that restore modification times (rsync -t, tar) cannot hide a change: ctime moves."""
    cluster(tmp_path)
    path = tmp_path / "policies/shop.yaml"
    before = path.stat()
    settle()
    source = ManifestSource(tmp_path)
    assert source.load().parsed == 4
    write(tmp_path, "policies/shop.yaml", POLICY.format(name="web", ns="shop", port=81))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    reloaded = source.load()
    assert reloaded.parsed == 1
    assert same(reloaded, ManifestSource(tmp_path).load())


def test_a_file_written_just_before_it_was_read_is_parsed_again_next_time(tmp_path: Path) -> None:
    """Within the racy window a second write could leave size and times as they were."""
    cluster(tmp_path)
    source = ManifestSource(tmp_path)
    assert source.load().parsed == 4
    assert source.load().parsed == 4, "every file was written a moment ago"


@pytest.mark.usefixtures("short_racy_window")
def test_an_object_moved_to_another_file_and_a_duplicate_across_files_are_exact(tmp_path: Path) -> None:
    cluster(tmp_path)
    settle()
    source = ManifestSource(tmp_path)
    source.load()
    # the pod moves from pods/bank.yaml into pods/shop.yaml
    write(
        tmp_path,
        "pods/shop.yaml",
        POD.format(name="web", ns="shop", ip="10.0.0.1")
        + "---\n"
        + POD.format(name="vault", ns="bank", ip="10.0.1.1"),
    )
    problems = load_or_problems(source)
    assert isinstance(problems, list), "an unchanged file still declares the pod: a duplicate"
    assert any("Pod bank/vault: declared twice; first in" in p and "pods/bank.yaml" in p for p in problems)
    assert problems == load_or_problems(ManifestSource(tmp_path))
    (tmp_path / "pods/bank.yaml").unlink()
    moved = source.load()
    assert same(moved, ManifestSource(tmp_path).load())
    assert ("Pod" in {k.value for k, _, _ in moved.objects}) and moved.files == 3


@pytest.mark.usefixtures("short_racy_window")
def test_a_configmap_style_symlink_swap_is_seen(tmp_path: Path) -> None:
    """A ConfigMap volume swaps ``..data`` to a new folder; the visible names stay the same."""
    mount = tmp_path / "mount"
    mount.mkdir()
    old, new = mount / "..2026_01", mount / "..2026_02"
    for folder, port in ((old, 80), (new, 8443)):  # a ConfigMap's keys are flat files
        write(folder, "ns.yaml", NS.format(name="shop", team="a"))
        write(folder, "policy.yaml", POLICY.format(name="web", ns="shop", port=port))
    (mount / "..data").symlink_to(old.name)
    for name in ("ns.yaml", "policy.yaml"):
        (mount / name).symlink_to(f"..data/{name}")
    settle()
    source = ManifestSource(mount)
    source.load()
    tmp_link = mount / "..data_tmp"
    tmp_link.symlink_to(new.name)
    tmp_link.replace(mount / "..data")
    swapped = source.load()
    assert same(swapped, ManifestSource(mount).load())
    [policy] = [o for k, o in swapped.objects.items() if k[0].value == "NetworkPolicy"]
    assert "8443" in repr(policy)


EDITS: list[Callable[[Path, random.Random], None]] = [
    lambda root, r: write(
        root,
        f"policies/p{r.randrange(3)}.yaml",
        POLICY.format(
            name=f"p{r.randrange(3)}", ns=r.choice(["shop", "bank"]), port=r.choice([80, 443, 70000])
        ),
    ),
    lambda root, r: write(
        root,
        f"pods/x{r.randrange(3)}.yaml",
        POD.format(name=f"x{r.randrange(4)}", ns=r.choice(["shop", "bank"]), ip=f"10.0.2.{r.randrange(9)}"),
    ),
    lambda root, r: [p.unlink() for p in sorted(root.rglob("*.yaml"))[r.randrange(2) :: 5]],
    lambda root, r: write(
        root,
        "ns.yaml",
        NS.format(name="shop", team=r.choice("abc")) + "---\n" + NS.format(name="bank", team="b"),
    ),
    lambda root, r: write(root, "broken.yaml", r.choice(["kind: [", "{}", "", "kind: Pod\n"])),
]


@pytest.mark.usefixtures("short_racy_window")
@pytest.mark.parametrize("seed", range(8))
def test_after_any_sequence_of_edits_a_cached_load_equals_a_fresh_one(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    cluster(tmp_path)
    source = ManifestSource(tmp_path)
    for _ in range(12):
        settle()  # what earlier rounds wrote is now cacheable
        rng.choice(EDITS)(tmp_path, rng)
        assert same(load_or_problems(source), load_or_problems(ManifestSource(tmp_path)))


@pytest.mark.usefixtures("short_racy_window")
def test_the_feed_reports_how_many_files_it_parsed(tmp_path: Path) -> None:
    cluster(tmp_path)
    settle()
    reports: list[FeedReport] = []
    feed = ManifestFeed(ManifestSource(tmp_path), Index(), listener=reports.append)
    feed.start()
    write(tmp_path, "policies/shop.yaml", POLICY.format(name="web", ns="shop", port=443))
    feed.reload()
    assert [(r.files, r.parsed, r.upserts) for r in reports] == [(4, 4, 5), (4, 1, 1)]
