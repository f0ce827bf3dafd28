"""``kubectl kustomize deploy/`` (what ``kubectl apply -k deploy/`` sends) renders what the feed needs.

tests/test_deploy.py checks the raw files; this renders them with Debian's
kubectl (``.ci/run`` installs it; without it the test skips and says so) and
checks the rendered objects: the same objects as the files, RBAC get/list/watch
on exactly the collections the feed watches, and the Service, the Deployment's
pods and its service account wired together in one namespace.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from netpol_pdp.index.kubewatch import COLLECTIONS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl (Debian package kubectl)")


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    objects = {_key(doc): doc for doc in docs}
    assert len(objects) == len(docs), "two rendered objects share a kind and name"
    return objects


Rendered = dict[tuple[str, str], dict[str, Any]]


def test_kustomize_renders_exactly_the_manifest_files(rendered: Rendered) -> None:
    files: Rendered = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            files.update({_key(doc): doc for doc in yaml.safe_load_all(path.read_text()) if doc})
    assert rendered == files


def test_rendered_role_grants_get_list_watch_on_exactly_what_the_feed_watches(
    rendered: dict[tuple[str, str], dict[str, Any]],
) -> None:
    (role,) = [doc for (kind, _), doc in rendered.items() if kind == "ClusterRole"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {(c.group, c.plural, verb) for c in COLLECTIONS for verb in ("get", "list", "watch")}


def test_rendered_objects_are_wired_together(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    by_kind = {kind: doc for (kind, _), doc in rendered.items()}
    namespace = by_kind["Namespace"]["metadata"]["name"]
    deployment, service, account = by_kind["Deployment"], by_kind["Service"], by_kind["ServiceAccount"]
    for doc in (deployment, service, account):
        assert doc["metadata"]["namespace"] == namespace, _key(doc)
    binding = by_kind["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == by_kind["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": namespace}
    ]
    pod = deployment["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports or port["targetPort"] in ports.values(), port
