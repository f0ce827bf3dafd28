"""Benchmarks: synthetic worlds, micro-benchmarks, the audit, scaling and end-to-end runs.

How the pieces connect (each runnable as ``netpol-pdp bench <name>``, docs/benchmarks.md)::

    worlds.py (clusters) --flowmix.py (flow logs)--> audit.py / scaling.py / serve.py
                                                  \\-> test_micro.py (pytest-benchmark) <- micro.py
    results.py: JSON + Markdown in --output (default_dir()), the machine and its load, cProfile summaries

- ``worlds.py``     synthetic clusters shaped like real ones (tiny / small / medium / large),
  as manifest dicts validated through ``parse_object``, and written as YAML for the CLI;
- ``flowmix.py``    flow mixes over any world: a realistic log (Zipf-like repetition, mostly
  allowed) and uniform random flows (nearly all distinct: cache misses);
- ``services.py``   a Service + EndpointSlice per deployment: an EndpointSlice event and a ClusterIP
  decision next to a pod relabel and a pod-IP decision (ratios, one index);
- ``events.py``     the update events timed (pod add / relabel / delete, namespace relabel,
  policy add / delete), each with the event that undoes it;
- ``test_micro.py`` pytest-benchmark micro-benchmarks (``pytest bench/ --benchmark-enable``);
  outside ``testpaths``, so the default ``pytest`` run never executes them;
- ``micro.py``      runs ``test_micro.py`` and writes its table;
- ``audit.py``      a generated flow log decided in-process: hits, misses, index vs reference;
- ``scaling.py``    build / update / decision cost and peak RSS per size, one process per size;
- ``serve.py``      gRPC on loopback: the service vs the echo server and the reference;
- ``grpc_quick.py`` a short gRPC run (sync/aio, unary/batch/stream, workers, p50/p99 under reloads);
- ``envoy_check.py`` Envoy ``Authorization/Check`` calls/s and latency next to unary Decide;
- ``envoy_latency.py`` what ext_authz adds through a real Envoy: serve vs a do-nothing
  servicer (gRPC and HTTP mode), p50/p99 and wrk throughput; ``envoy_proc.py`` runs the Envoys;
- ``flowlog_throughput.py`` a 1,000,000-line Hubble log audited with 1 process, ``--jobs``, ``--dask``;
- ``reload_stall.py`` how long loading one large manifest file delays every other thread;
- ``world_load.py`` a world's load next to yaml-rs's bare parse: strict / fast parse, validate,
  parse + validate + build, the ``validate`` process (python -m only);
- ``flowlog_parsers.py`` one log: json/msgspec/orjson bare parse and orjson parse+dump vs the audit pass;
  the whole ``netpol-pdp audit`` as a process with its peak RSS (two log lengths); ``--hubble``: the same
  flows as Hubble lines;
- ``parser_speed.py`` issue 15's figures in one run, each saying its parser: orjson parse+dump of a
  500,000-flow log, the audit pass and the whole ``netpol-pdp audit``; yaml-rs's bare parse of the
  world, its load and the ``validate`` process; ``--large``: the large world's first load (python -m only);
- ``idle_streams.py`` health and Decide latency beside idle streams, sync and aio (python -m only);
- ``soak.py``       a mixed soak with reloads and a broken rewrite, RSS sampled (python -m only);
- ``test_kube_decode.py`` pytest-benchmark of the Kubernetes feed's decoding routes;
- ``tiers.py``      ClusterNetworkPolicy tiers (Admin + Baseline) on a world, next to the same world
  without them: build, policy event cost, cache-miss decisions/s;
- ``names.py``      decisions by name and why-not: pod events with/without the generation's objects
  snapshot, resolving names, ``Index.explain`` next to ``decide(explain=True)`` (python -m only);
- ``decision_log.py`` the decision log's cost on the DecideStream path (no log / ``deny`` / ``all``)
  and HTTP/JSON ``POST /v1/decide`` next to gRPC unary ``Decide``, ratios of one run (python -m only);
- ``reach.py``      ``reach`` and ``matrix`` latency next to one decide miss and to enumerating
  the world's pods, with the per-generation catalogue apart (python -m only);
- ``results.py``    result files, the machine record, timing and profiling helpers.

Each benchmark asserts the size of the world it built (STYLE.md 12): a figure is
only meaningful next to the size it was measured at.
"""
