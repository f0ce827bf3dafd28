"""Real Envoy helpers for the tests: the process (bench/envoy_proc.py), a counting TCP service, a client.

Without an Envoy binary (see ``envoy_binary``) the tests that need one skip and
say how to get it.
"""

from __future__ import annotations

import socket
import threading

from netpol_pdp.bench.envoy_proc import (
    BOOTSTRAPS,
    EXAMPLES,
    Envoy,
    bootstrap,
    envoy_binary,
    free_port,
    missing_reason,
)

__all__ = [
    "BOOTSTRAPS",
    "EXAMPLES",
    "Envoy",
    "Upstream",
    "bootstrap",
    "envoy_binary",
    "free_port",
    "missing_reason",
    "talk",
]


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
