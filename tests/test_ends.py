"""Flow ends by name (index/ends.py): each form, each choice, each error, at one generation.

The world is the base cluster of tests/test_semantics.py (prod/web is dual stack,
10.0.0.1 + fd00::1; nodes n1..n3), plus a pod without an IP, a finished pod and
an IPv6-only pod.  A decision by name must equal the reference evaluator's
decision by the addresses the names resolve to.
"""

from __future__ import annotations

import pytest
from test_semantics import DB, N1, WEB, WEB6, node, pod, world

from netpol_pdp.index.ends import RESOLVERS, Resolved, World, resolve, resolve_flow
from netpol_pdp.index.engine import Index
from netpol_pdp.index.errors import FlowError
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Upsert
from netpol_pdp.index.reference import ReferenceEvaluator
from netpol_pdp.index.validation import parse_object

EXTRA = [
    pod("prod", "pending", [], node="n1", labels={"app": "web"}, phase="Pending"),
    pod("prod", "done", ["10.0.0.9"], node="n1", phase="Succeeded"),
    pod("prod", "six", ["fd00::6"], node="n2", labels={"app": "six"}, ports=[("http", 8080, "TCP")]),
    node("bare"),
]


@pytest.fixture(scope="module")
def index() -> Index:
    return Index.from_objects(world(*EXTRA))


@pytest.mark.parametrize(
    ("src", "dst", "want"),
    [
        pytest.param("prod/db", "prod/api", Flow(DB, "10.0.0.3", "TCP", 80), id="two pods give their IPs"),
        pytest.param("prod/db", "prod/web", Flow(DB, WEB, "TCP", 80), id="dual stack: peer family"),
        pytest.param("prod/six", "prod/web", Flow("fd00::6", WEB6, "TCP", 80), id="dual stack: IPv6 peer"),
        pytest.param("prod/web", "prod/db", Flow(WEB, DB, "TCP", 80), id="dual stack source: its family"),
        pytest.param("node/n1", "prod/db", Flow(N1, DB, "TCP", 80), id="a node gives its InternalIP"),
        pytest.param("8.8.8.8", "prod/db", Flow("8.8.8.8", DB, "TCP", 80), id="an IP stays itself"),
        pytest.param(
            "::ffff:10.0.0.2", "prod/api", Flow(DB, "10.0.0.3", "TCP", 80), id="an IPv4-mapped IP is IPv4"
        ),
    ],
)
def test_ends_resolve_to_addresses(index: Index, src: str, dst: str, want: Flow) -> None:
    assert resolve_flow(index.snapshot(), src, dst, "TCP", 80).flow == want


def test_dual_stack_both_ends_follow_the_source_primary_family(index: Index) -> None:
    six = parse_object(pod("dev", "both", ["fd00::9", "10.0.1.9"], node="n2"))
    assert six is not None
    index2 = Index.from_objects([*world(*EXTRA), six])
    assert resolve_flow(index2.snapshot(), "dev/both", "prod/web", "TCP", 80).flow.src_ip == "fd00::9"
    assert resolve_flow(index2.snapshot(), "dev/both", "prod/web", "TCP", 80).flow.dst_ip == WEB6


def test_named_port_is_the_destination_pods_container_port(index: Index) -> None:
    named = resolve_flow(index.snapshot(), "prod/db", "prod/web", "UDP", dst_port_name="dns")
    assert named.flow == Flow(DB, WEB, "UDP", 53)
    assert named.dst.ref == "Pod prod/web"


@pytest.mark.parametrize(
    ("src", "dst", "port_name", "field", "words"),
    [
        pytest.param("prod/nope", "prod/db", None, "src_name", "prod/nope is not known", id="unknown pod"),
        pytest.param("prod/db", "node/n9", None, "dst_name", "node n9 is not known", id="unknown node"),
        pytest.param("prod/pending", "prod/db", None, "src_name", "has no IP yet", id="pod without an IP"),
        pytest.param("prod/done", "prod/db", None, "src_name", "is Succeeded", id="finished pod"),
        pytest.param("node/bare", "prod/db", None, "src_name", "no InternalIP", id="node without addresses"),
        pytest.param(
            "prod/db", "svc/prod/web", None, "dst_name", "Service prod/web is not known", id="unknown Service"
        ),
        pytest.param("prod/db", "a/b/c", None, "dst_name", "must be an IP", id="three segments"),
        pytest.param("prod/db", "not-an-ip", None, "dst_name", "must be an IP", id="neither IP nor name"),
        pytest.param("prod/db", "", None, "dst_name", "must not be empty", id="empty"),
        pytest.param("prod/six", "prod/db", None, "dst_name", "no address family", id="families differ"),
        pytest.param("prod/db", "prod/web", "nope", "dst_port_name", "no container port", id="named port"),
        pytest.param("prod/db", "8.8.8.8", "http", "dst_port_name", "needs a pod", id="named port, no pod"),
    ],
)
def test_bad_ends_are_one_line_errors_naming_the_field(
    index: Index, src: str, dst: str, port_name: str | None, field: str, words: str
) -> None:
    with pytest.raises(FlowError) as info:
        resolve_flow(index.snapshot(), src, dst, "TCP", None if port_name else 80, port_name)
    assert info.value.field == field
    assert words in info.value.message
    assert "\n" not in str(info.value)


def test_a_name_resolves_at_the_generation_it_is_given(index: Index) -> None:
    live = Index.from_objects(world())
    before = live.snapshot()
    moved = parse_object(pod("prod", "db", ["10.0.0.77"], node="n1", labels={"app": "db", "tier": "data"}))
    assert moved is not None
    live.apply([Upsert(moved)])
    assert resolve(before, "prod/db", "dst_name").addresses == (DB,)
    assert resolve(live.snapshot(), "prod/db", "dst_name").addresses == ("10.0.0.77",)
    flow = resolve_flow(before, "prod/api", "prod/db", "TCP", 5432).flow
    assert live.decide(flow, gen=before).generation == before.number


def test_decision_by_name_equals_the_reference_by_address() -> None:
    objs = world()
    index = Index.from_objects(objs)
    reference = ReferenceEvaluator(objs)
    for src in ("prod/web", "prod/db", "dev/web", "node/n2"):
        for dst in ("prod/api", "prod/web", "lab/tool"):
            flow = resolve_flow(index.snapshot(), src, dst, "TCP", 80).flow
            mine, theirs = index.decide(flow), reference.decide(flow)
            assert (mine.verdict, mine.reason) == (theirs.verdict, theirs.reason), (src, dst)


def test_a_prefix_resolver_can_be_added_and_map_the_asked_port(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook Services use: a resolver for ``svc/`` whose end maps its port to the backend's."""

    def service(world: World, rest: str, text: str, field: str) -> Resolved:
        def port_for(asked: int | str, protocol: str) -> int:
            if asked not in (80, "http"):
                raise FlowError("dst_port", f"service {rest} has no port {asked}")
            return 8080

        return Resolved(text, f"Service {rest}", ("10.0.0.3",), None, port_for)

    monkeypatch.setitem(RESOLVERS, "svc", service)
    assert resolve_flow(index.snapshot(), "prod/db", "svc/prod/api", "TCP", 80).flow == Flow(
        DB, "10.0.0.3", "TCP", 8080
    )
    named = resolve_flow(index.snapshot(), "prod/db", "svc/prod/api", "TCP", dst_port_name="http")
    assert named.flow.dst_port == 8080
    with pytest.raises(FlowError, match="has no port 443"):
        resolve_flow(index.snapshot(), "prod/db", "svc/prod/api", "TCP", 443)
