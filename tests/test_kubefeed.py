"""The Kubernetes feed, through the real ``kubernetes`` client, against tests/kubeapi.py.

Every test starts its own fake API server on 127.0.0.1 (a free port) and its own
feed, and stops both.  The scenarios are the ones docs/kubernetes.md promises:
initial sync (paged lists), every kind added/modified/deleted with the decision
following, namespace relabel and namespaceSelector, a watch cut and resumed
without loss or replay, 410 Gone after a gap with deletions and creations, the
API server down (stale, fail-closed, recovery), invalid objects skipped, and a
burst of 10,000 pod events.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import SourceError
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.kubefeed import KubeFeed, load_api_client
from netpol_pdp.index.kubewatch import Backoff, WatchOptions, watch_lines
from netpol_pdp.index.model import Kind
from netpol_pdp.index.validation import parse_object

sys.path.insert(0, str(Path(__file__).parent))
from kubeapi import FakeKubeAPI
from kubeworld import (
    ALLOW_CLIENT,
    BASE,
    CLIENT,
    DENY_WEB,
    FROM_FRIENDS,
    N1,
    NODE_IP,
    OTHER,
    WEB,
    eventually,
    namespace,
    node,
    pod,
    policy,
    write_kubeconfig,
)

KINDS = ("Namespace", "Pod", "Node", "Service", "NetworkPolicy", "EndpointSlice")
FAST = WatchOptions(
    watch_timeout=2, read_slack=2.0, connect_timeout=2.0, page_size=50, backoff=Backoff(0.05, 0.4)
)


# --- harness -----------------------------------------------------------------------------


@dataclass
class Harness:
    api: FakeKubeAPI
    index: Index = field(default_factory=Index)
    feed: KubeFeed | None = None

    def start(self, **kw: Any) -> KubeFeed:
        kw.setdefault("options", FAST)
        kw.setdefault("stale_after", 30.0)
        self.feed = KubeFeed(self.index, client.ApiClient(client.Configuration(host=self.api.url)), **kw)
        self.feed.start()
        return self.feed

    def sync(self, **kw: Any) -> KubeFeed:
        feed = self.start(**kw)
        assert feed.wait_ready(10), feed.status().to_dict()
        return feed

    def verdict(self, src: str, dst: str, port: int = 80) -> Verdict:
        return self.index.decide(make_flow(src, dst, "TCP", port)).verdict

    def keys(self) -> set[tuple[Kind, str, str]]:
        """The index's objects.  ``Index.objects()`` reads writer state: while the feed
        is still applying, a concurrent read may trip over a dict being resized, so retry."""
        for _ in range(100):
            try:
                return set(self.index.objects())
            except RuntimeError:
                time.sleep(0.01)
        raise AssertionError("Index.objects() kept changing")

    def names(self, kind: Kind) -> set[str]:
        return {name for (k, _, name) in self.keys() if k is kind}

    def resource(self, kind: Kind) -> dict[str, Any]:
        assert self.feed is not None
        return next(r for r in self.feed.status().to_dict()["resources"] if r["kind"] == kind.value)

    def settled(self) -> None:
        """Wait until the index holds exactly what the API server holds (same objects, same contents)."""

        def want() -> dict[tuple[Kind, str, str], Any]:
            objs = [parse_object(o) for kind in KINDS for o in self.api.objects(kind)]
            return {o.key: o for o in objs if o is not None}

        def same() -> bool:
            for _ in range(100):
                try:
                    return self.index.objects() == want()
                except RuntimeError:  # Index.objects() raced the writer: look again
                    time.sleep(0.01)
            return False

        eventually(same, what="the index to hold what the API server holds")


@pytest.fixture
def h() -> Iterator[Harness]:
    with FakeKubeAPI(bookmark_interval=0.2) as api:
        harness = Harness(api)
        yield harness
        if harness.feed is not None:
            harness.feed.stop()
            assert not any(t.name.startswith("kube-") and t.is_alive() for t in threading.enumerate())


# --- initial sync ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [
        pytest.param(500, "HTTP 500 Internal Server Error", id="while one list fails with a server error"),
        pytest.param(403, "HTTP 403 Forbidden", id="while RBAC forbids one list"),
    ],
)
def test_initial_sync_pages_through_every_collection_and_is_ready_after_all_four(
    h: Harness, code: int, error: str
) -> None:
    pods = [pod("shop", f"p{i}", f"10.2.{i // 200}.{i % 200}", app="bulk") for i in range(120)]
    h.api.add_many([*BASE, *pods, DENY_WEB])
    h.api.fail("NetworkPolicy", code)
    feed = h.start()
    eventually(lambda: len(h.names(Kind.POD)) == 123, what="pods listed")
    time.sleep(0.3)
    assert not feed.ready, "ready before the NetworkPolicy list was applied"
    assert h.resource(Kind.NETWORK_POLICY)["last_error"] == error
    assert not h.resource(Kind.NETWORK_POLICY)["synced"]
    assert h.resource(Kind.POD)["synced"]
    h.api.fail("NetworkPolicy", None)
    assert feed.wait_ready(10)
    h.settled()
    assert {r["synced"] for r in feed.status().to_dict()["resources"]} == {True}
    assert h.verdict(CLIENT, WEB) is Verdict.DENY
    assert any("continue=" in r and r.startswith("/api/v1/pods") for r in h.api.requests), (
        "pods were not paged"
    )
    h.index.check()


# --- every kind added, modified, deleted --------------------------------------------------


@dataclass(frozen=True)
class Change:
    setup: list[dict[str, Any]]
    change: Callable[[FakeKubeAPI], object]
    flow: tuple[str, str]
    before: Verdict
    after: Verdict


ALLOW, DENY = Verdict.ALLOW, Verdict.DENY
CHANGES = {
    "a NetworkPolicy added isolates the pod it selects": Change(
        [], lambda a: a.add(DENY_WEB), (CLIENT, WEB), ALLOW, DENY
    ),
    "a NetworkPolicy modified to allow the client lets it in": Change(
        [DENY_WEB], lambda a: a.modify(ALLOW_CLIENT), (CLIENT, WEB), DENY, ALLOW
    ),
    "a NetworkPolicy deleted stops isolating": Change(
        [DENY_WEB], lambda a: a.delete("NetworkPolicy", "shop", "web"), (CLIENT, WEB), DENY, ALLOW
    ),
    "a Pod added under a policy's selector is isolated": Change(
        [DENY_WEB],
        lambda a: a.add(pod("shop", "web2", "10.0.0.5", app="web")),
        (CLIENT, "10.0.0.5"),
        ALLOW,
        DENY,
    ),
    "a Pod relabelled out of a policy's selector is no longer isolated": Change(
        [DENY_WEB], lambda a: a.modify(pod("shop", "web", WEB, app="old")), (CLIENT, WEB), DENY, ALLOW
    ),
    "a Pod deleted leaves its address unowned": Change(
        [DENY_WEB], lambda a: a.delete("Pod", "shop", "web"), (CLIENT, WEB), DENY, ALLOW
    ),
    "a Node added makes a pod's traffic to it node traffic": Change(
        [DENY_WEB], lambda a: a.add(N1), (WEB, NODE_IP), DENY, ALLOW
    ),
    "a Node modified moves node traffic to its new address": Change(
        [DENY_WEB, N1], lambda a: a.modify(node("n1", "10.9.0.7")), (WEB, NODE_IP), ALLOW, DENY
    ),
    "a Node deleted ends the node exemption": Change(
        [DENY_WEB, N1], lambda a: a.delete("Node", "", "n1"), (WEB, NODE_IP), ALLOW, DENY
    ),
    "a Namespace relabelled into a namespaceSelector is let in": Change(
        [FROM_FRIENDS], lambda a: a.modify(namespace("other", team="friends")), (OTHER, WEB), DENY, ALLOW
    ),
    "a Namespace relabelled out of a namespaceSelector is shut out": Change(
        [FROM_FRIENDS, namespace("other", team="friends")],
        lambda a: a.modify(namespace("other", team="foes")),
        (OTHER, WEB),
        ALLOW,
        DENY,
    ),
    "a Namespace deleted loses its labels": Change(
        [FROM_FRIENDS, namespace("other", team="friends")],
        lambda a: a.delete("Namespace", "", "other"),
        (OTHER, WEB),
        ALLOW,
        DENY,
    ),
    "a Namespace added with matching labels is let in": Change(
        [FROM_FRIENDS, pod("late", "p", "10.0.2.1")],
        lambda a: a.add(namespace("late", team="friends")),
        ("10.0.2.1", WEB),
        DENY,
        ALLOW,
    ),
}


@pytest.mark.parametrize("case", CHANGES.values(), ids=CHANGES.keys())
def test_each_change_reaches_the_decision(h: Harness, case: Change) -> None:
    h.api.add_many([*BASE, *case.setup])
    h.sync()
    assert h.verdict(*case.flow) is case.before
    generation = h.index.generation
    case.change(h.api)
    h.settled()
    eventually(lambda: h.index.generation > generation, what="a new generation")
    assert h.verdict(*case.flow) is case.after
    h.index.check()


# --- a watch cut mid-stream --------------------------------------------------------------


def test_a_watch_cut_mid_stream_resumes_without_losing_or_replaying_events(h: Harness) -> None:
    h.api.add_many(BASE)
    h.sync()
    lists_before = sum("watch=" not in r for r in h.api.requests)

    def churn() -> None:
        for i in range(150):
            h.api.add(pod("shop", f"c{i}", f"10.3.0.{i + 1}", app="churn"))
            if i % 3 == 0:
                h.api.modify(pod("shop", f"c{i}", f"10.3.0.{i + 1}", app="churned"))
            if i % 5 == 0:
                h.api.delete("Pod", "shop", f"c{i}")
            time.sleep(0.002)

    writer = threading.Thread(target=churn)
    writer.start()
    for _ in range(4):
        time.sleep(0.05)
        h.api.drop_watches()
    writer.join()
    h.settled()
    pods = h.resource(Kind.POD)
    assert pods["events"] == 150 + 50 + 30, "an event was lost or replayed"
    assert pods["relists"] == 0
    assert pods["reconnects"] >= 1
    assert sum("watch=" not in r for r in h.api.requests) == lists_before, "the feed re-listed"
    assert h.index.objects()[(Kind.POD, "shop", "c3")].labels == {"app": "churned"}
    h.index.check()


def test_the_watch_is_reopened_after_the_server_side_timeout_from_the_last_version(h: Harness) -> None:
    h.api.add_many(BASE)
    h.sync(options=WatchOptions(watch_timeout=1, read_slack=2.0, backoff=Backoff(0.05, 0.4)))
    time.sleep(1.5)
    h.api.add(DENY_WEB)
    h.settled()
    watches = [r for r in h.api.requests if r.startswith("/apis/") and "watch=true" in r]
    assert len(watches) >= 2
    assert all("timeoutSeconds=1" in r and "allowWatchBookmarks=true" in r for r in watches)
    status = h.resource(Kind.NETWORK_POLICY)
    assert status["reconnects"] == 0
    assert status["relists"] == 0
    assert h.verdict(CLIENT, WEB) is Verdict.DENY


# --- 410 Gone after a gap ----------------------------------------------------------------


@pytest.mark.parametrize("as_http", [False, True], ids=["as an ERROR event", "as an HTTP 410 response"])
def test_410_gone_after_a_gap_relists_and_applies_the_difference(h: Harness, as_http: bool) -> None:
    h.api.expired_as_http = as_http
    h.api.add_many([*BASE, DENY_WEB, pod("shop", "doomed", "10.0.0.9", app="x")])
    h.sync()
    assert h.verdict(CLIENT, WEB) is Verdict.DENY
    h.api.go_down()
    h.api.delete("NetworkPolicy", "shop", "web")
    h.api.delete("Pod", "shop", "doomed")
    h.api.add(pod("shop", "newcomer", "10.0.0.10", app="y"))
    h.api.modify(namespace("other", team="friends"))
    h.api.add(FROM_FRIENDS | {"metadata": {"namespace": "shop", "name": "friends"}})
    h.api.compact()
    h.api.come_back()
    h.settled()
    for kind in (Kind.POD, Kind.NETWORK_POLICY, Kind.NAMESPACE):
        assert h.resource(kind)["relists"] >= 1
    assert "doomed" not in h.names(Kind.POD)
    assert "newcomer" in h.names(Kind.POD)
    assert h.names(Kind.NETWORK_POLICY) == {"friends"}
    assert h.verdict(CLIENT, WEB) is Verdict.DENY  # only friends now
    assert h.verdict(OTHER, WEB) is Verdict.ALLOW
    h.index.check()


# --- the API server goes away ------------------------------------------------------------


def test_api_server_down_goes_stale_fails_closed_and_recovers(h: Harness) -> None:
    h.api.add_many([*BASE, DENY_WEB])
    feed = h.sync(stale_after=0.5, fail_closed_after=1.0)
    assert feed.serving
    assert not feed.status().stale
    h.api.go_down()
    eventually(lambda: feed.status().stale, what="stale")
    assert h.verdict(CLIENT, WEB) is Verdict.DENY, "answers must keep coming from the last state"
    eventually(lambda: not feed.serving, what="fail closed")
    pods = h.resource(Kind.POD)
    assert pods["stale"]
    assert pods["reconnects"] >= 1
    assert "refused" in pods["last_error"]
    # Serving stops once *some* watch has been down fail_closed_after; each resource noticed
    # the outage at its own moment, so only the longest outage is bound to have reached it.
    longest = max(r["seconds_without_watch"] for r in feed.status().to_dict()["resources"])
    assert longest >= 1.0
    assert pods["seconds_without_watch"] >= 0.5, "pods went stale (stale_after) before fail-closed"
    h.api.delete("NetworkPolicy", "shop", "web")  # happens while we cannot see it
    h.api.come_back()
    h.settled()
    eventually(lambda: feed.serving and not feed.status().stale, what="recovery")
    assert h.verdict(CLIENT, WEB) is Verdict.ALLOW
    assert h.resource(Kind.NETWORK_POLICY)["relists"] == 0, "history was kept: the watch resumes"


# --- invalid objects ---------------------------------------------------------------------


def test_an_invalid_object_is_reported_and_skipped_keeping_the_last_good_version(h: Harness) -> None:
    bad_port = {"ports": [{"port": 70000}]}
    h.api.add_many([*BASE, ALLOW_CLIENT, policy("shop", "broken", ingress=[bad_port])])
    feed = h.sync()
    status = h.resource(Kind.NETWORK_POLICY)
    assert status["invalid_objects"] == 1
    assert "NetworkPolicy shop/broken" in status["last_invalid"]
    assert "spec.ingress[0].ports[0].port" in status["last_invalid"]
    assert h.names(Kind.NETWORK_POLICY) == {"web"}
    assert h.verdict(CLIENT, WEB) is Verdict.ALLOW
    # modified into an invalid shape: the last good version stays in force
    h.api.modify(ALLOW_CLIENT | {"spec": ALLOW_CLIENT["spec"] | {"ingress": [bad_port]}})
    eventually(lambda: h.resource(Kind.NETWORK_POLICY)["invalid_objects"] == 2, what="the invalid update")
    assert h.verdict(CLIENT, WEB) is Verdict.ALLOW
    # fixed: applied; the broken one deleted: no longer counted
    h.api.modify(DENY_WEB)
    h.api.delete("NetworkPolicy", "shop", "broken")
    eventually(lambda: h.verdict(CLIENT, WEB) is Verdict.DENY, what="the fixed policy")
    eventually(lambda: h.resource(Kind.NETWORK_POLICY)["invalid_objects"] == 0, what="nothing invalid")
    assert feed.ready
    assert feed.serving


# --- a burst -----------------------------------------------------------------------------


def test_a_burst_of_10000_pod_events_is_applied_in_batches(h: Harness) -> None:
    h.api.add_many(BASE)
    feed = h.sync()
    batches = feed.status().batches
    burst = [pod("bulk", f"b{i}", f"10.8.{i // 250}.{i % 250 + 1}", app=f"a{i % 40}") for i in range(10_000)]
    h.api.add_many(burst)  # stored at once; the watch streams them from here
    started = time.perf_counter()
    eventually(lambda: h.resource(Kind.POD)["objects"] == 10_003, timeout=60, what="10,000 pods")
    elapsed = time.perf_counter() - started
    used = feed.status().batches - batches
    # Not asserted (speed is measured, not tested); the fake server's JSON encoding of
    # the stream runs in this same process and is included.
    print(f"\n10,000 pod ADDED events: streamed and applied in {elapsed:.2f} s, {used} batches (generations)")
    assert used < 10_000
    assert h.verdict("10.8.0.1", "10.8.39.250") is Verdict.ALLOW
    h.index.check()


# --- pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_waits_between_half_and_all_of_the_capped_exponential(attempt: int) -> None:
    b = Backoff(base=0.5, cap=4.0)
    ceiling = min(4.0, 0.5 * 2**attempt)
    delays = [b.delay(attempt) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) > ceiling / 10, "no jitter"


def test_stop_interrupts_an_open_watch_promptly(h: Harness) -> None:
    h.api.add_many(BASE)
    feed = h.sync(options=WatchOptions(watch_timeout=300, backoff=Backoff(0.05, 0.4)))
    eventually(lambda: all(r["watching"] for r in feed.status().to_dict()["resources"]), what="watching")
    started = time.monotonic()
    feed.stop()
    assert time.monotonic() - started < 3.0


def test_a_kubeconfig_and_its_contexts_select_the_api_server(h: Harness, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path, h.api.url)
    assert load_api_client(str(path)).configuration.host == h.api.url
    assert load_api_client(str(path), "other").configuration.host == "http://127.0.0.1:1"
    h.api.add_many([*BASE, N1])
    feed = KubeFeed(h.index, load_api_client(str(path)), options=FAST)
    with feed:
        assert feed.wait_ready(10)
    assert h.names(Kind.NODE) == {"n1"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("missing", "missing", id="a kubeconfig that does not exist is named"),
        pytest.param("context", "nosuch", id="an unknown context is named"),
        pytest.param("in-cluster", "(?i)service", id="in-cluster without a service account says so"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, message: str
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SourceError, match=message):
        if setup == "missing":
            load_api_client(str(tmp_path / "missing"))
        elif setup == "context":
            load_api_client(str(write_kubeconfig(tmp_path, "http://127.0.0.1:1")), "nosuch")
        else:
            monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")
            load_api_client()


STREAM = b'{"type": "ADDED", "a": 1}\n{"type": "BOOKMARK"}\n\n{"type": "DELETED", "b": "x\\ny"}\n'
LINES = [b'{"type": "ADDED", "a": 1}', b'{"type": "BOOKMARK"}', b'{"type": "DELETED", "b": "x\\ny"}']


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([STREAM], id="one chunk holding every line"),
        pytest.param([bytes([b]) for b in STREAM], id="one byte per chunk"),
        pytest.param([STREAM[:10], STREAM[10:27], STREAM[27:]], id="chunks cut mid-line and at line ends"),
        pytest.param([STREAM.rstrip(b"\n")], id="a last line without its newline"),
    ],
)
def test_watch_lines_splits_a_stream_into_lines_however_it_is_chunked(chunks: list[bytes]) -> None:
    assert list(watch_lines(chunks)) == LINES
