"""Shared by the Kubernetes feed's tests: manifests of a small world, waiting, a kubeconfig.

The manifests are what ``kubectl get -o json`` shows (the fake API server fills in
resourceVersion, uid, creationTimestamp and the namespace name label).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(ns: str, name: str, ip: str, node: str = "n1", **labels: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def node(name: str, *ips: str) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": [{"type": "InternalIP", "address": ip} for ip in ips]},
    }


def policy(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {"kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name}, "spec": spec}


WEB, CLIENT, OTHER, NODE_IP = "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.9.0.1"
BASE = [
    namespace("shop", team="shop"),
    namespace("other", team="foes"),
    pod("shop", "web", WEB, app="web"),
    pod("shop", "client", CLIENT, app="client"),
    pod("other", "stranger", OTHER, app="client"),
]
N1 = node("n1", NODE_IP)
DENY_WEB = policy(
    "shop", "web", podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Ingress", "Egress"]
)
ALLOW_CLIENT = policy(
    "shop",
    "web",
    podSelector={"matchLabels": {"app": "web"}},
    ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 80}]}],
)
FROM_FRIENDS = policy(
    "shop",
    "web",
    podSelector={"matchLabels": {"app": "web"}},
    ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "friends"}}}]}],
)


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def write_kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "config"
    path.write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "{server}"}}
- name: other
  cluster: {{server: "http://127.0.0.1:1"}}
users:
- name: me
  user: {{token: secret}}
contexts:
- name: fake
  context: {{cluster: fake, user: me}}
- name: other
  context: {{cluster: other, user: me}}
current-context: fake
"""
    )
    return path


def service(ns: str, name: str, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A Service as written by its owner (the API server fills in addresses and defaults)."""
    spec.setdefault("selector", {"app": name})
    return {
        "kind": "Service",
        "metadata": {"namespace": ns, "name": name},
        "spec": {**spec, "ports": list(ports)},
    }


def endpoint_slice(
    ns: str,
    name: str,
    service_name: str,
    endpoints: list[tuple[str, bool]],
    *ports: dict[str, Any],
    address_type: str = "IPv4",
) -> dict[str, Any]:
    """An EndpointSlice as the endpointslice controller writes it: ``endpoints`` are (address, ready)."""
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": ns,
            "name": name,
            "labels": {
                "kubernetes.io/service-name": service_name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": address_type,
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": False}}
            for ip, ready in endpoints
        ],
        "ports": list(ports),
    }
