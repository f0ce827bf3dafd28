"""deploy/ and the Dockerfile: no container engine or cluster runs here, so the
properties the manifests promise are checked by reading them.

- RBAC grants get/list/watch on exactly the collections the feed watches, no more;
- the Deployment runs non-root, read-only, without privilege escalation or
  capabilities, with requests and limits and gRPC probes on the serving port
  (liveness on the ``liveness`` health service), and its arguments are accepted
  by the real ``serve`` option parser;
- the Service reaches the Deployment's pods on the gRPC port;
- the Dockerfile is multi-stage, installs the project the way the README does
  (``pip install .``) from every package folder of pyproject.toml, and runs
  ``netpol-pdp serve --kube`` as a non-root user.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from netpol_pdp.clients.cmd_serve import add_arguments, options_from_args
from netpol_pdp.index.kubewatch import COLLECTIONS
from netpol_pdp.server.app import LIVENESS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _objects() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            out[doc["kind"]] = doc
    return out


OBJ = _objects()


def _pod_spec() -> dict[str, Any]:
    return OBJ["Deployment"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _container() -> dict[str, Any]:
    (container,) = _pod_spec()["containers"]
    return container  # type: ignore[no-any-return]


def _grpc_port() -> int:
    return next(p["containerPort"] for p in _container()["ports"] if p["name"] == "grpc")


def _serve_args(argv: list[str]) -> Any:
    assert argv[0] == "serve"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return options_from_args(parser.parse_args(argv[1:]))


# --- the set of manifests ----------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert set(OBJ) == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    }


def test_namespaced_objects_live_in_the_namespace() -> None:
    ns = OBJ["Namespace"]["metadata"]["name"]
    for kind in ("ServiceAccount", "Deployment", "Service"):
        assert OBJ[kind]["metadata"]["namespace"] == ns, kind


# --- RBAC --------------------------------------------------------------------------------


def test_the_cluster_role_grants_get_list_watch_on_exactly_the_watched_collections() -> None:
    granted: set[tuple[str, str, str]] = set()
    for rule in OBJ["ClusterRole"]["rules"]:
        assert "resourceNames" not in rule
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    granted.add((group, resource, verb))
    watched = {(c.group, c.plural, verb) for c in COLLECTIONS for verb in ("get", "list", "watch")}
    assert granted == watched
    assert not any("*" in part for grant in granted for part in grant)


def test_the_binding_gives_the_role_to_the_service_account_the_pods_use() -> None:
    binding, sa = OBJ["ClusterRoleBinding"], OBJ["ServiceAccount"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": OBJ["ClusterRole"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": sa["metadata"]["namespace"]}
    ]
    assert _pod_spec()["serviceAccountName"] == sa["metadata"]["name"]


# --- the Deployment ----------------------------------------------------------------------


def test_the_pod_runs_as_a_non_root_user() -> None:
    pod_sc = _pod_spec()["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] > 0
    assert pod_sc["runAsGroup"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("runAsNonRoot", True, id="the container runs as non-root"),
        pytest.param("allowPrivilegeEscalation", False, id="privilege escalation is off"),
        pytest.param("readOnlyRootFilesystem", True, id="the root filesystem is read-only"),
        pytest.param("capabilities", {"drop": ["ALL"]}, id="every capability is dropped, none added"),
    ],
)
def test_the_container_is_locked_down(field: str, value: object) -> None:
    assert _container()["securityContext"][field] == value
    assert "privileged" not in _container()["securityContext"]


def test_the_container_has_cpu_and_memory_requests_and_limits() -> None:
    resources = _container()["resources"]
    for bound in ("requests", "limits"):
        assert set(resources[bound]) == {"cpu", "memory"}, bound


@pytest.mark.parametrize(
    ("probe", "service"),
    [
        pytest.param("startupProbe", None, id="startup waits for the first sync on the overall health"),
        pytest.param("readinessProbe", None, id="readiness follows the overall health"),
        pytest.param("livenessProbe", LIVENESS, id="liveness asks the liveness health service"),
    ],
)
def test_probes_are_grpc_health_checks_on_the_serving_port(probe: str, service: str | None) -> None:
    check = _container()[probe]
    assert set(check) - {"periodSeconds", "failureThreshold", "initialDelaySeconds", "timeoutSeconds"} == {
        "grpc"
    }
    assert check["grpc"]["port"] == _grpc_port()
    assert check["grpc"].get("service") == service


def test_the_deployment_runs_serve_kube_on_the_grpc_port_with_arguments_serve_accepts() -> None:
    options = _serve_args(_container()["args"])
    assert options.kube
    assert options.listen == f"0.0.0.0:{_grpc_port()}"
    assert options.insecure, "plaintext beyond loopback needs --insecure (or TLS)"
    metrics_port = next(p["containerPort"] for p in _container()["ports"] if p["name"] == "metrics")
    assert options.metrics_listen == f"0.0.0.0:{metrics_port}"


def test_the_read_only_root_leaves_a_writable_tmp() -> None:
    mounts = {m["mountPath"]: m["name"] for m in _container()["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_service_reaches_the_pods_on_the_grpc_port() -> None:
    service, deployment = OBJ["Service"], OBJ["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["targetPort"] == "grpc"
    assert grpc["port"] == _grpc_port()


# --- the Dockerfile ----------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction, rest in _dockerfile():
        if instruction == "FROM":
            stages.append([])
        stages[-1].append((instruction, rest))
    return stages


def _pip_installs(commands: list[str]) -> list[list[str]]:
    """Every ``pip install`` in the shell commands, as its argument list after ``install``."""
    found = []
    for command in commands:
        for part in re.split(r"&&|;", command):
            words = shlex.split(part, comments=True)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    found.append(words[i + 2 :])
    return found


def _targets(args: list[str]) -> set[str]:
    """The projects a pip install names, extras dropped: ``-e '.[test]'`` -> {'.'}."""
    return {re.sub(r"\[.*\]$", "", a) for a in args if not a.startswith("-")}


def test_the_dockerfile_is_multi_stage_and_ships_only_the_installed_environment() -> None:
    build, final = _stages()
    assert build[0][1].endswith(" AS build")
    assert final[0][1] == build[0][1].removesuffix(" AS build"), "one Python for building and running"
    copies = [rest for instruction, rest in final if instruction == "COPY"]
    assert copies == ["--from=build /opt/netpol-pdp /opt/netpol-pdp"]


def test_the_image_installs_the_project_the_way_the_readme_does() -> None:
    build, final = _stages()
    runs = [rest for instruction, rest in build if instruction == "RUN"]
    installs = _pip_installs(runs)
    assert installs == [["--no-cache-dir", "."]], "the project, from pyproject.toml, nothing else"
    readme_blocks = [
        body
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", (ROOT / "README.md").read_text(), re.S | re.M)
        if lang in ("", "sh", "bash", "console")
    ]
    readme = _pip_installs(
        [line for block in readme_blocks for line in block.splitlines() if "pip install" in line]
    )
    assert readme, "the README shows no pip install"
    assert all(_targets(args) == {"."} for args in readme), "the README installs the project from '.'"
    assert not _pip_installs([rest for instruction, rest in final if instruction == "RUN"])


def test_the_build_context_holds_every_package_folder_of_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {path.split("/")[0] for path in pyproject["tool"]["setuptools"]["package-dir"].values()}
    build, _ = _stages()
    copied = {rest.split()[0].rstrip("/") for instruction, rest in build if instruction == "COPY"}
    assert folders <= copied
    assert {"pyproject.toml", "README.md"} <= set(
        " ".join(rest for instruction, rest in build if instruction == "COPY").split()
    )
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not folders & set(ignored)


def test_the_image_runs_serve_kube_as_a_non_root_user() -> None:
    _, final = _stages()
    user = next(rest for instruction, rest in final if instruction == "USER")
    uid, _, gid = user.partition(":")
    assert int(uid) > 0
    assert int(gid) > 0
    entrypoint = json.loads(next(rest for instruction, rest in final if instruction == "ENTRYPOINT"))
    cmd = json.loads(next(rest for instruction, rest in final if instruction == "CMD"))
    assert entrypoint == ["netpol-pdp"]
    options = _serve_args(cmd)
    assert options.kube
    assert options.listen == "0.0.0.0:50051"
    pod_sc = _pod_spec()["securityContext"]
    assert (pod_sc["runAsUser"], pod_sc["runAsGroup"]) == (int(uid), int(gid)), "image and manifest agree"
