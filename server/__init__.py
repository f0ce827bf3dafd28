"""The gRPC decision service: the servicers, the server around them, metrics, logs.

How the pieces connect::

    netpol-pdp serve (clients/cmd_serve.py)
      -> serve.py     Service: Index + ManifestFeed thread (the single writer)
                      + gRPC server + metrics; signals; --workers
      -> app.py       start_server(): DecisionService + health + reflection + TLS,
                      sync (thread pool, default) or grpc.aio, one ServerHandle
      -> service.py   DecisionCore: request messages -> decisions at one generation;
                      the sync/aio servicers and their registration
      -> wirecache.py a repeated flow's wire bytes -> its encoded result, per generation
      -> encode.py    batch responses straight to bytes, per-decision cache

- ``status.py``   readiness (health NOT_SERVING -> SERVING) and GetStatus;
- ``metrics.py``  Prometheus series on a per-server registry;
- ``logging.py``  JSON-lines logs through the standard library;
- ``config.py``   limits and ConfigError (no grpc import: the CLI parser needs them);
- ``limits.py``   open DecideStream calls, bounded in all and per connection;
- ``decoding.py`` request deserializers: undecodable bytes and over-wide uint32 fields
                  become INVALID_ARGUMENT instead of INTERNAL or a truncated port;
- ``echo.py``     the same API answering without deciding (the benchmarks' baseline);
- ``envoy.py``    Envoy's ``envoy.service.auth.v3.Authorization/Check`` (ext_authz network and
                  HTTP filters, Istio CUSTOM): CheckRequest -> Flow -> decision -> CheckResponse,
                  registered beside the DecisionService (``start_server(extra_services=...)``);
- ``envoy_http.py`` Envoy's HTTP ext_authz over plain HTTP (``http_service``) for
                  ``serve --envoy-http-listen``: two Envoy-written address headers -> decision;
- ``kubeserve.py`` the Kubernetes feed's status for GetStatus and metrics;
- ``decisionlog.py`` ``serve --decision-log``: one JSON line per decision, rendered and written
                  by a writer thread behind a bounded queue (full: lines dropped and counted);
- ``http_api.py`` ``serve --http-listen``: the DecisionCore's unary RPCs (Decide, DecideBatch,
                  GetStatus, Reach, Matrix) as JSON over HTTP (aiohttp).

docs/grpc.md describes the API, the options and the measurements behind the choices.
"""
