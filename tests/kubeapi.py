"""A small, faithful Kubernetes API server for the feed's tests (loopback only).

No real API server can run on the test machines, so this implements the part of
the protocol the feed relies on, the way kube-apiserver does it:

- ``GET /api/v1/{namespaces,pods,nodes,services}``,
  ``GET /apis/networking.k8s.io/v1/networkpolicies`` and
  ``GET /apis/discovery.k8s.io/v1/endpointslices`` (the all-namespaces lists):
  a ``<Kind>List`` whose ``metadata.resourceVersion`` is the store's revision at
  the time of the list; items carry no ``kind``/``apiVersion`` (as in the real
  API); ``limit`` + ``continue`` page through one consistent snapshot.
- the same paths with ``watch=true``: HTTP/1.1 chunked stream of
  ``{"type": ..., "object": ...}`` lines.  ``resourceVersion`` says where to
  resume (every event with a greater revision is sent, none older);
  ``resourceVersion`` unset or ``"0"`` first sends synthetic ADDED events for the
  current state; ``timeoutSeconds`` ends the stream cleanly after that long;
  ``allowWatchBookmarks`` enables BOOKMARK events carrying only
  ``metadata.resourceVersion``.  As kube-apiserver's watch cache does, a
  bookmark carries the cache's revision for that collection (its last change,
  or the store's revision at the last etcd progress notification:
  :meth:`progress_notify`, or every ``progress_notify_interval`` seconds), and is
  sent only when that is newer than what the watch has already been sent.  So
  without progress notifications a quiet collection gets no bookmarks and its
  watchers keep the revision of their list (a compaction sends them back to a
  re-list, as in a real cluster); with them, bookmarks move those watchers on.
- One revision counter for every resource, like etcd.  :meth:`compact` forgets
  history; resuming a watch from a compacted revision gets ``410 Gone`` — as an
  ``ERROR`` event with a ``Status`` object (what kube-apiserver does) or, with
  ``expired_as_http=True``, as an HTTP 410 response.  Nothing else expires: a
  watch that merely broke resumes.  :meth:`restart` is the API server going
  down and coming back with a fresh watch cache (history gone: every resume
  older than the restart gets 410).
- What the API server fills in on write: ``resourceVersion``, ``uid``,
  ``creationTimestamp``, a Namespace's ``kubernetes.io/metadata.name`` label,
  and a Service's defaults and allocations (``clusterIP``/``clusterIPs`` from
  10.96.0.0/12, and fd00:10:96::/112 for dual stack, unless given or ``None``
  (headless); ``ipFamilies``, ``ipFamilyPolicy``, ``sessionAffinity``,
  ``internalTrafficPolicy``; each port's ``protocol`` and ``targetPort`` (= ``port``);
  for NodePort and LoadBalancer a ``nodePort`` from 30000-32767 and
  ``externalTrafficPolicy: Cluster``).  An update that omits the allocated
  ``clusterIP(s)`` or a port's ``nodePort`` keeps the old ones, as the real
  registry's ``patchAllocatedValues`` does.  EndpointSlice ports default their
  ``protocol`` to TCP; the slices themselves are written by the test (the
  endpointslice controller's part), owned by their Service through the
  ``kubernetes.io/service-name`` label.
- The cluster-scoped policy collections (``/apis/policy.networking.k8s.io/...``)
  are CRDs, installed unless ``crds=()`` (or another subset) is given; one not
  installed answers ``404 Not Found`` as an API server without the CRD does, until
  :meth:`install_crd`; :meth:`uninstall_crd` deletes the CRD's objects
  and ends its watches, as deleting a CRD does.
- Test controls: :meth:`drop_watches` cuts every open watch mid-stream (no final
  chunk, so the client sees a broken stream), :meth:`go_down` stops listening and
  closes every connection, :meth:`come_back` listens again on the same port.

It binds 127.0.0.1 on a free port and never talks to anything else.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Resource:
    """One collection the server serves: its URL path and how its objects look."""

    path: str
    kind: str
    api_version: str
    namespaced: bool
    #: served only while its CRD is installed (404 otherwise)
    crd: bool = False


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource("/api/v1/namespaces", "Namespace", "v1", False),
        Resource("/api/v1/pods", "Pod", "v1", True),
        Resource("/api/v1/nodes", "Node", "v1", False),
        Resource("/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy", "networking.k8s.io/v1", True),
        Resource("/api/v1/services", "Service", "v1", True),
        Resource("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice", "discovery.k8s.io/v1", True),
        Resource(
            "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
            "ClusterNetworkPolicy",
            "policy.networking.k8s.io/v1alpha2",
            False,
            crd=True,
        ),
        Resource(
            "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
            "AdminNetworkPolicy",
            "policy.networking.k8s.io/v1alpha1",
            False,
            crd=True,
        ),
        Resource(
            "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
            "BaselineAdminNetworkPolicy",
            "policy.networking.k8s.io/v1alpha1",
            False,
            crd=True,
        ),
    )
}
_BY_PATH = {r.path: r for r in RESOURCES.values()}


@dataclass(frozen=True)
class _Change:
    revision: int
    kind: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Stop(Exception):
    """Raised inside a watch handler when the test asked to cut the connection."""


class FakeKubeAPI:
    """The store, its history, and the HTTP server that serves them.

    Use as a context manager, or call :meth:`start` and :meth:`close`.
    Mutators (:meth:`add`, :meth:`modify`, :meth:`delete`, :meth:`add_many`)
    return the new revision.
    """

    def __init__(
        self,
        *,
        bookmark_interval: float = 0.5,
        expired_as_http: bool = False,
        crds: tuple[str, ...] | None = None,
        progress_notify_interval: float | None = None,
    ) -> None:
        self.bookmark_interval = bookmark_interval
        self.progress_notify_interval = progress_notify_interval
        self._last_progress = time.monotonic()
        self.expired_as_http = expired_as_http
        self._cond = threading.Condition()
        self._revision = 1
        self._compacted = 0  # history of revisions <= this is gone
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in RESOURCES}
        self._history: list[_Change] = []
        #: kind -> revision of its last change: the watch cache's resourceVersion, what bookmarks carry
        self._kind_revision: dict[str, int] = {}
        self._allocated_ips: int = 0  # Service ClusterIPs handed out (the allocator's cursor)
        self._allocated_ports: int = 0  # Service nodePorts handed out
        self._snapshots: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._epoch = 0  # bumped by drop_watches/go_down: watches of an older epoch end abruptly
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        #: kind -> HTTP status every request for it gets (see :meth:`fail`)
        self._failing: dict[str, int] = {}
        #: every request line served, for tests that check what the client asked for
        self.requests: list[str] = []
        #: kinds whose CRD is installed (the others answer 404); default: every CRD
        self._crds: set[str] = set(
            crds if crds is not None else (r.kind for r in RESOURCES.values() if r.crd)
        )

    # --- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKubeAPI:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def go_down(self) -> None:
        """Stop listening and break every open connection (the API server went away)."""
        server, self._server = self._server, None
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()
            for conn in self._connections:  # idle keep-alive connections too
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def come_back(self) -> None:
        """Listen again on the same port, with the store as it is now."""
        self.start()

    def restart(self) -> None:
        """Go down and come back with a fresh watch cache: every older resourceVersion is 410 Gone."""
        self.go_down()
        self.compact()
        self.come_back()

    def close(self) -> None:
        self.go_down()

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail(self, kind: str, code: int | None) -> None:
        """Answer every request for ``kind`` with HTTP ``code`` (a Status body); None to stop."""
        if code is None:
            self._failing.pop(kind, None)
        else:
            self._failing[kind] = code

    def install_crd(self, kind: str) -> None:
        """Start serving the CRD-backed collection ``kind``."""
        assert RESOURCES[kind].crd, kind
        self._crds.add(kind)

    def uninstall_crd(self, kind: str) -> None:
        """Delete the CRD: its objects go (DELETED events), its watches end, then 404."""
        for obj in self.objects(kind):
            self.delete(kind, "", obj["metadata"]["name"])
        self._crds.discard(kind)
        self.drop_watches()

    def drop_watches(self) -> None:
        """Cut every open watch stream mid-way (the connection just breaks)."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    # --- the store -------------------------------------------------------------------

    @property
    def revision(self) -> int:
        with self._cond:
            return self._revision

    def compact(self) -> None:
        """Forget all history up to now: older resourceVersions become 410 Gone."""
        with self._cond:
            self._compacted = self._revision
            self._history.clear()
            self._snapshots.clear()

    def progress_notify(self) -> None:
        """etcd's progress notification: every collection's watch cache is now at the store's revision."""
        with self._cond:
            self._progress_locked()
            self._cond.notify_all()

    def _progress_locked(self) -> None:
        self._last_progress = time.monotonic()
        for kind in RESOURCES:
            self._kind_revision[kind] = self._revision

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """The stored objects of ``kind`` (shared, do not mutate)."""
        with self._cond:
            return list(self._objects[kind].values())

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._cond:
            found = self._objects[kind].get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def add(self, obj: dict[str, Any]) -> int:
        return self.add_many([obj])

    def add_many(self, objs: list[dict[str, Any]]) -> int:
        """Create (or replace) each object, one revision each, under one lock."""
        with self._cond:
            for obj in objs:
                self._write(obj)
            self._cond.notify_all()
            return self._revision

    def modify(self, obj: dict[str, Any]) -> int:
        with self._cond:
            key = self._key(obj)
            if key not in self._objects[obj["kind"]]:
                raise KeyError(f"{obj['kind']} {key} does not exist")
            self._write(obj)
            self._cond.notify_all()
            return self._revision

    def delete(self, kind: str, namespace: str, name: str) -> int:
        with self._cond:
            old = self._objects[kind].pop((namespace, name))
            self._revision += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self._revision)
            self._history.append(_Change(self._revision, kind, "DELETED", gone))
            self._kind_revision[kind] = self._revision
            self._cond.notify_all()
            return self._revision

    def _key(self, obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        ns = meta.get("namespace", "default") if RESOURCES[obj["kind"]].namespaced else ""
        return ns, meta["name"]

    def _write(self, obj: dict[str, Any]) -> None:
        """Store ``obj`` at the next revision, filling what the API server sets (lock held)."""
        res = RESOURCES[obj["kind"]]
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = res.api_version
        key = self._key(obj)
        meta = obj["metadata"]
        if res.namespaced:
            meta["namespace"] = key[0]
        old = self._objects[res.kind].get(key)
        self._revision += 1
        meta["resourceVersion"] = str(self._revision)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        else:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        if res.kind == "Namespace":  # the API server's defaulting of the name label
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        elif res.kind == "Service":
            self._default_service(obj.setdefault("spec", {}), (old or {}).get("spec") or {})
        elif res.kind == "EndpointSlice":
            for port in obj.get("ports") or []:
                port.setdefault("protocol", "TCP")
        self._objects[res.kind][key] = obj
        self._history.append(_Change(self._revision, res.kind, "MODIFIED" if old else "ADDED", obj))
        self._kind_revision[res.kind] = self._revision

    def _default_service(self, spec: dict[str, Any], old: dict[str, Any]) -> None:
        """What kube-apiserver defaults and allocates in a Service's spec (lock held)."""
        kind = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if kind != "ExternalName":
            for field in ("clusterIP", "clusterIPs"):  # patchAllocatedValues: kept when omitted
                if field not in spec and field in old:
                    spec[field] = copy.deepcopy(old[field])
            dual = spec.get("ipFamilyPolicy") in ("PreferDualStack", "RequireDualStack")
            if "clusterIPs" not in spec:
                if spec.get("clusterIP") == "None":
                    spec["clusterIPs"] = ["None"]
                elif spec.get("clusterIP"):
                    spec["clusterIPs"] = [spec["clusterIP"]]
                else:
                    n = self._allocated_ips = self._allocated_ips + 1
                    spec["clusterIPs"] = [f"10.96.{n // 250}.{n % 250 + 1}"]
                    if dual:
                        spec["clusterIPs"].append(f"fd00:10:96::{n:x}")
            spec.setdefault("clusterIP", spec["clusterIPs"][0])
            if spec["clusterIP"] != "None":
                families = ["IPv6" if ":" in ip else "IPv4" for ip in spec["clusterIPs"]]
                spec.setdefault("ipFamilies", families)
                spec.setdefault("ipFamilyPolicy", "SingleStack" if len(families) == 1 else "RequireDualStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        external = kind in ("NodePort", "LoadBalancer")
        if external:
            spec.setdefault("externalTrafficPolicy", "Cluster")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if external and "nodePort" not in port:
                was = old_ports.get((port.get("port"), port["protocol"]), {}).get("nodePort")
                if was is None:
                    was = 30000 + self._allocated_ports
                    self._allocated_ports += 1
                port["nodePort"] = was

    # --- serving ---------------------------------------------------------------------

    def _list(self, res: Resource, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        limit = int(query.get("limit", "0") or 0)
        token = query.get("continue")
        with self._cond:
            if token:
                if token not in self._snapshots:
                    return 410, _status(410, "Expired", "the provided continue parameter is too old")
                items, rev = self._snapshots.pop(token)
            else:
                items = [copy.deepcopy(o) for _, o in sorted(self._objects[res.kind].items())]
                for item in items:  # list items carry no kind/apiVersion
                    del item["kind"], item["apiVersion"]
                rev = self._revision
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if limit and len(items) > limit:
            rest = items[limit:]
            items = items[:limit]
            nxt = uuid.uuid4().hex
            with self._cond:
                self._snapshots[nxt] = (rest, rev)
            meta["continue"] = nxt
            meta["remainingItemCount"] = len(rest)
        body = {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}
        return 200, body

    def _watch_start(self, res: Resource, query: dict[str, str]) -> tuple[int, list[dict[str, Any]], int]:
        """(http status, initial events, revision to stream from) or 410 in the events."""
        rv_text = query.get("resourceVersion", "")
        with self._cond:
            if rv_text in ("", "0"):
                current = sorted(self._objects[res.kind].items())
                initial = [{"type": "ADDED", "object": copy.deepcopy(o)} for _, o in current]
                return 200, initial, self._revision
            rv = int(rv_text)
            if rv < self._compacted:
                gone = _status(410, "Expired", f"too old resource version: {rv} ({self._compacted})")
                if self.expired_as_http:
                    return 410, [gone], 0
                return 200, [{"type": "ERROR", "object": gone}], -1
            return 200, [], rv

    def _changes_after(self, kind: str, rv: int) -> tuple[list[_Change], int]:
        """Changes of ``kind`` newer than ``rv`` and the revision of its last change (lock held)."""
        # history is sorted by revision: bisect by hand to stay O(log n + k)
        lo, hi = 0, len(self._history)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._history[mid].revision <= rv:
                lo = mid + 1
            else:
                hi = mid
        changes = [c for c in itertools.islice(self._history, lo, None) if c.kind == kind]
        interval = self.progress_notify_interval
        if interval is not None and time.monotonic() - self._last_progress >= interval:
            self._progress_locked()
        return changes, max(rv, self._kind_revision.get(kind, 0))


def _handler_for(api: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # buffered: a burst of events leaves in few segments, each flush sends

        def setup(self) -> None:
            super().setup()
            with api._cond:
                api._connections.add(self.connection)

        def finish(self) -> None:
            with api._cond:
                api._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            api.requests.append(self.path)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            res = _BY_PATH.get(parts.path)
            if res is None:
                self._send_json(404, _status(404, "NotFound", f"the server could not find {parts.path}"))
                return
            if res.crd and res.kind not in api._crds:
                missing = _status(404, "NotFound", "the server could not find the requested resource")
                self._send_json(404, missing)
                return
            code = api._failing.get(res.kind)
            if code is not None:
                self._send_json(code, _status(code, "InternalError", "injected failure"))
                return
            if query.get("watch") in ("true", "1"):
                self._watch(res, query)
            else:
                self._send_json(*api._list(res, query))

        def _send_json(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _chunk(self, lines: list[dict[str, Any]]) -> None:
            """One HTTP chunk per event, as kube-apiserver writes them; one flush for all."""
            if lines:
                for e in lines:
                    data = json.dumps(e).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        def _watch(self, res: Resource, query: dict[str, str]) -> None:
            code, initial, rv = api._watch_start(res, query)
            if code != 200:
                self._send_json(code, initial[0])
                return
            timeout = float(query.get("timeoutSeconds", "0") or 0)
            bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
            with api._cond:
                epoch = api._epoch
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            try:
                self._chunk(initial)
                if rv < 0:  # expired: the ERROR event was the whole answer
                    self._end()
                    return
                self._stream(res, rv, epoch, timeout, bookmarks)
            except (_Stop, OSError):
                self._break()

        def _stream(self, res: Resource, rv: int, epoch: int, timeout: float, bookmarks: bool) -> None:
            deadline = time.monotonic() + timeout if timeout else float("inf")
            next_bookmark = time.monotonic() + api.bookmark_interval
            sent = rv  # the newest revision this watch has been told about (event or bookmark)
            while True:
                with api._cond:
                    changes, current = api._changes_after(res.kind, rv)
                    if not changes:
                        wait = min(deadline, next_bookmark) - time.monotonic()
                        api._cond.wait(max(0.0, min(wait, 0.2)))
                        changes, current = api._changes_after(res.kind, rv)
                    if api._epoch != epoch:
                        raise _Stop
                self._chunk([{"type": c.type, "object": c.obj} for c in changes])
                if changes:
                    sent = changes[-1].revision
                rv = current  # every change of this kind up to `current` has been sent
                now = time.monotonic()
                if now >= deadline:
                    self._end()
                    return
                if bookmarks and now >= next_bookmark:
                    if rv > sent:  # the watch cache has seen something newer than this watch was sent
                        meta = {"resourceVersion": str(rv)}
                        mark = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
                        self._chunk([{"type": "BOOKMARK", "object": mark}])
                        sent = rv
                    next_bookmark = now + api.bookmark_interval

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True

        def _break(self) -> None:
            """Abort the connection without the final chunk: the client sees a broken stream."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
