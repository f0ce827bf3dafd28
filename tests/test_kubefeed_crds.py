"""The Kubernetes feed and the cluster-scoped policy CRDs, against tests/kubeapi.py.

A cluster without the policy.networking.k8s.io CRDs is normal: the feed is ready,
reports the collections as not installed (synced, empty, not stale, no error),
and picks each CRD up once it is installed; deleting the CRD deletes its objects.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_kubefeed import Harness

from netpol_pdp.index.decision import Reason, Verdict
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.kubewatch import Backoff, WatchOptions
from netpol_pdp.index.model import Kind

sys.path.insert(0, str(Path(__file__).parent))
from kubeapi import FakeKubeAPI
from kubeworld import BASE, CLIENT, WEB, eventually

#: as test_kubefeed's FAST, and an absent CRD is looked for again every 0.1 s
FAST = WatchOptions(
    watch_timeout=2,
    read_slack=2.0,
    connect_timeout=2.0,
    page_size=50,
    backoff=Backoff(0.05, 0.4),
    absent_poll=0.1,
)
CLUSTER_KINDS = (Kind.CLUSTER_NETWORK_POLICY, Kind.ADMIN_NETWORK_POLICY, Kind.BASELINE_ADMIN_NETWORK_POLICY)


@pytest.fixture
def h() -> Iterator[Harness]:
    with FakeKubeAPI(bookmark_interval=0.2, crds=()) as api:  # a cluster without the CRDs
        harness = Harness(api)
        yield harness
        if harness.feed is not None:
            harness.feed.stop()
            assert not any(t.name.startswith("kube-") and t.is_alive() for t in threading.enumerate())


def deny_into_shop(kind: str = "ClusterNetworkPolicy", name: str = "guard") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}},
        "ingress": [{"name": "no", "action": "Deny", "from": [{"namespaces": {}}]}],
    }
    if kind == "ClusterNetworkPolicy":
        spec.update(tier="Admin", priority=5)
    elif kind == "AdminNetworkPolicy":
        spec.update(priority=5)
    return {"kind": kind, "metadata": {"name": name}, "spec": spec}


def reason(h: Harness) -> Reason:
    return h.index.decide(make_flow(CLIENT, WEB, "TCP", 80)).reason


def test_absent_crds_are_normal_reported_and_picked_up_once_installed(h: Harness) -> None:
    h.api.add_many(BASE)
    feed = h.sync(options=FAST)
    for kind in CLUSTER_KINDS:
        status = h.resource(kind)
        assert (status["installed"], status["synced"], status["stale"], status["objects"]) == (
            False,
            True,
            False,
            0,
        ), status
        assert status["last_error"] is None
    assert not feed.stale and feed.serving
    assert h.index.decide(make_flow(CLIENT, WEB, "TCP", 80)).verdict is Verdict.ALLOW

    h.api.install_crd("ClusterNetworkPolicy")
    h.api.add(deny_into_shop())
    eventually(lambda: reason(h) is Reason.DENIED_BY_ADMIN, what="the CNP to reach the decision")
    assert h.resource(Kind.CLUSTER_NETWORK_POLICY)["installed"]
    assert not h.resource(Kind.ADMIN_NETWORK_POLICY)["installed"]
    assert h.names(Kind.CLUSTER_NETWORK_POLICY) == {"guard"}
    h.index.check()


def test_a_later_installed_v1alpha1_crd_is_watched_like_any_collection(h: Harness) -> None:
    h.api.add_many(BASE)
    h.sync(options=FAST)
    h.api.install_crd("AdminNetworkPolicy")
    h.api.install_crd("BaselineAdminNetworkPolicy")
    eventually(lambda: h.resource(Kind.ADMIN_NETWORK_POLICY)["watching"], what="the ANP watch")
    h.api.add(deny_into_shop("BaselineAdminNetworkPolicy", "default"))
    eventually(lambda: reason(h) is Reason.DENIED_BY_BASELINE, what="the BANP")
    h.api.add(deny_into_shop("AdminNetworkPolicy"))
    eventually(lambda: reason(h) is Reason.DENIED_BY_ADMIN, what="the ANP")
    h.api.delete("AdminNetworkPolicy", "", "guard")
    eventually(lambda: reason(h) is Reason.DENIED_BY_BASELINE, what="the ANP deletion")
    h.index.check()


def test_a_deleted_crd_takes_its_objects_with_it(h: Harness) -> None:
    h.api.install_crd("ClusterNetworkPolicy")
    h.api.add_many([*BASE, deny_into_shop()])
    h.sync(options=FAST)
    assert reason(h) is Reason.DENIED_BY_ADMIN
    assert h.names(Kind.CLUSTER_NETWORK_POLICY) == {"guard"}
    h.api.uninstall_crd("ClusterNetworkPolicy")
    eventually(lambda: not h.resource(Kind.CLUSTER_NETWORK_POLICY)["installed"], what="the CRD gone")
    eventually(lambda: reason(h) is Reason.NOT_ISOLATED, what="the CNP gone from the index")
    assert h.names(Kind.CLUSTER_NETWORK_POLICY) == set()
    status = h.resource(Kind.CLUSTER_NETWORK_POLICY)
    assert (status["synced"], status["stale"], status["objects"]) == (True, False, 0)
