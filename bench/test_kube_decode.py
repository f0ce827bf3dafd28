"""How the Kubernetes feed turns API responses into model objects: two routes, timed.

Run: ``pytest bench/test_kube_decode.py --benchmark-enable``.

- **raw** (what :mod:`netpol_pdp.index.kubewatch` does): the response body is
  requested with ``_preload_content=False``, parsed with :func:`json.loads`, and
  each item validated by :func:`parse_object`;
- **models**: the client's default, ``ApiClient.deserialize`` into ``V1PodList``
  then ``sanitize_for_serialization`` back into dicts for :func:`parse_object`.

Both decode the same ``PodList`` of 10,000 pods and must yield equal objects.
docs/kubernetes.md quotes the figures.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from netpol_pdp.index.model import Object
from netpol_pdp.index.validation import parse_object

PODS = 10_000


def pod_list(n: int) -> bytes:
    """A PodList as the API server sends it: items without kind/apiVersion, full metadata."""
    items = [
        {
            "metadata": {
                "name": f"web-{i}",
                "namespace": f"ns-{i % 50}",
                "uid": f"00000000-0000-0000-0000-{i:012d}",
                "resourceVersion": str(1000 + i),
                "creationTimestamp": "2026-11-25T23:16:12Z",
                "labels": {"app": f"app-{i % 200}", "pod-template-hash": "5d8f7c9b4"},
            },
            "spec": {
                "nodeName": f"node-{i % 20}",
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}],
            },
            "status": {"phase": "Running", "podIP": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"},
        }
        for i in range(n)
    ]
    body = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "99999"}, "items": items}
    return json.dumps(body).encode()


def decode_raw(body: bytes) -> list[Object | None]:
    items: list[dict[str, Any]] = json.loads(body)["items"]
    out = []
    for item in items:
        item["kind"] = "Pod"
        out.append(parse_object(item))
    return out


def decode_models(body: bytes, api: client.ApiClient) -> list[Object | None]:
    pods = api.deserialize(body.decode(), "V1PodList", "application/json")
    out = []
    for pod in pods.items:
        item = api.sanitize_for_serialization(pod)  # type: ignore[no-untyped-call]  # kubernetes leaves it unannotated
        item["kind"] = "Pod"
        out.append(parse_object(item))
    return out


@pytest.fixture(scope="module")
def body() -> bytes:
    return pod_list(PODS)


def test_both_routes_decode_the_same_objects(body: bytes) -> None:
    raw = decode_raw(body)
    assert len(raw) == PODS
    assert raw == decode_models(body, client.ApiClient())


def test_raw_json(benchmark: Any, body: bytes) -> None:
    result = benchmark.pedantic(decode_raw, args=(body,), rounds=3, iterations=1)
    assert len(result) == PODS


def test_client_models(benchmark: Any, body: bytes) -> None:
    api = client.ApiClient()
    result = benchmark.pedantic(decode_models, args=(body, api), rounds=3, iterations=1)
    assert len(result) == PODS
