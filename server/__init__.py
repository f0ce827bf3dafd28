"""The gRPC decision service: the servicers, the server around them, metrics, logs.

How the pieces connect::

    netpol-pdp serve (clients/cmd_serve.py)
      -> serve.py     Service: Index + ManifestFeed thread (the single writer)
                      + gRPC server + metrics; signals; --workers
      -> app.py       start_server(): DecisionService + health + reflection + TLS,
                      sync (thread pool, default) or grpc.aio, one ServerHandle
      -> service.py   DecisionCore: request messages -> decisions at one generation;
                      the sync/aio servicers and their registration
      -> encode.py    batch responses straight to bytes, per-decision cache

- ``status.py``   readiness (health NOT_SERVING -> SERVING) and GetStatus;
- ``metrics.py``  Prometheus series on a per-server registry;
- ``logging.py``  JSON-lines logs through the standard library;
- ``config.py``   limits and ConfigError (no grpc import: the CLI parser needs them);
- ``echo.py``     the same API answering without deciding (the benchmarks' baseline).

docs/grpc.md describes the API, the options and the measurements behind the choices.
"""
