"""The test API server (tests/kubeapi.py) behaves as kube-apiserver does where the feed relies on it.

Checked over plain HTTP, for the collections the Services feed adds (core v1
``services``, ``discovery.k8s.io/v1`` ``endpointslices``) and for the watch rules
every collection shares: bookmarks only once the watch cache is ahead of the
watch, 410 Gone only for a revision older than a restart (or compaction).
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kubeapi import FakeKubeAPI
from kubeworld import endpoint_slice, service

SERVICES = "/api/v1/services"
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(bookmark_interval=0.05) as server:
        yield server


def get(api: FakeKubeAPI, path: str) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def watch(api: FakeKubeAPI, path: str, rv: str, seconds: int = 1) -> list[dict[str, Any]]:
    """Every event of one watch that the server ends after ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=seconds + 5)
    try:
        query = f"?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds={seconds}"
        conn.request("GET", path + query)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return [{"type": "HTTP", "object": json.loads(body)}]
        return [json.loads(line) for line in body.splitlines() if line.strip()]
    finally:
        conn.close()


def spec_of(api: FakeKubeAPI, name: str, ns: str = "shop") -> dict[str, Any]:
    found = api.get("Service", ns, name)
    assert found is not None
    spec: dict[str, Any] = found["spec"]
    return spec


# --- Services: what the API server defaults and allocates ---------------------------------


def test_a_cluster_ip_service_gets_an_address_families_and_defaulted_ports(api: FakeKubeAPI) -> None:
    api.add(service("shop", "web", {"port": 80, "name": "http"}))
    spec = spec_of(api, "web")
    assert spec["type"] == "ClusterIP"
    assert spec["clusterIP"].startswith("10.96.")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert spec["ports"] == [{"port": 80, "name": "http", "protocol": "TCP", "targetPort": 80}]


def test_two_services_never_share_an_allocated_address(api: FakeKubeAPI) -> None:
    api.add_many([service("shop", f"s{i}", {"port": 80}) for i in range(300)])
    assert len({spec_of(api, f"s{i}")["clusterIP"] for i in range(300)}) == 300


def test_a_dual_stack_service_gets_one_address_of_each_family(api: FakeKubeAPI) -> None:
    api.add(service("shop", "web", {"port": 80}, ipFamilyPolicy="PreferDualStack"))
    spec = spec_of(api, "web")
    assert [":" in ip for ip in spec["clusterIPs"]] == [False, True]
    assert spec["ipFamilies"] == ["IPv4", "IPv6"]


def test_a_headless_service_keeps_none_and_gets_no_families(api: FakeKubeAPI) -> None:
    api.add(service("shop", "db", {"port": 5432}, clusterIP="None"))
    spec = spec_of(api, "db")
    assert (spec["clusterIP"], spec["clusterIPs"]) == ("None", ["None"])
    assert "ipFamilies" not in spec


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_node_port_and_load_balancer_services_get_node_ports_and_the_cluster_policy(
    api: FakeKubeAPI, kind: str
) -> None:
    api.add(service("shop", "web", {"port": 80}, {"port": 443, "targetPort": "https"}, type=kind))
    spec = spec_of(api, "web")
    assert spec["externalTrafficPolicy"] == "Cluster"
    ports = spec["ports"]
    assert [p["targetPort"] for p in ports] == [80, "https"], "a named targetPort is kept as written"
    assert all(30000 <= p["nodePort"] <= 32767 for p in ports)
    assert ports[0]["nodePort"] != ports[1]["nodePort"]


def test_an_update_that_omits_allocated_values_keeps_them(api: FakeKubeAPI) -> None:
    api.add(service("shop", "web", {"port": 80}, {"port": 81}, type="NodePort"))
    before = spec_of(api, "web")
    api.modify(service("shop", "web", {"port": 80}, {"port": 82}, type="NodePort"))
    after = spec_of(api, "web")
    assert after["clusterIP"] == before["clusterIP"]
    assert after["ports"][0]["nodePort"] == before["ports"][0]["nodePort"], "same port: same nodePort"
    assert after["ports"][1]["nodePort"] not in {p["nodePort"] for p in before["ports"]}


def test_an_endpoint_slice_port_defaults_its_protocol(api: FakeKubeAPI) -> None:
    api.add(endpoint_slice("shop", "web-abcde", "web", [("10.0.0.1", True)], {"name": "http", "port": 8080}))
    found = api.get("EndpointSlice", "shop", "web-abcde")
    assert found is not None
    assert found["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert found["metadata"]["labels"]["kubernetes.io/service-name"] == "web"


# --- list and watch of the two collections ------------------------------------------------


@pytest.mark.parametrize(("path", "kind"), [(SERVICES, "Service"), (SLICES, "EndpointSlice")])
def test_the_collections_list_and_watch_like_every_other(api: FakeKubeAPI, path: str, kind: str) -> None:
    web = service("shop", "web", {"port": 80})
    slice_ = endpoint_slice("shop", "web-1", "web", [("10.0.0.1", True)], {"port": 80})
    obj = web if kind == "Service" else slice_
    api.add(obj)
    code, listed = get(api, path + "?limit=500")
    assert code == 200
    assert listed["kind"] == f"{kind}List"
    assert [i["metadata"]["name"] for i in listed["items"]] == [obj["metadata"]["name"]]
    assert "kind" not in listed["items"][0]
    rv = listed["metadata"]["resourceVersion"]
    api.modify(obj)
    api.delete(kind, "shop", obj["metadata"]["name"])
    events = watch(api, path, rv)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert all(e["object"]["apiVersion"] == api_version(kind) for e in events)


def api_version(kind: str) -> str:
    return "v1" if kind == "Service" else "discovery.k8s.io/v1"


# --- bookmarks and 410 -------------------------------------------------------------------


def test_a_quiet_collection_gets_no_bookmark_while_others_change(api: FakeKubeAPI) -> None:
    _, listed = get(api, SLICES)
    api.add(service("shop", "web", {"port": 80}))  # another collection moves the store on
    events = watch(api, SLICES, listed["metadata"]["resourceVersion"])
    assert events == [], "a bookmark beyond anything the slices' watch cache has seen"


def test_after_a_progress_notification_the_quiet_collection_is_bookmarked_at_the_store_revision(
    api: FakeKubeAPI,
) -> None:
    _, listed = get(api, SLICES)
    revision = api.add(service("shop", "web", {"port": 80}))
    api.progress_notify()
    events = watch(api, SLICES, listed["metadata"]["resourceVersion"])
    assert events == [{"type": "BOOKMARK", "object": bookmark("EndpointSlice", revision)}]


def test_a_bookmark_follows_only_a_newer_revision_than_the_watch_was_sent(api: FakeKubeAPI) -> None:
    revision = api.add(service("shop", "web", {"port": 80}))
    api.progress_notify()
    events = watch(api, SERVICES, str(revision))
    assert events == [], "the watch already stands at the cache's revision"


def bookmark(kind: str, revision: int) -> dict[str, Any]:
    meta = {"resourceVersion": str(revision)}
    return {"kind": kind, "apiVersion": api_version(kind), "metadata": meta}


def test_a_broken_watch_resumes_but_a_restart_expires_older_revisions(api: FakeKubeAPI) -> None:
    _, listed = get(api, SERVICES)
    rv = listed["metadata"]["resourceVersion"]
    api.go_down()
    api.come_back()
    api.add(service("shop", "web", {"port": 80}))
    assert [e["type"] for e in watch(api, SERVICES, rv)] == ["ADDED"], "history survives a dropped connection"
    api.restart()
    events = watch(api, SERVICES, rv)
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]
    _, relisted = get(api, SERVICES)
    assert watch(api, SERVICES, relisted["metadata"]["resourceVersion"]) == []
