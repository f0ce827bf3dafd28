"""The Kubernetes feed and Services/EndpointSlices, against tests/kubeapi.py.

Services (core v1) and EndpointSlices (discovery.k8s.io/v1) are listed and
watched like every other collection and fed, one event at a time, into the one
applier; a decision to a ClusterIP follows them (the translation itself is the
index's, tested in tests/test_services.py).  Scenarios: each kind created,
updated and deleted; an endpoint going unready; a slice replaced; a restart of
the API server (410, re-list of the difference); status per collection; and a
burst of 1,000 endpoint changes, timed and reported, not asserted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import test_kubefeed
from test_kubefeed import Harness

from netpol_pdp.index.decision import Verdict
from netpol_pdp.index.flows import make_flow
from netpol_pdp.index.model import Kind

sys.path.insert(0, str(Path(__file__).parent))
from kubeapi import FakeKubeAPI
from kubeworld import (
    ALLOW_CLIENT,
    BASE,
    CLIENT,
    OTHER,
    WEB,
    endpoint_slice,
    eventually,
    pod,
    policy,
    service,
)

VIP = "10.96.0.10"
OPEN = "10.0.0.4"  # a pod no policy isolates
HTTP = {"name": "http", "port": 8080, "targetPort": "http"}
WEB_SVC = service("shop", "web", HTTP, clusterIP=VIP)
OPEN_POD = pod("shop", "open", OPEN, app="open")


def web_slice(name: str = "web-1", *endpoints: tuple[str, bool]) -> dict[str, Any]:
    """A slice of the web Service; its named target port resolved to 80, as the controller does."""
    return endpoint_slice("shop", name, "web", list(endpoints) or [(WEB, True)], {"name": "http", "port": 80})


h = test_kubefeed.h  # the same harness fixture: a fake API server and a feed, both stopped after


def answer(h: Harness, src: str, dst: str = VIP, port: int = 8080) -> tuple[Verdict, str]:
    decision = h.index.decide(make_flow(src, dst, "TCP", port))
    return decision.verdict, decision.reason.value


ALLOW, DENY = Verdict.ALLOW, Verdict.DENY


@dataclass(frozen=True)
class Change:
    setup: list[dict[str, Any]]
    change: Callable[[FakeKubeAPI], object]
    flow: tuple[str, int]
    before: tuple[Verdict, str]
    after: tuple[Verdict, str]


CHANGES = {
    "a Service added turns its ClusterIP from an outside address into its endpoints": Change(
        [ALLOW_CLIENT, web_slice()],
        lambda a: a.add(WEB_SVC),
        (OTHER, 8080),
        (ALLOW, "not-isolated"),
        (DENY, "denied-on-ingress"),
    ),
    "an EndpointSlice added gives the Service its first ready endpoint": Change(
        [ALLOW_CLIENT, WEB_SVC],
        lambda a: a.add(web_slice()),
        (CLIENT, 8080),
        (DENY, "service-no-ready-endpoints"),
        (ALLOW, "allowed-by-policy"),
    ),
    "an endpoint going unready leaves the Service without a ready endpoint": Change(
        [ALLOW_CLIENT, WEB_SVC, web_slice()],
        lambda a: a.modify(web_slice("web-1", (WEB, False))),
        (CLIENT, 8080),
        (ALLOW, "allowed-by-policy"),
        (DENY, "service-no-ready-endpoints"),
    ),
    "a slice replaced by one of other pods moves the Service to them": Change(
        [ALLOW_CLIENT, OPEN_POD, WEB_SVC, web_slice()],
        lambda a: (a.delete("EndpointSlice", "shop", "web-1"), a.add(web_slice("web-2", (OPEN, True)))),
        (OTHER, 8080),
        (DENY, "denied-on-ingress"),
        (ALLOW, "not-isolated"),
    ),
    "a second slice whose endpoint allows makes the Service partially allowed": Change(
        [ALLOW_CLIENT, OPEN_POD, WEB_SVC, web_slice()],
        lambda a: a.add(web_slice("web-2", (OPEN, True))),
        (OTHER, 8080),
        (DENY, "denied-on-ingress"),
        (DENY, "service-partially-allowed"),
    ),
    "a Service port renumbered leaves the old port unknown": Change(
        [ALLOW_CLIENT, WEB_SVC, web_slice()],
        lambda a: a.modify(service("shop", "web", HTTP | {"port": 8081}, clusterIP=VIP)),
        (CLIENT, 8080),
        (ALLOW, "allowed-by-policy"),
        (DENY, "service-port-not-found"),
    ),
    "a Service deleted makes its address an outside one again": Change(
        [ALLOW_CLIENT, WEB_SVC, web_slice()],
        lambda a: a.delete("Service", "shop", "web"),
        (OTHER, 8080),
        (DENY, "denied-on-ingress"),
        (ALLOW, "not-isolated"),
    ),
}


@pytest.mark.parametrize("case", CHANGES.values(), ids=CHANGES.keys())
def test_each_service_and_slice_change_reaches_the_decision(h: Harness, case: Change) -> None:
    h.api.add_many([*BASE, *case.setup])
    h.sync()
    src, port = case.flow
    assert answer(h, src, port=port) == case.before
    lists = sum("watch=" not in r for r in h.api.requests)
    generation = h.index.generation
    case.change(h.api)
    h.settled()
    eventually(lambda: h.index.generation > generation, what="a new generation")
    assert answer(h, src, port=port) == case.after
    assert sum("watch=" not in r for r in h.api.requests) == lists, "a change must not re-list"
    h.index.check()


def test_both_collections_are_listed_synced_and_reported_in_status(h: Harness) -> None:
    h.api.add_many([*BASE, ALLOW_CLIENT, WEB_SVC, web_slice()])
    h.api.fail("EndpointSlice", 403)
    feed = h.start()
    eventually(lambda: h.resource(Kind.SERVICE)["synced"], what="services synced")
    time.sleep(0.3)
    assert not feed.ready, "ready before the EndpointSlice list was applied"
    assert h.resource(Kind.ENDPOINT_SLICE)["last_error"] == "HTTP 403 Forbidden"
    h.api.fail("EndpointSlice", None)
    assert feed.wait_ready(10)
    for kind in (Kind.SERVICE, Kind.ENDPOINT_SLICE):
        state = h.resource(kind)
        assert (state["synced"], state["objects"], state["installed"]) == (True, 1, True)
        assert state["resource_version"]
    assert answer(h, CLIENT) == (ALLOW, "allowed-by-policy")
    watched = {r.split("?")[0] for r in h.api.requests if "watch=true" in r}
    assert {"/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices"} <= watched


def test_an_invalid_slice_is_skipped_and_the_last_good_one_kept(h: Harness) -> None:
    h.api.add_many([*BASE, ALLOW_CLIENT, WEB_SVC, web_slice()])
    h.sync()
    broken = web_slice("web-1", (WEB, False))
    broken["ports"][0]["port"] = 70000
    h.api.modify(broken)
    eventually(lambda: h.resource(Kind.ENDPOINT_SLICE)["invalid_objects"] == 1, what="the invalid slice")
    assert "EndpointSlice shop/web-1: ports[0].port" in h.resource(Kind.ENDPOINT_SLICE)["last_invalid"]
    assert answer(h, CLIENT) == (ALLOW, "allowed-by-policy"), "the last good slice stays in force"


def test_a_restart_of_the_api_server_relists_and_applies_the_difference(h: Harness) -> None:
    h.api.add_many([*BASE, ALLOW_CLIENT, OPEN_POD, WEB_SVC, web_slice()])
    h.sync()
    assert answer(h, OTHER) == (DENY, "denied-on-ingress")
    h.api.go_down()
    h.api.delete("EndpointSlice", "shop", "web-1")  # replaced while the feed could not see it
    h.api.add(web_slice("web-2", (OPEN, True)))
    h.api.add(service("shop", "late", {"port": 81, "targetPort": 80}, clusterIP="10.96.0.11"))
    h.api.restart()
    h.settled()
    for kind in (Kind.SERVICE, Kind.ENDPOINT_SLICE):
        assert h.resource(kind)["relists"] >= 1
    assert answer(h, OTHER) == (ALLOW, "not-isolated")
    assert answer(h, OTHER, "10.96.0.11", 81) == (DENY, "service-no-ready-endpoints")
    h.index.check()


def test_a_burst_of_1000_endpoint_changes_is_applied_in_batches(h: Harness) -> None:
    """10 slices of 100 endpoints; 1,000 slice updates each making one more endpoint ready."""
    pods = [pod("bulk", f"b{i}", f"10.8.{i // 250}.{i % 250 + 1}", app="bulk") for i in range(1000)]
    ips = [p["status"]["podIP"] for p in pods]
    only_client = policy(
        "bulk",
        "bulk",
        podSelector={},
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": "shop"}},
                        "podSelector": {"matchLabels": {"app": "client"}},
                    }
                ]
            }
        ],
    )
    bulk = service("bulk", "bulk", {"name": "http", "port": 80}, clusterIP="10.96.1.1")

    def slices(ready: int) -> list[dict[str, Any]]:
        """The 10 slices when the first ``ready`` endpoints are ready."""
        return [
            endpoint_slice(
                "bulk",
                f"bulk-{s}",
                "bulk",
                [(ips[i], i < ready) for i in range(s * 100, s * 100 + 100)],
                {"name": "http", "port": 80},
            )
            for s in range(10)
        ]

    h.api.add_many([*BASE, namespace_of("bulk"), *pods, only_client, bulk, *slices(0)])
    feed = h.sync()
    assert answer(h, CLIENT, "10.96.1.1", 80) == (DENY, "service-no-ready-endpoints")
    before = feed.status()
    # endpoint i becomes ready: the controller rewrites the slice that holds it
    burst = [slices(i + 1)[i // 100] for i in range(1000)]
    h.api.add_many(burst)
    started = time.perf_counter()
    eventually(lambda: h.resource(Kind.ENDPOINT_SLICE)["events"] == 1000, timeout=60, what="1,000 events")
    h.settled()
    elapsed = time.perf_counter() - started
    after = feed.status()
    batches = after.batches - before.batches
    applied = after.events_applied - before.events_applied
    # Not asserted (speed is measured, not tested); the fake server's JSON encoding runs in-process.
    print(
        f"\n1,000 EndpointSlice updates (10 slices x 100 endpoints): streamed and applied in {elapsed:.2f} s,"
        f" {batches} batches (generations), {applied} events after coalescing per slice"
    )
    assert answer(h, CLIENT, "10.96.1.1", 80) == (ALLOW, "allowed-by-policy")
    assert answer(h, OTHER, "10.96.1.1", 80) == (DENY, "denied-on-ingress")
    h.index.check()


def namespace_of(name: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name}}
