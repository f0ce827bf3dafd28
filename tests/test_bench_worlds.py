"""The benchmark world generator builds what it claims: sizes, shape, every policy recipe."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from netpol_pdp.bench.flowmix import endpoints, realistic_flows, uniform_flows
from netpol_pdp.bench.worlds import SIZES, generate_world, write_world
from netpol_pdp.index.model import NetworkPolicy, Pod
from netpol_pdp.index.validation import parse_object


@pytest.fixture(scope="module")
def small():
    return generate_world("small", seed=7)


@pytest.mark.parametrize("size", ["tiny", "small"], ids=["a tiny world", "a small world"])
def test_a_world_has_exactly_the_counts_of_its_size(size):
    spec = SIZES[size]
    counts = generate_world(size, seed=1).counts()
    assert counts == {
        "Namespace": spec.namespaces,
        "Pod": spec.pods,
        "Node": spec.nodes,
        "NetworkPolicy": spec.policies,
    }


def test_the_same_seed_gives_the_same_world_and_another_seed_another():
    assert generate_world("tiny", seed=3).manifests == generate_world("tiny", seed=3).manifests
    assert generate_world("tiny", seed=3).manifests != generate_world("tiny", seed=4).manifests


def test_replicas_share_labels_so_identities_are_far_fewer_than_pods(small):
    assert small.identities * 2 < small.spec.pods


def test_every_node_runs_one_host_network_pod_on_its_own_address(small):
    host = [o for o in small.objects if isinstance(o, Pod) and o.host_network]
    assert len(host) == small.spec.nodes
    assert sorted(ip for p in host for ip in p.ips) == sorted(small.node_ips)


def test_pod_addresses_are_unique(small):
    ips = Counter(ip for o in small.objects if isinstance(o, Pod) and not o.host_network for ip in o.ips)
    assert ips and max(ips.values()) == 1


def _features(policies: list[NetworkPolicy]) -> set[str]:
    seen: set[str] = set()
    for p in policies:
        if not p.ingress and not p.egress and p.pod_selector.is_empty:
            seen.add("default-deny")
        for rule in (*p.ingress, *p.egress):
            for peer in rule.peers:
                if peer.ip_block and peer.ip_block.except_:
                    seen.add("ipBlock with except")
                if peer.pod_selector is not None and peer.namespace_selector is not None:
                    seen.add("namespace+pod selector")
                for sel in (peer.pod_selector, peer.namespace_selector):
                    for req in sel.match_expressions if sel else ():
                        seen.add(f"matchExpressions {req.operator.value}")
            for port in rule.ports:
                if isinstance(port.port, str):
                    seen.add("named port")
                if port.end_port is not None:
                    seen.add("port range")
                if port.protocol == "UDP" and port.port == 53:
                    seen.add("DNS egress")
    return seen


def test_the_policy_mix_uses_every_common_recipe(small):
    policies = [o for o in small.objects if isinstance(o, NetworkPolicy)]
    assert _features(policies) >= {
        "default-deny",
        "ipBlock with except",
        "namespace+pod selector",
        "matchExpressions In",
        "matchExpressions NotIn",
        "matchExpressions Exists",
        "matchExpressions DoesNotExist",
        "named port",
        "port range",
        "DNS egress",
    }


def test_written_yaml_reads_back_as_the_same_objects(tmp_path: Path):
    world = generate_world("tiny", seed=2)
    files = write_world(world, tmp_path)
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    assert sorted(map(repr, (parse_object(d) for d in docs))) == sorted(map(repr, world.objects))


def test_the_realistic_mix_repeats_a_few_pairs_and_the_uniform_mix_does_not(small):
    ends = endpoints(small.objects)
    realistic = realistic_flows(ends, 20_000, seed=1)
    uniform = uniform_flows(ends, 20_000, seed=1)
    assert len(realistic) == len(uniform) == 20_000
    top10 = sum(n for _, n in Counter(realistic).most_common(10))
    assert top10 > 0.1 * len(realistic)
    assert len(set(uniform)) > 0.95 * len(uniform)


def test_screened_by_verdict_the_realistic_mix_is_mostly_allowed_with_some_denied(small):
    from netpol_pdp.index.engine import Index

    index = Index.from_objects(small.objects)
    flows = realistic_flows(
        endpoints(small.objects), 20_000, seed=3, allowed=lambda f: index.decide(f).allowed
    )
    verdicts = Counter(d.verdict.value for d in index.decide_many(flows))
    assert verdicts["ALLOW"] > 0.8 * len(flows)
    assert verdicts["DENY"] > 0


def test_external_addresses_never_collide_with_the_worlds_own(small):
    ends = endpoints(small.objects)
    own = set(small.node_ips) | {ip for o in small.objects if isinstance(o, Pod) for ip in o.ips}
    assert ends.external_ips and not own & set(ends.external_ips)
