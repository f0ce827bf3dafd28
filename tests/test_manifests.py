"""The manifest feed: what a folder of manifests loads to, every located error, diffs, reloads, watching."""

from __future__ import annotations

import json
import shutil
import textwrap
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.manifests import FeedReport, ManifestFeed, ManifestSource, diff
from netpol_pdp.index.model import Delete, Event, Kind, Namespace, Object, ObjectKey, Pod, Upsert

NS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels: {{team: {team}}}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}
spec: {{nodeName: node-a, containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}
status: {{phase: Running, podIPs: [{{ip: {ip}}}]}}
"""

POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
  podSelector: {{}}
  ingress:
  - ports: [{{port: {port}}}]
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(SourceError) as err:
        ManifestSource(paths).load()
    return err.value.problems


class RecordingIndex:
    """Stands in for the index's writer side to observe exactly which events the feed applies."""

    def __init__(self) -> None:
        self.generation = 0
        self.batches: list[list[Event]] = []
        self._objects: dict[ObjectKey, Object] = {}

    def apply(self, events: Iterable[Event]) -> int:
        batch = list(events)
        self.batches.append(batch)
        for e in batch:
            if isinstance(e, Upsert):
                self._objects[e.key] = e.obj
            else:
                self._objects.pop(e.key, None)
        self.generation += 1
        return self.generation

    def objects(self) -> dict[ObjectKey, Object]:
        return dict(self._objects)


# --- reading ------------------------------------------------------------------------------


def test_multi_document_yaml_loads_every_document_and_skips_empty_ones(tmp_path: Path) -> None:
    write(
        tmp_path,
        "all.yaml",
        NS.format(name="shop", team="a") + "---\n---\n" + POD.format(name="web", ns="shop", ip="10.0.0.1"),
    )
    result = ManifestSource(tmp_path).load()
    assert set(result.objects) == {(Kind.NAMESPACE, "", "shop"), (Kind.POD, "shop", "web")}
    assert result.files == 1
    pod = result.objects[(Kind.POD, "shop", "web")]
    assert isinstance(pod, Pod) and pod.ips == ("10.0.0.1",) and pod.ports[0].name == "http"


def test_a_kind_list_is_unpacked_and_typed_list_items_take_their_kind_from_the_list(tmp_path: Path) -> None:
    write(
        tmp_path,
        "list.yaml",
        """\
        apiVersion: v1
        kind: List
        items:
        - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
        - apiVersion: v1
          kind: PodList
          items:
          - {metadata: {name: web, namespace: shop}, status: {podIP: 10.0.0.1}}
        """,
    )
    assert set(ManifestSource(tmp_path).load().objects) == {
        (Kind.NAMESPACE, "", "shop"),
        (Kind.POD, "shop", "web"),
    }


def test_json_files_are_read_like_yaml(tmp_path: Path) -> None:
    doc = {
        "kind": "NetworkPolicyList",
        "items": [
            {
                "kind": "NetworkPolicy",
                "metadata": {"name": "deny", "namespace": "shop"},
                "spec": {"podSelector": {}},
            }
        ],
    }
    write(tmp_path, "p.json", json.dumps(doc))
    assert list(ManifestSource(tmp_path).load().objects) == [(Kind.NETWORK_POLICY, "shop", "deny")]


def test_folders_are_read_recursively_in_sorted_order_and_hidden_entries_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "b/deep/pod.yml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
    write(tmp_path, "a/ns.yaml", NS.format(name="shop", team="a"))
    write(tmp_path, "a/README.md", "not a manifest")
    write(tmp_path, ".git/objects.yaml", "this: [is not: loaded")
    write(tmp_path, "..2024_01_01/ns.yaml", NS.format(name="shop", team="a"))  # a ConfigMap mount's twin
    source = ManifestSource(tmp_path)
    files, missing = source.files()
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a/ns.yaml", "b/deep/pod.yml"]
    assert missing == []
    assert source.load().files == 2


def test_files_and_folders_can_be_mixed_and_each_file_is_read_once(tmp_path: Path) -> None:
    ns = write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    write(tmp_path, "pods/web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
    result = ManifestSource([ns, tmp_path / "pods", tmp_path]).load()
    assert result.files == 2 and len(result.objects) == 2


def test_other_kinds_and_other_api_groups_are_ignored_and_counted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mixed.yaml",
        """\
        {apiVersion: v1, kind: ConfigMap, metadata: {name: web}}
        ---
        {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}}
        ---
        {apiVersion: v1, kind: ConfigMap, metadata: {name: api}}
        ---
        {apiVersion: projectcalico.org/v3, kind: NetworkPolicy, metadata: {name: x}, spec: {selector: all()}}
        """,
    )
    result = ManifestSource(tmp_path).load()
    assert result.objects == {}
    assert result.ignored == {"ConfigMap": 2, "Deployment": 1, "projectcalico.org/v3/NetworkPolicy": 1}


def test_a_namespace_gets_its_name_label_and_counts_cover_every_kind(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    result = ManifestSource(tmp_path).load()
    ns = result.objects[(Kind.NAMESPACE, "", "shop")]
    assert isinstance(ns, Namespace) and ns.labels["kubernetes.io/metadata.name"] == "shop"
    assert result.counts() == {"Namespace": 1, "Pod": 0, "Node": 0, "NetworkPolicy": 0}


# --- every located error ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "p.yaml",
            NS.format(name="shop", team="a") + "---\n" + POLICY.format(name="web", ns="shop", port=70000),
            "p.yaml: document 2: NetworkPolicy shop/web: spec.ingress[0].ports[0].port: "
            "must be between 1 and 65535, inclusive (got 70000)",
            id="a field error names the file, document, object and field path",
        ),
        pytest.param(
            "bad.yaml",
            "kind: Pod\nmetadata: {name: q\n  labels: [\n",
            "bad.yaml: line 3, column 9: invalid YAML: while parsing a flow mapping",
            id="a YAML syntax error names the line and column",
        ),
        pytest.param(
            "bad.json",
            '{"kind": "Pod",\n "metadata": }',
            "bad.json: line 2, column 14: invalid JSON: Expecting value",
            id="a JSON syntax error names the line and column",
        ),
        pytest.param(
            "list.yaml",
            "kind: List\nitems:\n- {kind: Pod, metadata: {name: web}, status: {podIP: not-an-ip}}\n",
            "list.yaml: document 1: items[0]: Pod default/web: status.podIP: must be a valid IP address",
            id="an error inside a List names the item",
        ),
        pytest.param(
            "nokind.yaml",
            "metadata: {name: web}\n",
            "nokind.yaml: document 1: object default/web: kind: is required",
            id="a document without kind is an error, not ignored",
        ),
        pytest.param(
            "kind.yaml",
            "kind: [Pod]\nmetadata: {name: web}\n",
            "kind.yaml: document 1: object default/web: kind: must be a string (got ['Pod'])",
            id="a kind that is not a string is an error",
        ),
        pytest.param(
            "null-item.yaml",
            "kind: List\nitems: [null]\n",
            "null-item.yaml: document 1: items[0]: must be a Kubernetes object (a map), got NoneType",
            id="an empty list item is an error",
        ),
        pytest.param(
            "scalar.yaml",
            "just a string\n",
            "scalar.yaml: document 1: must be a Kubernetes object (a map), got str",
            id="a document that is not a map is an error",
        ),
        pytest.param(
            "items.yaml",
            "kind: List\nitems: {a: 1}\n",
            "items.yaml: document 1: List: items: must be a list",
            id="a list whose items are not a list is an error",
        ),
    ],
)
def test_every_problem_is_located(tmp_path: Path, name: str, text: str, expected: str) -> None:
    write(tmp_path, name, text)
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / expected.split(':', 1)[0]}:{expected.split(':', 1)[1]}")


def test_every_problem_of_every_file_is_reported_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", POLICY.format(name="one", ns="shop", port=0))
    write(tmp_path, "b.yaml", POLICY.format(name="two", ns="shop", port='"Bad_Name"'))
    write(tmp_path, "c.yaml", "kind: [\n")
    problems = problems_of(tmp_path)
    assert [p.split(":")[0] for p in problems] == [str(tmp_path / n) for n in ("a.yaml", "b.yaml", "c.yaml")]
    assert "spec.ingress[0].ports[0].port" in problems[0] and "spec.ingress[0].ports[0].port" in problems[1]


def test_an_object_declared_in_two_files_names_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", NS.format(name="shop", team="a"))
    write(tmp_path, "b.yaml", NS.format(name="other", team="b") + "---\n" + NS.format(name="shop", team="b"))
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'b.yaml'}: document 2: Namespace shop: declared twice; first in "
        f"{tmp_path / 'a.yaml'}: document 1"
    ]


def test_a_missing_path_is_a_problem(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no such file or directory"]


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"kind: Namespace\nmetadata: {name: caf\xe9}\n")
    assert problems_of(tmp_path) == [f"{tmp_path / 'latin1.yaml'}: line 2: not UTF-8 text (byte offset 36)"]


# --- diff ---------------------------------------------------------------------------------


def _objs(*objs: Object) -> dict[ObjectKey, Object]:
    return {o.key: o for o in objs}


def test_diff_deletes_removed_objects_then_upserts_added_and_changed_ones_in_a_fixed_order() -> None:
    shop, web, api = Namespace("shop"), Pod("shop", "web", ips=("10.0.0.1",)), Pod("shop", "api")
    old = _objs(shop, web, api, Namespace("gone"))
    web2 = Pod("shop", "web", ips=("10.0.0.2",))
    new = _objs(Namespace("zeta"), shop, web2, Pod("shop", "new"))
    assert diff(old, new) == [
        Delete((Kind.POD, "shop", "api")),
        Delete((Kind.NAMESPACE, "", "gone")),
        Upsert(Namespace("zeta")),
        Upsert(Pod("shop", "new")),
        Upsert(web2),
    ]


def test_diff_of_equal_states_is_empty_and_label_changes_count() -> None:
    a = _objs(Namespace("shop", {"team": "a"}))
    assert diff(a, _objs(Namespace("shop", {"team": "a"}))) == []
    assert diff(a, _objs(Namespace("shop", {"team": "b"}))) == [Upsert(Namespace("shop", {"team": "b"}))]


# --- the feed -----------------------------------------------------------------------------


def test_start_applies_the_whole_first_load_and_reload_applies_only_the_diff(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    write(tmp_path, "web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
    index = RecordingIndex()
    reports: list[FeedReport] = []
    feed = ManifestFeed(ManifestSource(tmp_path), index, listener=reports.append)  # type: ignore[arg-type]
    first = feed.start()
    assert first.ok and first.initial and first.upserts == 2 and first.generation == 1
    assert feed.status.objects == {"Namespace": 1, "Pod": 1, "Node": 0, "NetworkPolicy": 0}

    write(tmp_path, "web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.9"))
    write(tmp_path, "api.yaml", POD.format(name="api", ns="shop", ip="10.0.0.2"))
    second = feed.reload()
    assert [type(e).__name__ + " " + e.key[2] for e in index.batches[-1]] == ["Upsert api", "Upsert web"]
    assert second.generation == 2 and (second.upserts, second.deletes) == (2, 0)

    (tmp_path / "api.yaml").unlink()
    assert feed.reload().deletes == 1 and index.batches[-1] == [Delete((Kind.POD, "shop", "api"))]

    unchanged = feed.reload()
    assert unchanged.ok and not unchanged.changed and unchanged.generation == 3 and len(index.batches) == 3
    assert [r.generation for r in reports] == [1, 2, 3, 3]
    assert feed.status.loads == 4 and feed.status.healthy


def test_an_invalid_change_keeps_the_last_good_state_and_reports_every_error(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    index = RecordingIndex()
    reports: list[FeedReport] = []
    feed = ManifestFeed(ManifestSource(tmp_path), index, listener=reports.append)  # type: ignore[arg-type]
    feed.start()
    good = index.objects()

    write(tmp_path, "ns.yaml", NS.format(name="shop", team="b"))  # valid on its own ...
    write(
        tmp_path,
        "p.yaml",
        POLICY.format(name="a", ns="shop", port=0) + "---\n" + POLICY.format(name="b", ns="shop", port=99999),
    )  # ... but this file makes the whole change invalid
    bad = feed.reload()
    assert not bad.ok and len(bad.problems) == 2
    assert index.objects() == good and len(index.batches) == 1
    status = feed.status
    assert status.errors == 1 and status.last_error == bad.problems and status.generation == 1
    assert not status.healthy and status.last_load_time is not None
    assert status.last_good_time is not None and status.last_good_time <= status.last_load_time

    (tmp_path / "p.yaml").unlink()
    fixed = feed.reload()
    assert fixed.ok and fixed.upserts == 1 and feed.status.last_error is None and feed.status.generation == 2
    assert [r.ok for r in reports] == [True, False, True]


def test_a_failed_first_load_is_a_startup_error(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", POLICY.format(name="a", ns="shop", port=0))
    feed = ManifestFeed(ManifestSource(tmp_path), RecordingIndex())  # type: ignore[arg-type]
    with pytest.raises(SourceError) as err:
        feed.start()
    assert "spec.ingress[0].ports[0].port" in err.value.problems[0]
    assert feed.status.errors == 1 and feed.status.loads == 0


@dataclass
class Watching:
    """A feed being watched in a thread: its index, the "changed" signal, and when the stop was asked."""

    index: RecordingIndex
    changed: threading.Event
    thread: threading.Thread
    stopped_at: float = 0.0


@contextmanager
def watching(source: Path) -> Iterator[Watching]:
    """Start a feed on ``source`` and watch it (100 ms debounce); stop and join the thread at the end."""
    index = RecordingIndex()
    changed = threading.Event()
    feed = ManifestFeed(ManifestSource(source), index)  # type: ignore[arg-type]
    feed.start()
    feed.add_listener(lambda report: changed.set() if report.changed else None)
    stop = threading.Event()
    thread = threading.Thread(target=feed.watch, args=(stop,), kwargs={"debounce_ms": 100}, daemon=True)
    thread.start()
    watch = Watching(index, changed, thread)
    try:
        time.sleep(0.3)  # let the watcher register before the change
        yield watch
    finally:
        stop.set()
        watch.stopped_at = time.monotonic()
        thread.join(5)


def test_watch_picks_up_a_change_within_seconds_and_stops_promptly(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    with watching(tmp_path) as watch:
        write(tmp_path, "sub/web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
        assert watch.changed.wait(10), "the change was not picked up"
        assert (Kind.POD, "shop", "web") in watch.index.objects()
    assert not watch.thread.is_alive() and time.monotonic() - watch.stopped_at < 2


def test_a_change_made_between_the_first_load_and_the_watch_is_not_missed(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    index = RecordingIndex()
    changed = threading.Event()
    feed = ManifestFeed(ManifestSource(tmp_path), index)  # type: ignore[arg-type]
    feed.start()
    feed.add_listener(lambda report: changed.set() if report.changed else None)
    write(tmp_path, "web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))  # before watch() arms
    stop = threading.Event()
    thread = threading.Thread(target=feed.watch, args=(stop,), kwargs={"debounce_ms": 100}, daemon=True)
    thread.start()
    try:
        assert changed.wait(10), "the change made before the watch was armed was missed"
        assert (Kind.POD, "shop", "web") in index.objects()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_source_folder_removed_and_created_again_is_watched_again(tmp_path: Path) -> None:
    source = tmp_path / "cluster"
    write(source, "ns.yaml", NS.format(name="shop", team="a"))
    with watching(source) as watch:
        shutil.rmtree(source)  # rm -rf cluster && git checkout cluster: the folder's watch goes with it
        write(source, "ns.yaml", NS.format(name="shop", team="b"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ns = watch.index.objects().get((Kind.NAMESPACE, "", "shop"))
            if isinstance(ns, Namespace) and ns.labels["team"] == "b":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the folder created again was not read")
        watch.changed.clear()
        write(source, "web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
        assert watch.changed.wait(10), "a change in the new folder was not picked up"
        assert (Kind.POD, "shop", "web") in watch.index.objects()
    assert not watch.thread.is_alive()


def test_the_feed_keeps_a_real_index_answering_from_the_latest_good_state(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS.format(name="shop", team="a"))
    write(tmp_path, "web.yaml", POD.format(name="web", ns="shop", ip="10.0.0.1"))
    index = Index()
    feed = ManifestFeed(ManifestSource(tmp_path), index)
    feed.start()
    flow = make_flow("10.9.9.9", "10.0.0.1", "TCP", 80)
    assert index.decide(flow).reason.value == "not-isolated"

    write(tmp_path, "deny.yaml", POLICY.format(name="only-443", ns="shop", port=443))
    assert feed.reload().upserts == 1
    index.check()
    assert index.decide(flow).reason.value == "denied-on-ingress"

    write(tmp_path, "deny.yaml", POLICY.format(name="only-443", ns="shop", port=-1))
    assert not feed.reload().ok
    assert index.decide(flow).reason.value == "denied-on-ingress" and index.generation == 2

    (tmp_path / "deny.yaml").unlink()
    assert feed.reload().deletes == 1
    index.check()
    assert index.decide(flow).reason.value == "not-isolated" and index.objects().keys() == {
        (Kind.NAMESPACE, "", "shop"),
        (Kind.POD, "shop", "web"),
    }


def test_watch_of_a_single_file_sees_it_replaced_by_rename_as_editors_do(tmp_path: Path) -> None:
    target = write(tmp_path, "cluster.yaml", NS.format(name="shop", team="a"))
    with watching(target) as watch:
        write(tmp_path, "unrelated.yaml", NS.format(name="other", team="x"))  # same folder, not the source
        staged = write(tmp_path, ".cluster.yaml.tmp", NS.format(name="shop", team="b"))
        staged.replace(target)
        assert watch.changed.wait(10), "the replaced file was not picked up"
        ns = watch.index.objects()[(Kind.NAMESPACE, "", "shop")]
        assert isinstance(ns, Namespace) and ns.labels["team"] == "b"
        assert (Kind.NAMESPACE, "", "other") not in watch.index.objects()
    assert not watch.thread.is_alive()
