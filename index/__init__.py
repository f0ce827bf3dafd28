"""The decision engine: model, validation, semantics, index, reference, feeds.

How the pieces connect::

    manifest dicts --validation.parse_object--> model objects (model.py)
        --Upsert/Delete events--> Index.apply() --> new immutable Generation
    Flow (flows.py) --Index.decide()--> Decision (decision.py)

- ``errors.py``      the exception tree and Kubernetes-style field paths;
- ``model.py``       validated, immutable objects and the Upsert/Delete events;
- ``validation.py``  manifest dict -> model object, every rule of SEMANTICS.md;
- ``validation_cnp.py`` the cluster-scoped policy kinds (ClusterNetworkPolicy, ANP, BANP): CRD schema + CEL;
- ``validation_svc.py`` Service and EndpointSlice manifests -> model objects (docs/services.md);
- ``services.py``    the Service tables: address and port -> endpoints, built per Service from its slices;
- ``flows.py``       the Flow tuple and its parsing from untrusted input;
- ``ends.py``        flow ends by name (``ns/name``, ``node/NAME``, an IP) resolved at one generation;
- ``decision.py``    Verdict, Reason codes, Decision and its explanation;
- ``reference.py``   the slow, obvious evaluator the index is tested against;
- ``engine.py``      the incremental index (writer) and its published generations (readers);
- ``generation.py``  the read side: one immutable published generation and what it holds;
- ``tiers.py``       cluster policy tiers: rules compiled per identity, first match, reasons, ties;
- ``selectors.py``   label selectors: matching, canonical keys, the index's anchors;
- ``ipblocks.py``    ipBlock matching with pytricia tries (cidr minus except, both families);
- ``ports.py``       port matching with sorted intervals (numbers, ranges, named ports);
- ``portsets.py``    sets of (protocol, port) with merged ranges: the port side of query answers;
- ``reach.py``       who can reach a pod / what it can reach, from one generation's compiled rules;
- ``matrix.py``      the reachability matrix of a set of pods and ports, and its diff;
- ``documents.py``   strict YAML/JSON reading (duplicate keys, nesting, unreadable values, alias bombs)
                     shared by the file readers;
- ``fastparse.py``   the fast path of the manifest feed: yaml-rs / msgspec where they agree with
                     ``documents.py`` (None where they may not: then ``documents.py`` reads it),
                     a whole file screened in one RE2 pass and parsed in one yaml-rs call;
- ``manifests.py``   the manifest-folder feed (load, diff, watch);
- ``kubefeed.py``    the Kubernetes feed: a watcher per collection (CRDs optional), one applier,
  readiness, stale/fail-closed;
- ``kubewatch.py``   list-then-watch of one collection (resourceVersion, bookmarks, 410, back-off);
- ``kubestatus.py``  the per-collection status the Kubernetes feed reports.
"""
