"""The gRPC services (DecisionService, Envoy ext_authz, health, reflection), metrics and serving config.

- ``envoy.py``  Envoy's ``envoy.service.auth.v3.Authorization/Check`` (ext_authz network and
  HTTP filters, Istio CUSTOM): CheckRequest -> Flow -> ``Index.decide`` -> CheckResponse;
  registered beside the DecisionService by ``serve`` (``start_server(extra_services=...)``).
"""
