"""The proxy configurations in ``clients/envoy/`` are well-formed for the proxies that read them.

Envoy bootstraps are checked against Envoy's own API, as packaged in
``xds-protos``: every ``typed_config`` type is imported from its generated
module, and the whole bootstrap is parsed with ``json_format.ParseDict`` into
``envoy.config.bootstrap.v3.Bootstrap``, which rejects any unknown field name,
bad enum value or bad duration anywhere in it, inside ``typed_config``s too.
Then the points that make netpol-pdp work are checked: the ext_authz filter
comes first, calls an HTTP/2 cluster that exists, with a timeout, fails
closed.  The Istio snippet cannot be checked against Istio's protos (not
packaged); its structure is checked instead.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import descriptor_pool, json_format

from netpol_pdp.server.envoy import OPTION_EXPLAIN

EXAMPLES = Path(__file__).resolve().parent.parent / "clients" / "envoy"
TYPE_PREFIX = "type.googleapis.com/"

#: Filter name -> the typed_config type that filter name stands for.
FILTER_TYPES = {
    "envoy.filters.network.ext_authz": "envoy.extensions.filters.network.ext_authz.v3.ExtAuthz",
    "envoy.filters.network.tcp_proxy": "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "envoy.filters.network.http_connection_manager": (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    ),
    "envoy.filters.http.ext_authz": "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    "envoy.filters.http.router": "envoy.extensions.filters.http.router.v3.Router",
}

BOOTSTRAPS = {
    "network filter in front of a TCP service": "tcp-ext-authz.yaml",
    "HTTP filter in front of an HTTP service": "http-ext-authz.yaml",
}


def _load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a YAML tree, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _import_type(full_name: str) -> Any:
    """The message class for ``full_name``, imported from the xds-protos module that defines it.

    The proto package maps to a Python package (``envoy.extensions.filters.network.ext_authz.v3``);
    the file name inside it is not derivable from the message name, so every
    ``*_pb2`` module of the package is imported and the pool is asked.
    """
    package_name = full_name.rsplit(".", 1)[0]
    package = importlib.import_module(package_name)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"{package_name}.{module.name}")
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    module = importlib.import_module(descriptor.file.name.removesuffix(".proto").replace("/", ".") + "_pb2")
    return getattr(module, descriptor.name)


def _typed_configs(doc: Any) -> list[dict[str, Any]]:
    return [node for node in _walk(doc) if "@type" in node]


def _ext_authz_filters(doc: Any) -> list[dict[str, Any]]:
    return [n for n in _walk(doc) if str(n.get("name", "")).endswith(".ext_authz") and "typed_config" in n]


@pytest.fixture(params=BOOTSTRAPS.values(), ids=BOOTSTRAPS.keys())
def bootstrap(request: pytest.FixtureRequest) -> Any:
    return _load(request.param)


def test_every_example_file_is_checked_by_a_test() -> None:
    files = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml")}
    assert files == {*BOOTSTRAPS.values(), HTTP_SERVICE, "istio-ext-authz.yaml"}


#: The http_service example: no gRPC cluster or dynamic metadata, so only the API parse
#: here; tests/rpc/test_envoy_real.py runs it in a real Envoy.
HTTP_SERVICE = "http-ext-authz-http.yaml"


def test_the_http_service_example_parses_as_envoys_bootstrap() -> None:
    doc = _load(HTTP_SERVICE)
    for node in _typed_configs(doc):
        _import_type(node["@type"].removeprefix(TYPE_PREFIX))
    parsed = json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())
    assert {c.name for c in parsed.static_resources.clusters} == {"web", "netpol-pdp"}


def test_every_typed_config_names_a_message_of_envoys_api(bootstrap: Any) -> None:
    types = {node["@type"] for node in _typed_configs(bootstrap)}
    assert types, "a bootstrap without typed_config checks nothing"
    for url in types:
        assert url.startswith(TYPE_PREFIX), url
        full_name = url.removeprefix(TYPE_PREFIX)
        message_class = _import_type(full_name)
        assert message_class.DESCRIPTOR.full_name == full_name


def test_each_typed_config_parses_into_its_message(bootstrap: Any) -> None:
    for node in _typed_configs(bootstrap):
        full_name = node["@type"].removeprefix(TYPE_PREFIX)
        message = _import_type(full_name)()
        body = {k: v for k, v in node.items() if k != "@type"}
        json_format.ParseDict(body, message)  # raises ParseError naming an unknown field


def test_the_whole_bootstrap_parses_as_envoys_bootstrap(bootstrap: Any) -> None:
    for node in _typed_configs(bootstrap):
        _import_type(node["@type"].removeprefix(TYPE_PREFIX))
    parsed = json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
    assert len(parsed.static_resources.listeners) == 1
    assert {c.name for c in parsed.static_resources.clusters} >= {"netpol-pdp"}


def test_a_misspelt_field_is_caught_by_the_parse(bootstrap: Any) -> None:
    """The check above is a real one: one wrong field name inside ext_authz fails it."""
    (ext_authz,) = _ext_authz_filters(bootstrap)
    ext_authz["typed_config"]["failure_mode_alow"] = False
    for node in _typed_configs(bootstrap):
        _import_type(node["@type"].removeprefix(TYPE_PREFIX))
    with pytest.raises(json_format.ParseError, match="failure_mode_alow"):
        json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())


def test_filter_names_match_their_typed_config(bootstrap: Any) -> None:
    named = [n for n in _walk(bootstrap) if "name" in n and isinstance(n.get("typed_config"), dict)]
    filters = [n for n in named if str(n["name"]).startswith("envoy.filters.")]
    assert filters
    for node in filters:
        assert node["typed_config"]["@type"] == TYPE_PREFIX + FILTER_TYPES[node["name"]], node["name"]


def test_ext_authz_comes_first_and_calls_netpol_pdp_over_http2_with_a_timeout_failing_closed(
    bootstrap: Any,
) -> None:
    (chain,) = bootstrap["static_resources"]["listeners"][0]["filter_chains"]
    first = chain["filters"][0]
    if first["name"] == "envoy.filters.network.http_connection_manager":
        http_filters = first["typed_config"]["http_filters"]
        assert http_filters[-1]["name"] == "envoy.filters.http.router"
        first = http_filters[0]
    assert first["name"].endswith(".ext_authz")
    config = first["typed_config"]
    assert config["transport_api_version"] == "V3"
    assert config["failure_mode_allow"] is False
    assert config["grpc_service"]["timeout"]
    cluster_name = config["grpc_service"]["envoy_grpc"]["cluster_name"]
    (cluster,) = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == cluster_name]
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "http2_protocol_options" in options["explicit_http_config"]


def test_access_logs_read_the_metadata_netpol_pdp_writes(bootstrap: Any) -> None:
    (ext_authz,) = _ext_authz_filters(bootstrap)
    formats = [n["inline_string"] for n in _walk(bootstrap) if "inline_string" in n]
    assert formats
    for text in formats:
        assert f"%DYNAMIC_METADATA({ext_authz['name']}:reason)%" in text
        assert f"%DYNAMIC_METADATA({ext_authz['name']}:generation)%" in text


def test_the_explain_option_of_the_http_example_is_one_the_server_reads() -> None:
    doc = _load("http-ext-authz.yaml")
    extensions = [n["context_extensions"] for n in _walk(doc) if "context_extensions" in n]
    assert extensions == [{OPTION_EXPLAIN: "true"}]


def test_the_istio_snippet_registers_the_provider_its_policy_uses() -> None:
    operator, policy = yaml.safe_load_all((EXAMPLES / "istio-ext-authz.yaml").read_text())
    assert operator["kind"] == "IstioOperator"
    providers = {p["name"]: p for p in operator["spec"]["meshConfig"]["extensionProviders"]}
    assert policy["kind"] == "AuthorizationPolicy"
    assert policy["apiVersion"].startswith("security.istio.io/")
    spec = policy["spec"]
    assert spec["action"] == "CUSTOM"
    assert spec["rules"], "CUSTOM policies need at least one rule"
    grpc_provider = providers[spec["provider"]["name"]]["envoyExtAuthzGrpc"]
    assert set(grpc_provider) <= {
        "service",
        "port",
        "timeout",
        "failOpen",
        "statusOnError",
        "includeRequestBodyInCheck",
    }
    assert grpc_provider["service"].endswith(".svc.cluster.local")
    assert 1 <= grpc_provider["port"] <= 65535
    assert grpc_provider["timeout"].endswith("s")
    assert grpc_provider["failOpen"] is False
