"""The manifest-folder feed: load YAML/JSON manifests, diff them, keep the index current.

Three layers, each usable alone:

- :class:`ManifestSource` reads files and folders into model objects
  (:meth:`ManifestSource.load`), or raises one :class:`SourceError` that lists
  *every* problem, each located as
  ``path/file.yaml: document 2: NetworkPolicy default/web: spec.ingress[0].ports[0].port: ...``;
- :func:`diff` turns two loads into the Upsert/Delete events between them;
- :class:`ManifestFeed` applies the first load to an :class:`Index`, then on every
  change (:meth:`ManifestFeed.watch`, via ``watchfiles``) applies only the diff.
  An invalid change keeps the last good state and is reported, never half-applied.

Reading rules (each has a test):

1. a path is a file, or a folder read recursively for ``*.yaml``, ``*.yml`` and
   ``*.json``; entries whose name starts with ``.`` are skipped (editor swap files,
   and the ``..data``/``..2024_…`` twins a Kubernetes ConfigMap mount keeps next
   to the visible files, which would otherwise load every object twice);
2. a YAML file holds any number of ``---`` documents (empty ones are skipped); a
   JSON file holds one document;
3. ``kind: List`` and every ``*List`` kind with ``items`` is unpacked; an item
   without ``kind`` takes it from the list (``PodList`` -> ``Pod``), as the API
   server's typed lists omit it;
4. kinds other than Namespace, Pod, Node, NetworkPolicy, the cluster policy kinds,
   Service and EndpointSlice are counted in
   ``LoadResult.ignored`` and otherwise ignored; so is a known kind of another API
   group (Calico's ``projectcalico.org/v3`` ``NetworkPolicy`` is not ours);
5. one object (kind, namespace, name) declared twice is an error naming both places;
6. nothing is skipped silently: a folder that cannot be listed, a file that cannot be
   read or is larger than ``max_file_bytes``, and *any* exception while reading a
   file (a YAML constructor's ``ValueError``, say) is a problem of that path, and
   the load fails (the feed keeps its last good state);
7. every problem is one line of at most :data:`~netpol_pdp.index.errors.MAX_PROBLEM`
   characters (values are quoted short): a bad value is never echoed whole.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import watchfiles

from netpol_pdp.index.documents import DocumentError, json_document, yaml_documents
from netpol_pdp.index.errors import SourceError, ValidationError, capped
from netpol_pdp.index.model import (
    CLUSTER_POLICY_KINDS,
    OPTIONAL_KINDS,
    SERVICE_KINDS,
    Delete,
    Event,
    Kind,
    Object,
    ObjectKey,
    Upsert,
)
from netpol_pdp.index.validation import parse_object

if TYPE_CHECKING:
    from netpol_pdp.index.engine import Index

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".yaml", ".yml", ".json"})

#: Largest manifest file read (``ManifestSource(max_file_bytes=)``, ``serve --max-file-size``).
#: Parsing costs about 0.25 s and 30 bytes of memory per byte of YAML: a 200 MB file
#: took 103 s and 4.6 GB.  The 10,000-pod benchmark world is 5 MB in all.
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024

#: The apiVersion each kind must carry when it carries one (list items may not).
_API_VERSIONS = {
    Kind.NAMESPACE.value: "v1",
    Kind.POD.value: "v1",
    Kind.NODE.value: "v1",
    Kind.NETWORK_POLICY.value: "networking.k8s.io/v1",
    Kind.CLUSTER_NETWORK_POLICY.value: "policy.networking.k8s.io/v1alpha2",
    Kind.ADMIN_NETWORK_POLICY.value: "policy.networking.k8s.io/v1alpha1",
    Kind.BASELINE_ADMIN_NETWORK_POLICY.value: "policy.networking.k8s.io/v1alpha1",
    Kind.SERVICE.value: "v1",
    Kind.ENDPOINT_SLICE.value: "discovery.k8s.io/v1",
}

#: Apply order of upserts (and reverse order of deletes): referenced kinds first.
_KIND_ORDER = {Kind.NAMESPACE: 0, Kind.NODE: 1, Kind.POD: 2, Kind.NETWORK_POLICY: 3}
_KIND_ORDER.update(dict.fromkeys(CLUSTER_POLICY_KINDS, 4))
_KIND_ORDER.update(dict.fromkeys(SERVICE_KINDS, 5))


# --- loading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One successful load: the objects by key, ignored kinds counted, files read (and parsed anew)."""

    objects: dict[ObjectKey, Object]
    ignored: Counter[str] = field(default_factory=Counter)
    files: int = 0
    #: files parsed by this load; the others were unchanged since an earlier load of the source
    parsed: int = 0

    @property
    def empty(self) -> bool:
        """No object at all: every flow would be allowed (``no-pod-involved``); worth a warning."""
        return not self.objects

    def counts(self) -> dict[str, int]:
        """Objects per kind in :class:`Kind` order: the four core kinds always (zero
        included), the cluster-scoped policy kinds and Service kinds when some were read."""
        out = {k.value: 0 for k in Kind if k not in OPTIONAL_KINDS}
        for kind, _ns, _name in self.objects:
            out[kind.value] = out.get(kind.value, 0) + 1
        return out


def _object_name(doc: Mapping[str, Any]) -> str:
    """``Kind ns/name`` of a raw document, as far as it can be read (for error lines)."""
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "object"
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    if not isinstance(name, str):
        return str(kind)
    if kind in (Kind.NAMESPACE.value, Kind.NODE.value) or kind in {k.value for k in CLUSTER_POLICY_KINDS}:
        return f"{kind} {name}"
    return f"{kind} {ns if isinstance(ns, str) and ns else 'default'}/{name}"


#: What one document (or list item) of a file came to, in file order: an object and
#: where it was declared, a problem line, or an ignored kind.
_Outcome = tuple[Object, str] | str | tuple[None, str]


class _FileReader:
    """Parses and validates one file's documents into :data:`_Outcome` s, touching no shared state.

    Kept apart from :class:`_LoadState` so that the outcomes of an unchanged file
    can be cached and replayed: parsing is nearly all the cost of a load.
    """

    def __init__(self) -> None:
        self.outcomes: list[_Outcome] = []

    def document(self, where: str, doc: object, list_kind: str | None = None, *, item: bool = False) -> None:
        """Read one document (or list ``item``, whose kind defaults to ``list_kind``) located at ``where``."""
        out = self.outcomes
        if doc is None and not item:
            return  # an empty YAML document (a stray ``---``)
        if not isinstance(doc, Mapping):
            out.append(f"{where}: must be a Kubernetes object (a map), got {type(doc).__name__}")
            return
        kind = doc.get("kind")
        if kind is None and list_kind is not None:
            doc = {**doc, "kind": list_kind}
            kind = list_kind
        if kind is None:
            out.append(f"{where}: {_object_name(doc)}: kind: is required")
            return
        if not isinstance(kind, str):
            out.append(f"{where}: {_object_name(doc)}: kind: must be a string (got {kind!r})")
            return
        if kind.endswith("List") and "items" in doc:
            self._list(where, doc, kind)
            return
        api_version = doc.get("apiVersion")
        if api_version is not None and kind in _API_VERSIONS and api_version != _API_VERSIONS[kind]:
            out.append((None, f"{api_version}/{kind}"))
            return
        try:
            obj = parse_object(doc)
        except ValidationError as err:
            out.extend(f"{where}: {err.obj}: {e}" for e in err.errors)
            return
        except Exception as err:  # a validation bug must not take the feed down: locate it
            out.append(f"{where}: {_object_name(doc)}: cannot be read: {type(err).__name__}: {err}")
            return
        out.append((None, kind) if obj is None else (obj, where))

    def _list(self, where: str, doc: Mapping[str, Any], kind: str) -> None:
        items = doc.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            self.outcomes.append(f"{where}: {kind}: items: must be a list")
            return
        item_kind = kind[: -len("List")] or None  # "List" itself names no item kind
        for i, item in enumerate(items):
            self.document(f"{where}: items[{i}]", item, item_kind, item=True)

    def read(self, path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> list[_Outcome]:
        """Every outcome of the file at ``path`` (problems reading it included); never raises."""
        try:
            return self._read(path, max_bytes)
        except Exception as err:  # whatever a parser lets out is a problem of this file
            return [*self.outcomes, f"{path}: cannot be read: {type(err).__name__}: {err}"]

    def _read(self, path: Path, max_bytes: int) -> list[_Outcome]:
        name = str(path)
        try:
            with path.open("rb") as f:
                raw = f.read(max_bytes + 1)
        except OSError as err:
            return [f"{name}: cannot read: {err.strerror or err}"]
        if len(raw) > max_bytes:
            return [
                f"{name}: larger than the limit of {max_bytes:,} bytes "
                "(split it, or raise the limit: serve --max-file-size)"
            ]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            return [f"{name}: line {line}: not UTF-8 text (byte offset {err.start})"]
        try:
            docs = [json_document(text)] if path.suffix.lower() == ".json" else yaml_documents(text)
        except DocumentError as err:
            return [err.located(name)]
        for i, doc in enumerate(docs, start=1):
            self.document(f"{name}: document {i}", doc)
        return self.outcomes


class _LoadState:
    """One load's working state: the objects so far, where each came from, and every problem."""

    def __init__(self) -> None:
        self.objects: dict[ObjectKey, Object] = {}
        self.origin: dict[ObjectKey, str] = {}
        self.ignored: Counter[str] = Counter()
        self.problems: list[str] = []

    def add(self, outcomes: Iterable[_Outcome]) -> None:
        """Take one file's outcomes, in order; an object declared before (in any file) is an error."""
        objects, origin = self.objects, self.origin
        for outcome in outcomes:
            if isinstance(outcome, str):
                self.problems.append(capped(outcome))
                continue
            obj, where = outcome
            if obj is None:
                self.ignored[where] += 1  # ``where`` holds the ignored kind here
                continue
            key = obj.key  # a computed property: once per object, not three times
            if key in objects:
                self.problems.append(capped(f"{where}: {obj.ref}: declared twice; first in {origin[key]}"))
            else:
                objects[key] = obj
                origin[key] = where


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for one load (and, in the feed, its diff and apply).

    A load allocates an object per document and a tuple per outcome, and none of
    it forms cycles, so the collector finds nothing; with a large index alive,
    each full collection still walks every object of it.  Measured on the
    100,000-pod world: a reload took 0.5 s paused and 1.8 s when a collection
    ran during it.  Nested pauses leave the collector to the outermost one.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: A file whose modification or change time is this close to the moment it was read is
#: read again next time even if it looks unchanged: a second write within the filesystem's
#: timestamp granularity would leave its size and times as they were (git's "racy clean").
RACY_NS = 2_000_000_000


class Unsettled(Exception):
    """A file shrank sharply just now (truncated and being written again?): load later.

    ``until`` is the Unix time after which, unchanged, the file is taken as it is.
    """

    def __init__(self, path: Path, before: int, now: int, until: float) -> None:
        super().__init__(f"{path}: shrank from {before:,} to {now:,} bytes just now; waiting for more")
        self.path = path
        self.until = until


@dataclass(frozen=True, slots=True)
class _Cached:
    signature: tuple[int, int, int, int, int]  # dev, inode, size, mtime_ns, ctime_ns
    outcomes: list[_Outcome]


class ManifestSource:
    """Files and folders of manifests; :meth:`load` gives every object they hold, every time.

    Every load lists the files again and rebuilds the whole object set, file by
    file in a fixed order: a change of one file can move an object to another
    file, and only a full merge keeps duplicate detection and the diff exact.
    What is *not* redone is parsing a file that has not changed since an earlier
    load (same device, inode, size, modification and change times, and not
    modified within :data:`RACY_NS` of being read): its parsed outcomes are
    replayed.  Parsing is nearly all of a load's cost (21 s of a reload of the
    100,000-pod benchmark world), so a one-file edit reloads in about 0.5 s
    (``python -m netpol_pdp.bench.manifest_reload --size large``).
    """

    def __init__(
        self, paths: str | Path | Iterable[str | Path], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ) -> None:
        if isinstance(paths, str | Path):
            paths = [paths]
        self.paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        if not self.paths:
            raise ValueError("a manifest source needs at least one file or folder")
        if max_file_bytes < 1:
            raise ValueError(f"max_file_bytes must be at least 1 (got {max_file_bytes})")
        self.max_file_bytes = max_file_bytes
        self._cache: dict[Path, _Cached] = {}
        #: each file's size at the last load: a file much smaller now may be mid-rewrite
        self._sizes: dict[Path, int] = {}

    def __repr__(self) -> str:
        return f"ManifestSource({[str(p) for p in self.paths]!r})"

    def files(self) -> tuple[list[Path], list[str]]:
        """The files to read (each once, folders in sorted order) and the problems finding them:
        missing paths, and folders that cannot be listed (which would otherwise hide their files)."""
        found: list[Path] = []
        seen: set[Path] = set()
        missing: list[str] = []
        for root in self.paths:
            if root.is_dir():
                candidates = sorted(_folder_files(root, missing))
            elif root.is_file():
                candidates = [root]
            else:
                missing.append(f"{root}: no such file or directory")
                continue
            for p in candidates:
                real = p.resolve()
                if real not in seen:
                    seen.add(real)
                    found.append(p)
        return found, missing

    def load(self, *, settle: float = 0.0) -> LoadResult:
        """Read every file; raises :class:`SourceError` listing every problem found.

        With ``settle`` (seconds), a file that was emptied or shrank to less than half
        its size at the last load, and changed less than ``settle`` s ago, may be in
        the middle of a non-atomic rewrite: the load raises :class:`Unsettled`
        (and changes nothing) instead of taking it.
        """
        with _gc_paused():
            return self._load(settle)

    def _load(self, settle: float = 0.0) -> LoadResult:
        files, problems = self.files()
        state = _LoadState()
        state.problems.extend(capped(p) for p in problems)
        cache: dict[Path, _Cached] = {}
        sizes: dict[Path, int] = {}
        parsed = 0
        for path in files:
            outcomes, fresh = self._outcomes(path, cache, sizes, int(settle * 1e9))
            parsed += fresh
            state.add(outcomes)
        self._cache = cache  # files gone since the last load drop out
        self._sizes = sizes
        if state.problems:
            raise SourceError(state.problems)
        return LoadResult(state.objects, state.ignored, len(files), parsed)

    def _outcomes(
        self, path: Path, cache: dict[Path, _Cached], sizes: dict[Path, int], settle_ns: int
    ) -> tuple[list[_Outcome], bool]:
        """The file's outcomes, from the last load when it is unchanged; also whether it was parsed."""
        try:
            st = path.stat()
        except OSError:
            return _FileReader().read(path, self.max_file_bytes), True  # gone meanwhile: the read reports it
        sizes[path] = st.st_size
        if settle_ns:
            before = self._sizes.get(path, 0)
            changed = max(st.st_mtime_ns, st.st_ctime_ns)
            if st.st_size < before // 2 and time.time_ns() - changed < settle_ns:
                raise Unsettled(path, before, st.st_size, (changed + settle_ns) / 1e9)
        signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        known = self._cache.get(path)
        if known is not None and known.signature == signature:
            cache[path] = known
            return known.outcomes, False
        read_at = time.time_ns()
        outcomes = _FileReader().read(path, self.max_file_bytes)
        if read_at - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
            cache[path] = _Cached(signature, outcomes)
        return outcomes, True


def _folder_files(root: Path, problems: list[str]) -> Iterator[Path]:
    """The manifest files under ``root`` (hidden entries and symlinked folders not entered);
    a folder that cannot be listed is added to ``problems``, as an unreadable file is."""

    def unlistable(err: OSError) -> None:
        problems.append(f"{err.filename}: cannot read folder: {err.strerror or err}")

    for folder, dirs, names in os.walk(root, onerror=unlistable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(folder)
        for name in names:
            p = base / name
            if not name.startswith(".") and p.suffix.lower() in SUFFIXES and p.is_file():
                yield p


# --- diffing ------------------------------------------------------------------------------


def _order(key: ObjectKey) -> tuple[int, str, str]:
    return (_KIND_ORDER[key[0]], key[1], key[2])


def diff(old: Mapping[ObjectKey, Object], new: Mapping[ObjectKey, Object]) -> list[Event]:
    """The events that turn ``old`` into ``new``: Deletes then Upserts, each in a fixed order.

    Deletes come first (policies, pods, nodes, namespaces) so that a pod whose IP
    moved to another pod never shares it, even within one batch; upserts follow
    (namespaces, nodes, pods, policies).  Unchanged objects yield nothing; an
    object replayed from an unchanged file is the very same instance, so most of
    a large source is passed over by identity before any comparison.
    """
    deletes: list[Event] = [Delete(k) for k in sorted(old.keys() - new.keys(), key=_order, reverse=True)]
    get = old.get
    changed = [k for k, obj in new.items() if (prev := get(k)) is not obj and prev != obj]
    upserts: list[Event] = [Upsert(new[k]) for k in sorted(changed, key=_order)]
    return deletes + upserts


# --- the feed -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A snapshot of the feed's health; replaced whole, so any thread may read it.

    ``loads`` counts successful loads, ``errors`` failed ones; ``last_error`` holds
    the problems of the latest load when it failed (None once a load succeeds
    again; at most :data:`MAX_PROBLEMS` lines, then a count of the rest);
    ``generation`` is the index generation of the last good state.  ``empty``: the
    last good state has no object at all, so every flow is allowed
    (``no-pod-involved``): a source pointed at the wrong folder looks like that.
    ``stopped``: the feed's thread ended on an unexpected error (its text), and
    no change will be loaded any more.
    """

    loads: int = 0
    errors: int = 0
    last_error: tuple[str, ...] | None = None
    generation: int = 0
    last_load_time: float | None = None
    last_good_time: float | None = None
    files: int = 0
    objects: Mapping[str, int] = field(default_factory=dict)
    ignored: Mapping[str, int] = field(default_factory=dict)
    empty: bool = False
    stopped: str | None = None

    @property
    def healthy(self) -> bool:
        return self.loads > 0 and self.last_error is None and self.stopped is None


#: Most problem lines a status or a report keeps (each already capped in length); a
#: load with more says how many it left out.  ``ManifestSource.load`` keeps them all.
MAX_PROBLEMS = 100


def _few(problems: list[str]) -> tuple[str, ...]:
    if len(problems) <= MAX_PROBLEMS:
        return tuple(problems)
    return (*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS:,} more problems")


@dataclass(frozen=True, slots=True)
class FeedReport:
    """What one load did, handed to listeners: applied, unchanged, or failed (with problems)."""

    ok: bool
    generation: int
    upserts: int = 0
    deletes: int = 0
    problems: tuple[str, ...] = ()
    seconds: float = 0.0
    initial: bool = False
    #: files listed, and how many of them were parsed (the rest were unchanged); 0 on failure
    files: int = 0
    parsed: int = 0
    #: objects in the state applied (0 on failure); ``empty`` says there are none
    objects: int = 0
    #: a file that shrank just now, not loaded yet (the load was put off; nothing changed)
    waiting: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.upserts or self.deletes)

    @property
    def empty(self) -> bool:
        """A successful load of no object at all: every flow is allowed; worth a warning."""
        return self.ok and self.waiting is None and self.objects == 0


Listener = Callable[[FeedReport], None]

#: How long a file that was emptied or shrank sharply must stay unchanged before a
#: reload takes it (``ManifestFeed(settle=)``): longer than an editor or ``kubectl get
#: > file`` takes to write it again.  A write-and-rename never waits.
DEFAULT_SETTLE = 3.0


class ManifestFeed:
    """Keeps an :class:`Index` equal to a :class:`ManifestSource`.

    Threading: :meth:`start`, :meth:`reload` and :meth:`watch` write to the index,
    so one thread at a time calls them: the feed's thread is the index's single
    writer.  :attr:`status` may be read from any thread.
    """

    def __init__(
        self,
        source: ManifestSource,
        index: Index,
        listener: Listener | None = None,
        *,
        settle: float = DEFAULT_SETTLE,
    ) -> None:
        self.source = source
        self.index = index
        self.settle = settle
        self._listeners: list[Listener] = [listener] if listener else []
        self._current: dict[ObjectKey, Object] = {}
        self._status = FeedStatus()
        #: monotonic time of a reload owed to a file that was waited for (None: none owed)
        self._retry_at: float | None = None

    @property
    def status(self) -> FeedStatus:
        return self._status

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def mark_stopped(self, error: BaseException) -> None:
        """Record that the feed's thread ended on ``error``: :attr:`status` says so from now on."""
        text = capped(f"the manifest feed stopped: {type(error).__name__}: {error}")
        self._status = replace(self._status, stopped=text)

    def _notify(self, report: FeedReport) -> None:
        for listener in self._listeners:
            listener(report)

    def start(self) -> FeedReport:
        """First load, applied whole; raises :class:`SourceError` when it fails (a startup error)."""
        self._current = self.index.objects()
        report = self._load(initial=True)
        if not report.ok:
            raise SourceError(list(report.problems))
        return report

    def reload(self) -> FeedReport:
        """Load again and apply only what changed; on failure keep the last good state.

        Writer thread only.  Never raises :class:`SourceError`: the problems go to
        :attr:`status` and to the listeners.
        """
        return self._load(initial=False)

    def _load(self, *, initial: bool) -> FeedReport:
        with _gc_paused():  # the load, the diff and the apply alike allocate no cycles
            return self._load_paused(initial=initial)

    def _load_paused(self, *, initial: bool) -> FeedReport:
        began = time.monotonic()
        now = time.time()
        st = self._status
        self._retry_at = None
        try:
            result = self.source.load(settle=0.0 if initial else self.settle)
        except Unsettled as wait:
            # not loaded: the last good state stays, and the reload is owed at ``until``
            self._retry_at = began + max(0.0, wait.until - now) + 0.05
            log.info("%s", wait)
            report = FeedReport(True, self.index.generation, initial=initial, waiting=str(wait.path))
            self._notify(report)
            return report
        except Exception as err:
            # SourceError: the located problems; anything else is a bug, but still one load's failure
            if isinstance(err, SourceError):
                problems = _few(err.problems)
            else:
                log.exception("manifest load failed unexpectedly")
                problems = (capped(f"{self.source}: cannot load: {type(err).__name__}: {err}"),)
            self._status = FeedStatus(
                loads=st.loads,
                errors=st.errors + 1,
                last_error=problems,
                generation=st.generation,
                last_load_time=now,
                last_good_time=st.last_good_time,
                files=st.files,
                objects=st.objects,
                ignored=st.ignored,
                empty=st.empty,
                stopped=st.stopped,
            )
            report = FeedReport(
                False,
                self.index.generation,
                problems=problems,
                seconds=time.monotonic() - began,
                initial=initial,
            )
            self._notify(report)
            return report
        events = diff(self._current, result.objects)
        generation = self.index.apply(events) if events or initial else self.index.generation
        self._current = result.objects
        self._status = FeedStatus(
            loads=st.loads + 1,
            errors=st.errors,
            last_error=None,
            generation=generation,
            last_load_time=now,
            last_good_time=now,
            files=result.files,
            objects=result.counts(),
            ignored=dict(result.ignored),
            empty=result.empty,
            stopped=st.stopped,
        )
        deletes = sum(1 for e in events if isinstance(e, Delete))
        report = FeedReport(
            True,
            generation,
            upserts=len(events) - deletes,
            deletes=deletes,
            seconds=time.monotonic() - began,
            initial=initial,
            files=result.files,
            parsed=result.parsed,
            objects=len(result.objects),
        )
        self._notify(report)
        return report

    # --- watching ---------------------------------------------------------------------------

    def _watch_roots(self) -> list[Path]:
        """Folders to watch: each folder source, and the folder of each file source.

        A file is watched through its folder because editors and ConfigMap
        updates replace files by rename, which a watch on the file itself misses.
        A folder source that is missing right now (removed while serving) is left
        out: :meth:`watch` polls for its return rather than watching its parent
        (which may be ``/tmp`` or ``/``) recursively.
        """
        roots: list[Path] = []
        for p in self.source.paths:
            if p.is_dir():
                root = p
            elif p.suffix.lower() in SUFFIXES and p.parent.is_dir():
                root = p.parent
            else:
                continue
            if root not in roots:
                roots.append(root)
        return roots

    def _identity(self) -> tuple[tuple[int, int] | None, ...]:
        """Which inode each watched folder is (None when missing): a watch dies with its folder.

        A file source counts by its folder: editors replace the file itself on every save.
        """
        out: list[tuple[int, int] | None] = []
        for p in self.source.paths:
            folder = p.parent if p.suffix.lower() in SUFFIXES and not p.is_dir() else p
            try:
                st = folder.stat()
            except OSError:
                out.append(None)
            else:
                out.append((st.st_dev, st.st_ino))
        return tuple(out)

    def _relevant(self, path: str) -> bool:
        """Whether a changed path can affect the load (a cheap pre-filter; a reload is exact)."""
        changed = Path(path)
        for p in self.source.paths:
            if p.is_dir():
                if changed.is_relative_to(p.absolute()) or changed.is_relative_to(p.resolve()):
                    return True
            elif (changed.name == p.name or changed.name.startswith("..")) and (
                changed.parent.resolve() == p.parent.resolve()
            ):
                return True
        return False

    def watch(self, stop: threading.Event, *, debounce_ms: int = 300, step_ms: int = 50) -> None:
        """Reload on every (debounced) change until ``stop`` is set; the calling thread writes.

        A file that was emptied or shrank sharply is waited for (``settle``, rule 6
        of :meth:`ManifestSource.load`) and loaded once it has been left alone that
        long, or at once when it is written again.

        Returns within about ``step_ms`` of ``stop`` being set.  Problems of a bad
        change are reported through :attr:`status` and the listeners; the loop
        keeps watching so that the next fix is picked up.  A source folder that is
        removed and created again (``rm -rf cluster && git checkout cluster``)
        takes its inotify watch with it: the watch is then set up anew on what is
        there, and the source reloaded.
        """
        while not stop.is_set():
            if self._watch_until_replaced(stop, debounce_ms, step_ms):
                self.reload()

    def _watch_until_replaced(self, stop: threading.Event, debounce_ms: int, step_ms: int) -> bool:
        """Watch until ``stop`` (False) or until a watched folder is removed or replaced (True)."""
        identity = self._identity()
        roots = self._watch_roots()
        if not roots:  # every source is gone: wait for one to come back
            while not stop.wait(step_ms / 1000):
                if self._identity() != identity:
                    return True
            return False
        watched = {r.absolute() for r in roots} | {r.resolve() for r in roots}
        armed = False
        for changes in watchfiles.watch(
            *roots,
            watch_filter=lambda _change, path: self._relevant(path),
            debounce=debounce_ms,
            step=step_ms,
            stop_event=stop,
            raise_interrupt=False,
            # An empty yield every half second tells us the watcher is armed ...
            yield_on_timeout=True,
            rust_timeout=500,
        ):
            if changes:
                log.debug("manifest change: %s", sorted(p for _c, p in changes))
                self.reload()
                if any(Path(path) in watched for _change, path in changes):
                    return True  # a watched folder itself was removed or created (its inode may be reused)
            elif self._retry_at is not None and time.monotonic() >= self._retry_at:
                self.reload()  # a file waited for has been still long enough
            elif not armed:
                # ... and then one reload catches a change made between the first
                # load and the arming (it publishes nothing when nothing changed).
                self.reload()
            armed = True
            if stop.is_set():
                break
            if self._identity() != identity:
                return True
        return False
