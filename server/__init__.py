"""The gRPC services (DecisionService, Envoy ext_authz, health, reflection), metrics and serving config."""
