"""List-then-watch of one Kubernetes collection, on its own thread.

One :class:`Watcher` per collection (Namespaces, Pods, Nodes, Services,
NetworkPolicies, EndpointSlices of discovery.k8s.io/v1, all namespaces; the
cluster-scoped ClusterNetworkPolicies, AdminNetworkPolicies and
BaselineAdminNetworkPolicies of policy.networking.k8s.io).  It does what
client-go's reflector does, with the official ``kubernetes`` client underneath:

1. **list** (paged, ``limit`` + ``continue``, one consistent snapshot) and hand
   the whole snapshot to the applier as one :class:`Listed` message; the applier
   turns its difference from what it already knows into Upsert/Delete events, so
   the same path serves the first sync and every re-list;
2. **watch** from the list's ``resourceVersion`` with ``allowWatchBookmarks`` and a
   server-side ``timeoutSeconds``; every ADDED/MODIFIED/DELETED becomes one
   :class:`Changed` message, in stream order; BOOKMARKs only move the
   resourceVersion forward; when the server ends the stream (the timeout) the
   watch is re-opened from the last resourceVersion, so nothing is lost or
   replayed;
3. ``410 Gone`` (an HTTP 410, or an ERROR event carrying a 410 Status: the
   resourceVersion was compacted away) -> back to 1 at once;
4. a collection backed by a CRD (``optional``) that answers ``404 Not Found`` is
   not installed: that is normal, not a failure.  The watcher hands the applier
   an empty list (so the collection counts as synced, and objects it held before
   the CRD was removed are deleted), reports ``installed: false`` in status, and
   lists again every ``absent_poll`` seconds, picking the CRD up once installed;
5. any other failure (connection refused or broken, read timeout, 5xx, a
   garbled line) -> capped exponential back-off with jitter, then resume the
   watch from the last resourceVersion (or re-list if there is none yet).

Why raw JSON: responses are requested with ``_preload_content=False`` and parsed
with :func:`json.loads`, then validated by
:func:`netpol_pdp.index.validation.parse_object`.  Letting the client build its
``V1Pod`` models and turning them back into dicts with
``sanitize_for_serialization`` gives the same dicts about 10x slower
(docs/kubernetes.md has the figures); the manifest dict is what validation reads.

An object the API returns but validation rejects is reported (status counter,
``last_invalid``, a log warning) and skipped: the index keeps the version it had
(if any), exactly as the manifest feed keeps its last good state.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

from netpol_pdp.index.errors import ValidationError
from netpol_pdp.index.kubestatus import ResourceStatus
from netpol_pdp.index.model import Delete, Event, Kind, Object, ObjectKey, Upsert
from netpol_pdp.index.validation import parse_object

log = logging.getLogger("netpol_pdp.kube")

ListCall = Callable[..., Any]
_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class Collection:
    """One watched collection: the kind it holds and the client call that lists/watches it."""

    kind: Kind
    #: API group ("" = core) and resource name: what RBAC must grant (deploy/clusterrole.yaml)
    group: str
    plural: str
    namespaced: bool
    list_call: Callable[[client.ApiClient], ListCall]
    #: served by a CRD that may not be installed: 404 means "absent", not an error
    optional: bool = False


def _custom(version: str, plural: str) -> Callable[[client.ApiClient], ListCall]:
    """The list/watch call of a cluster-scoped custom resource of policy.networking.k8s.io."""
    return lambda c: functools.partial(
        client.CustomObjectsApi(c).list_cluster_custom_object, "policy.networking.k8s.io", version, plural
    )


COLLECTIONS: tuple[Collection, ...] = (
    Collection(Kind.NAMESPACE, "", "namespaces", False, lambda c: client.CoreV1Api(c).list_namespace),
    Collection(Kind.POD, "", "pods", True, lambda c: client.CoreV1Api(c).list_pod_for_all_namespaces),
    Collection(Kind.NODE, "", "nodes", False, lambda c: client.CoreV1Api(c).list_node),
    Collection(
        Kind.SERVICE, "", "services", True, lambda c: client.CoreV1Api(c).list_service_for_all_namespaces
    ),
    Collection(
        Kind.NETWORK_POLICY,
        "networking.k8s.io",
        "networkpolicies",
        True,
        lambda c: client.NetworkingV1Api(c).list_network_policy_for_all_namespaces,
    ),
    Collection(
        Kind.ENDPOINT_SLICE,
        "discovery.k8s.io",
        "endpointslices",
        True,
        lambda c: client.DiscoveryV1Api(c).list_endpoint_slice_for_all_namespaces,
    ),
    Collection(
        Kind.CLUSTER_NETWORK_POLICY,
        "policy.networking.k8s.io",
        "clusternetworkpolicies",
        False,
        _custom("v1alpha2", "clusternetworkpolicies"),
        optional=True,
    ),
    Collection(
        Kind.ADMIN_NETWORK_POLICY,
        "policy.networking.k8s.io",
        "adminnetworkpolicies",
        False,
        _custom("v1alpha1", "adminnetworkpolicies"),
        optional=True,
    ),
    Collection(
        Kind.BASELINE_ADMIN_NETWORK_POLICY,
        "policy.networking.k8s.io",
        "baselineadminnetworkpolicies",
        False,
        _custom("v1alpha1", "baselineadminnetworkpolicies"),
        optional=True,
    ),
)


# --- messages from the watchers to the applier --------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """A complete, consistent list of one collection.

    ``objects`` are the valid ones; ``invalid`` are keys the API holds but
    validation rejected: the applier keeps whatever version of them it had
    instead of deleting it.
    """

    kind: Kind
    objects: dict[ObjectKey, Object]
    invalid: frozenset[ObjectKey]
    resource_version: str


@dataclass(frozen=True, slots=True)
class Changed:
    """One watch event, already converted."""

    kind: Kind
    event: Event


Message = Listed | Changed


# --- back-off ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential back-off with "equal jitter".

    Attempt ``n`` (0-based) waits between half and all of
    ``min(cap, base * 2**n)``: the exponential part keeps a dead API server from
    being hammered, the jitter keeps many replicas from reconnecting in step, and
    the lower half-bound keeps the wait from collapsing to nothing.
    """

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling / 2 + (rng or _RNG).uniform(0, ceiling / 2)


# --- conversion --------------------------------------------------------------------------


class WatchProtocolError(Exception):
    """The server sent something the watch protocol does not allow (a garbled line, a bad Status)."""


class Expired(Exception):
    """410 Gone: the resourceVersion we hold was compacted away; re-list."""


def object_key(coll: Collection, raw: Mapping[str, Any]) -> ObjectKey:
    """The key of an API object from its metadata alone (enough for a DELETED event)."""
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise WatchProtocolError(f"{coll.kind} object without metadata.name")
    ns = (meta.get("namespace") or "default") if coll.namespaced else ""  # validation's default too
    return (coll.kind, ns if isinstance(ns, str) else "", meta["name"])


# --- the watcher -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Tuning of every watcher of one feed (seconds)."""

    #: server-side ``timeoutSeconds`` of each watch request; the watch is re-opened after it.
    watch_timeout: int = 300
    #: client-side read timeout beyond ``watch_timeout``: a silent half-open connection is
    #: detected after ``watch_timeout + read_slack`` at worst.
    read_slack: float = 30.0
    connect_timeout: float = 10.0
    #: ``limit`` of each list page.
    page_size: int = 500
    backoff: Backoff = Backoff()
    #: how often a collection whose CRD is not installed is listed again
    absent_poll: float = 30.0


class Watcher:
    """List-then-watch loop of one collection; feeds :class:`Message` s into ``out``."""

    def __init__(
        self,
        coll: Collection,
        api: client.ApiClient,
        out: queue.Queue[Message | None],
        status: ResourceStatus,
        options: WatchOptions,
        stopping: threading.Event,
    ) -> None:
        self.coll = coll
        self._call = coll.list_call(api)
        self._out = out
        self.status = status
        self._opts = options
        self._stopping = stopping
        self._resp: Any = None  # the open watch response, so stop() can break it
        self._resp_lock = threading.Lock()
        self._rng = random.Random()
        self._invalid: set[ObjectKey] = set()
        #: the resourceVersion everything up to which has been handed to the applier;
        #: None until the first list and after a 410 (both mean: list next)
        self.rv: str | None = None
        self._progress = False  # something arrived on the current watch
        self.thread = threading.Thread(target=self.run, name=f"kube-watch-{coll.plural}", daemon=True)

    # the thread --------------------------------------------------------------------------

    def run(self) -> None:
        attempt = 0
        expired = 0  # 410s in a row with nothing delivered in between
        while not self._stopping.is_set():
            self._progress = False
            try:
                if self.rv is None:
                    self._list()
                    attempt = 0
                self._watch()
            except ApiException as e:
                if not (self.coll.optional and e.status == 404):
                    attempt = self._failed(e, attempt)
                    continue
                self._absent()
                self._stopping.wait(self._opts.absent_poll)
            except Expired as e:
                self.status.expired(str(e))
                expired = 0 if self._progress else expired + 1
                log.info("%s: %s; re-listing", self.coll.plural, e)
                self.rv = None
                if expired > 1:  # a server that expires every fresh list must not be hammered
                    self._stopping.wait(self._opts.backoff.delay(expired - 2, self._rng))
            except Exception as e:
                attempt = self._failed(e, attempt)
            else:
                attempt = 0

    def _failed(self, e: Exception, attempt: int) -> int:
        """Report a failure and back off; returns the next attempt number."""
        if self._stopping.is_set():
            return attempt
        if self._progress:  # the stream worked for a while: start the back-off over
            attempt = 0
        self.status.failed(_describe(e))
        delay = self._opts.backoff.delay(attempt, self._rng)
        log.warning("%s: %s; retrying in %.1fs", self.coll.plural, _describe(e), delay)
        self._stopping.wait(delay)
        return attempt + 1

    def _absent(self) -> None:
        """The CRD is not installed (or was removed): an empty, synced collection."""
        if self.status.installed:
            log.info("%s: not served by the API server (CRD not installed); polling", self.coll.plural)
            self._out.put(Listed(self.coll.kind, {}, frozenset(), ""))
        self.status.absent()
        self.rv = None
        self._invalid = set()

    def interrupt(self) -> None:
        """Break the open watch connection (called by stop(), from another thread)."""
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            try:
                resp.shutdown()
            except Exception:  # already closed: nothing to interrupt
                log.debug("%s: interrupting a closed watch", self.coll.plural)

    # list --------------------------------------------------------------------------------

    def _list(self) -> None:
        objects: dict[ObjectKey, Object] = {}
        invalid: set[ObjectKey] = set()
        token: str | None = None
        rv = ""
        while True:
            kwargs: dict[str, Any] = {"limit": self._opts.page_size, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            kwargs["_request_timeout"] = (self._opts.connect_timeout, self._opts.watch_timeout)
            try:
                resp = self._call(**kwargs)
            except ApiException as e:
                if e.status == 410 and token:  # the snapshot expired mid-way: start the list over
                    raise Expired(f"list continue token expired: {e.reason}") from e
                raise
            try:
                data = resp.data
            finally:
                resp.release_conn()
            body = _json(data, f"{self.coll.kind}List")
            meta = body.get("metadata") or {}
            items = body.get("items") or []
            if not isinstance(items, list):
                raise WatchProtocolError(f"{self.coll.kind}List.items is not a list")
            for raw in items:
                key, obj = self._convert(raw)
                if obj is None:
                    invalid.add(key)
                else:
                    objects[key] = obj
            token = meta.get("continue") or None
            rv = str(meta.get("resourceVersion") or rv)
            if not token:
                break
        if not rv:
            raise WatchProtocolError(f"{self.coll.kind}List without metadata.resourceVersion")
        self._invalid = invalid
        if not self.status.installed:
            log.info("%s: now served by the API server", self.coll.plural)
        self.status.listed(rv, len(invalid))
        self._out.put(Listed(self.coll.kind, objects, frozenset(invalid), rv))
        self.rv = rv

    # watch -------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Follow one watch request to its end, moving :attr:`rv` along with each event."""
        rv = self.rv
        read_timeout = self._opts.watch_timeout + self._opts.read_slack
        try:
            resp = self._call(
                watch=True,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=self._opts.watch_timeout,
                _preload_content=False,
                _request_timeout=(self._opts.connect_timeout, read_timeout),
            )
        except ApiException as e:
            if e.status == 410:
                raise Expired(f"410 Gone: {e.reason}") from e
            raise
        with self._resp_lock:
            self._resp = resp
        self.status.watching(rv or "")
        try:
            if self._stopping.is_set():  # stop() came before the response could be interrupted
                return
            for line in watch_lines(resp.stream(amt=None)):
                if self._stopping.is_set():
                    break
                self._event(line)
                self._progress = True
        finally:
            with self._resp_lock:
                self._resp = None
            resp.close()  # as kubernetes.watch does: never hand a half-read stream back to the pool
            resp.release_conn()
        self.status.watch_ended()

    def _event(self, line: bytes) -> None:
        """Handle one watch line: hand its event to the applier, then move :attr:`rv` past it."""
        ev = _json(line, "watch event")
        kind, raw = ev.get("type"), ev.get("object")
        if not isinstance(raw, dict) or kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"):
            raise WatchProtocolError(f"watch event without a known type and an object: {line[:200]!r}")
        if kind == "ERROR":
            code, reason, message = raw.get("code"), raw.get("reason"), raw.get("message")
            if code == 410:
                raise Expired(f"410 {reason}: {message}")
            raise WatchProtocolError(f"watch ERROR {code} {reason}: {message}")
        meta = raw.get("metadata") or {}
        new_rv = str(meta.get("resourceVersion") or self.rv)
        if kind == "BOOKMARK":
            self.rv = new_rv
            self.status.bookmark(new_rv)
            return
        if kind == "DELETED":
            key = object_key(self.coll, raw)
            self._invalid.discard(key)
            self._out.put(Changed(self.coll.kind, Delete(key)))
        else:
            key, obj = self._convert(raw)
            if obj is not None:
                self._invalid.discard(key)
                self._out.put(Changed(self.coll.kind, Upsert(obj)))
            else:
                self._invalid.add(key)
        self.rv = new_rv
        self.status.event(new_rv, len(self._invalid))

    def _convert(self, raw: Any) -> tuple[ObjectKey, Object | None]:
        """(key, valid object) or (key, None) after reporting why the object is rejected."""
        if not isinstance(raw, dict):
            raise WatchProtocolError(f"{self.coll.kind} item is not an object")
        key = object_key(self.coll, raw)
        raw["kind"] = self.coll.kind.value  # list items carry no kind
        try:
            obj = parse_object(raw)
        except ValidationError as e:
            self.status.invalid(str(e))
            log.warning("skipping invalid object from the API server: %s", e)
            return key, None
        if obj is None or obj.key != key:
            raise WatchProtocolError(f"{key} did not parse as {self.coll.kind}")
        return key, obj


def watch_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a watch stream into its JSON lines, however the bytes were chunked.

    Linear in the stream's size.  (``kubernetes.watch.iter_resp_lines`` re-copies
    its whole buffer after every line, which is quadratic when many events arrive
    in one read: 10,000 buffered events took seconds there.)
    """
    partial: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            partial.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if partial:
            partial.append(lines[0])
            lines[0] = b"".join(partial)
            partial = []
        tail = lines.pop()
        if tail:
            partial.append(tail)
        yield from (line for line in lines if line.strip())
    rest = b"".join(partial)
    if rest.strip():
        yield rest


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError as e:
        raise WatchProtocolError(f"{what} is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise WatchProtocolError(f"{what} is not a JSON object")
    return body


def _describe(e: BaseException) -> str:
    """One line for status and logs: the API's own words for ApiException, the type otherwise."""
    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason}".strip()
    if isinstance(e, MaxRetryError) and e.reason is not None:  # the cause, not urllib3's wrapper
        return _describe(e.reason)
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}"[:300]
