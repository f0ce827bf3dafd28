"""The manifest feed under bad files and faults: every problem located and bounded, nothing fails open.

Each rule here once took the feed down or let it serve a wrong state (issue 16): a
YAML value its constructor cannot read, an alias bomb, a megabyte value echoed in
errors, an unreadable subfolder skipped silently, a huge file, a non-atomic rewrite,
a source holding nothing at all.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpol_pdp.index import manifests
from netpol_pdp.index.documents import MAX_ALIAS_NODES
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import MAX_PROBLEM, SourceError
from netpol_pdp.index.manifests import MAX_PROBLEMS, FeedReport, ManifestFeed, ManifestSource
from netpol_pdp.index.model import Kind

NS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {{note: {note}}}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop, labels: {{app: {name}}}}}
status: {{podIPs: [{{ip: {ip}}}]}}
"""

WEB = (Kind.POD, "shop", "web")


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(SourceError) as err:
        ManifestSource(path, **kwargs).load()
    return err.value.problems


def alias_bomb(levels: int) -> str:
    """A Namespace whose label ``note`` is ``levels`` nested nine-fold aliases (anchored aside)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    anchors = "\n".join(f"  {line}" for line in lines)
    return (
        f"apiVersion: v1\nkind: Namespace\nanchors:\n{anchors}\n"
        f"metadata:\n  name: shop\n  labels:\n    note: *a{levels}\n"
    )


# --- 1. a value that the YAML constructor cannot read is a located problem ------------------

UNREADABLE = [
    ("a timestamp-shaped annotation with month 13", "2024-13-45", "month must be in 1..12"),
    ("February 30th", "2026-02-30", "day is out of range for month"),
    ("an integer of more than 4,300 digits", "9" * 5000, "Exceeds the limit (4300 digits)"),
    ("a float tag on a word", "!!float x", "could not convert string to float"),
    ("an int tag on a word", "!!int x", "invalid literal for int()"),
    ("a timestamp tag on a word", "!!timestamp x", "cannot read timestamp value"),
]


@pytest.mark.parametrize(("value", "message"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE])
def test_a_value_its_yaml_constructor_cannot_read_is_a_problem_at_its_line(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write(tmp_path, "ns.yaml", NS.format(note=value))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: line 5, column ") and message in problem
    assert len(problem) <= MAX_PROBLEM


def test_a_reload_with_an_unreadable_value_keeps_the_last_good_state_and_the_feed_keeps_loading(
    tmp_path: Path,
) -> None:
    write(tmp_path, "ns.yaml", NS.format(note="fine"))
    write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    index = Index()
    feed = ManifestFeed(ManifestSource(tmp_path), index)
    feed.start()
    write(tmp_path, "ns.yaml", NS.format(note="2024-13-45"))
    report = feed.reload()
    assert not report.ok and "month must be in 1..12" in report.problems[0]
    assert not feed.status.healthy and feed.status.errors == 1 and WEB in index.objects()
    write(tmp_path, "db.yaml", POD.format(name="db", ip="10.0.0.2"))
    write(tmp_path, "ns.yaml", NS.format(note="fixed"))
    assert feed.reload().ok and (Kind.POD, "shop", "db") in index.objects() and feed.status.healthy


def test_an_unexpected_exception_while_reading_a_document_is_a_problem_of_that_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))

    def broken(doc: object) -> None:
        raise TypeError("unhashable type: 'dict'")

    monkeypatch.setattr(manifests, "parse_object", broken)
    assert problems_of(path) == [
        f"{path}: document 1: Pod shop/web: cannot be read: TypeError: unhashable type: 'dict'"
    ]


def test_an_unexpected_exception_of_the_whole_load_fails_that_load_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    index = Index()
    feed = ManifestFeed(ManifestSource(tmp_path), index)
    feed.start()

    def broken(**kwargs: Any) -> None:
        raise MemoryError("out of memory")

    monkeypatch.setattr(feed.source, "load", broken)
    report = feed.reload()
    assert not report.ok and "cannot load: MemoryError: out of memory" in report.problems[0]
    assert feed.status.last_error == report.problems and WEB in index.objects()


def test_a_stopped_feed_says_so_in_its_status(tmp_path: Path) -> None:
    write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    feed = ManifestFeed(ManifestSource(tmp_path), Index())
    feed.start()
    assert feed.status.healthy
    feed.mark_stopped(RuntimeError("inotify watch limit reached"))
    assert not feed.status.healthy
    assert feed.status.stopped == "the manifest feed stopped: RuntimeError: inotify watch limit reached"


# --- 8. reported values and texts are bounded; alias expansion is refused -------------------


def test_an_alias_bomb_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(9))  # 9**10 "lol"s: 3.5 billion nodes
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: line ") and f"more than {MAX_ALIAS_NODES:,} nodes" in problem


def test_a_small_alias_expansion_in_a_validated_field_is_reported_short(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text(alias_bomb(3))  # 9**4 = 6,561 strings: under the bound, and not a label value
    [problem] = problems_of(path)
    assert "metadata.labels[note]: label value must be a string" in problem and len(problem) < 600


def test_a_megabyte_value_is_quoted_short(tmp_path: Path) -> None:
    path = write(tmp_path, "web.yaml", POD.format(name="web", ip="x" * 1_000_000))
    [problem] = problems_of(path)
    assert "status.podIPs[0].ip: must be a valid IP address (got 'xxx" in problem and len(problem) < 400


def test_a_megabyte_label_key_is_cut_to_the_problem_limit(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"k" * 10**6: "v"}},
    }
    path = write(tmp_path, "ns.json", json.dumps(doc))
    [problem] = problems_of(path)
    # Cut to the limit, saying how long the whole line was (it includes tmp_path, whose length varies).
    assert len(problem) <= MAX_PROBLEM
    length = re.search(r"\.\.\. \(([\d,]+) characters\)$", problem)
    assert length is not None and int(length.group(1).replace(",", "")) > 10**6


def test_the_status_keeps_a_bounded_number_of_problems(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(note="fine"))
    feed = ManifestFeed(ManifestSource(tmp_path), Index())
    feed.start()
    write(tmp_path, "pods.yaml", "---\n".join(POD.format(name=f"p{i}", ip="bad") for i in range(500)))
    report = feed.reload()
    assert len(report.problems) == MAX_PROBLEMS + 1 == len(feed.status.last_error or ())
    assert report.problems[-1] == f"... and {500 - MAX_PROBLEMS} more problems"


# --- 9a. a folder that cannot be listed is a problem, as an unreadable file is ---------------


@pytest.fixture
def unlistable(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[Path]]:
    """Folders added to the yielded set cannot be listed (``chmod 000`` does not bind root)."""
    denied: set[Path] = set()
    scandir = os.scandir

    def guarded(path: Any = ".") -> Any:
        if Path(path).absolute() in denied:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", guarded)
    yield denied


def test_an_unreadable_subfolder_is_a_problem_and_the_last_good_state_is_kept(
    tmp_path: Path, unlistable: set[Path]
) -> None:
    write(tmp_path, "ns.yaml", NS.format(note="fine"))
    write(tmp_path, "pods/web.yaml", POD.format(name="web", ip="10.0.0.1"))
    index = Index()
    feed = ManifestFeed(ManifestSource(tmp_path), index)
    feed.start()
    unlistable.add((tmp_path / "pods").absolute())
    report = feed.reload()
    assert not report.ok and report.problems == (
        f"{tmp_path / 'pods'}: cannot read folder: Permission denied",
    )
    assert WEB in index.objects() and not feed.status.healthy


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 folder")
def test_a_mode_000_subfolder_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "pods/web.yaml", POD.format(name="web", ip="10.0.0.1"))
    (tmp_path / "pods").chmod(0)
    try:
        assert problems_of(tmp_path) == [f"{tmp_path / 'pods'}: cannot read folder: Permission denied"]
    finally:
        (tmp_path / "pods").chmod(0o755)


# --- 7. a file larger than the limit is refused -----------------------------------------------


def test_a_file_larger_than_the_limit_is_a_problem_naming_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    assert problems_of(path, max_file_bytes=100) == [
        f"{path}: larger than the limit of 100 bytes (split it, or raise the limit: serve --max-file-size)"
    ]
    assert ManifestSource(path, max_file_bytes=path.stat().st_size).load().objects


# --- 6. a file emptied or cut short waits for its rewrite -------------------------------------


def watch_in_thread(feed: ManifestFeed) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=feed.watch, args=(stop,), kwargs={"debounce_ms": 100}, daemon=True)
    thread.start()
    time.sleep(0.6)  # armed
    return stop, thread


def test_a_truncated_file_rewritten_1_5_s_later_never_serves_the_state_without_its_objects(
    tmp_path: Path,
) -> None:
    write(tmp_path, "ns.yaml", NS.format(note="fine"))
    path = write(
        tmp_path,
        "pods.yaml",
        "---\n".join(POD.format(name=n, ip=f"10.0.0.{i}") for i, n in enumerate(["web", "db"], 1)),
    )
    text = path.read_text()
    time.sleep(2.1)  # older than the racy window, as a file in place for a while is
    index = Index()
    states: list[bool] = []
    feed = ManifestFeed(ManifestSource(tmp_path), index)
    feed.add_listener(lambda report: states.append(WEB in index.objects()))
    feed.start()
    stop, thread = watch_in_thread(feed)
    try:
        with path.open("r+") as f:
            f.truncate(0)  # the editor's or `kubectl get > pods.yaml`'s first step
        time.sleep(1.5)
        path.write_text(text.replace("10.0.0.2", "10.0.0.9"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            getattr(o, "ips", None) == ("10.0.0.9",) for o in index.objects().values()
        ):
            time.sleep(0.05)
        assert any(getattr(o, "ips", None) == ("10.0.0.9",) for o in index.objects().values())
    finally:
        stop.set()
        thread.join(5)
    assert states and all(states), f"a state without the pod was applied: {states}"


def test_a_file_emptied_for_good_takes_effect_once_it_has_been_still_long_enough(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(note="fine"))
    path = write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    time.sleep(2.1)
    index = Index()
    reports: list[FeedReport] = []
    feed = ManifestFeed(ManifestSource(tmp_path), index, reports.append, settle=1.0)
    feed.start()
    stop, thread = watch_in_thread(feed)
    try:
        emptied = time.monotonic()
        path.write_text("")
        deadline = emptied + 10
        while time.monotonic() < deadline and WEB in index.objects():
            time.sleep(0.05)
        took = time.monotonic() - emptied
    finally:
        stop.set()
        thread.join(5)
    assert WEB not in index.objects() and 0.9 < took < 5
    assert any(r.waiting == str(path) for r in reports)


def test_a_plain_load_does_not_wait(tmp_path: Path) -> None:
    path = write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    source = ManifestSource(tmp_path)
    source.load()
    path.write_text("")
    assert source.load().empty


# --- a source that holds nothing is flagged -----------------------------------------------------


def test_a_source_without_objects_is_flagged_empty(tmp_path: Path) -> None:
    write(tmp_path, "services.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n")
    assert ManifestSource(tmp_path).load().empty
    feed = ManifestFeed(ManifestSource(tmp_path), Index())
    report = feed.start()
    assert report.empty and feed.status.empty and report.objects == 0
    write(tmp_path, "web.yaml", POD.format(name="web", ip="10.0.0.1"))
    report = feed.reload()
    assert not report.empty and not feed.status.empty and report.objects == 1
