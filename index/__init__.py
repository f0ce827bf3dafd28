"""The decision engine: model, validation, semantics, index, reference, feeds.

How the pieces connect::

    manifest dicts --validation.parse_object--> model objects (model.py)
        --Upsert/Delete events--> Index.apply() --> new immutable Generation
    Flow (flows.py) --Index.decide()--> Decision (decision.py)

- ``errors.py``      the exception tree and Kubernetes-style field paths;
- ``model.py``       validated, immutable objects and the Upsert/Delete events;
- ``validation.py``  manifest dict -> model object, every rule of SEMANTICS.md;
- ``flows.py``       the Flow tuple and its parsing from untrusted input;
- ``decision.py``    Verdict, Reason codes, Decision and its explanation;
- ``reference.py``   the slow, obvious evaluator the index is tested against;
- ``engine.py``      the incremental index (writer) and its published generations (readers);
- ``manifests.py``   the manifest-folder feed (load, diff, watch);
- ``kubefeed.py``    the Kubernetes feed: four watchers, one applier thread, readiness, stale/fail-closed;
- ``kubewatch.py``   list-then-watch of one collection (resourceVersion, bookmarks, 410, back-off);
- ``kubestatus.py``  the per-collection status the Kubernetes feed reports.
"""
