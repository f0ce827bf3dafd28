"""Hot reload while serving: decisions change, generations rise, no call sees a half-applied state,
a broken change keeps the last good state (and GetStatus says why), health follows the first load.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from netpol_pdp.clients import ClientError, DecisionClient, Retry
from netpol_pdp.index.decision import Decision
from netpol_pdp.server.serve import Service

from .conftest import CLIENT, DB, INTRUDER, WEB, flow, policy_text, replace_file, wait_for, wait_watching


def two_policies(port: int) -> str:
    """shop/web and other/db each admit their namespace's ``app=client`` pods on ``port`` only.

    They change together in one file, so every complete state has both on the same port; a
    half-applied reload would show them on different ports.
    """
    return policy_text(port) + "---\n" + policy_text(port, "db-from-client", "other", "db")


def reload_to(service: Service, world: Path, port: int) -> int:
    before = service.index.generation
    replace_file(world / "policy.yaml", two_policies(port))
    return int(
        wait_for(lambda: service.index.generation > before and service.index.generation, what="reload")
    )


def test_a_reload_changes_decisions_and_raises_the_generation(
    service: Service, client: DecisionClient, world: Path
) -> None:
    before = client.decide(flow(CLIENT, WEB, 8080))
    assert before.allowed
    generation = reload_to(service, world, 8443)
    after_old, after_new = client.decide(flow(CLIENT, WEB, 8080)), client.decide(flow(CLIENT, WEB, 8443))
    assert not after_old.allowed and after_new.allowed
    assert after_old.generation == after_new.generation == generation > before.generation
    assert client.status()["generation"] == generation


def test_no_call_ever_sees_a_half_applied_reload(
    service: Service, connect: Callable[..., DecisionClient], world: Path
) -> None:
    ports = list(range(8000, 8006))
    replace_file(world / "policy.yaml", two_policies(ports[0]))
    wait_for(lambda: client_allows(connect(service), ports[0]), what="first state")
    probe = [flow(CLIENT, WEB, p) for p in ports] + [flow(INTRUDER, DB, p) for p in ports]
    seen: dict[int, set[tuple[str, int]]] = defaultdict(set)  # generation -> {(pair, allowed port)}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def record(decisions: list[Decision]) -> None:
        with lock:
            for f, d in zip(probe, decisions, strict=True):
                if d.allowed:
                    seen[d.generation].add((f.dst_ip, f.dst_port))

    def streamer() -> None:
        client = connect(service)
        try:
            while not stop.is_set():
                results = list(client.decide_many(probe * 20, batch_size=len(probe)))
                for k in range(20):
                    batch = results[k * len(probe) : (k + 1) * len(probe)]
                    assert len({d.generation for d in batch if isinstance(d, Decision)}) == 1, (
                        "a batch mixed states"
                    )
                    record([d for d in batch if isinstance(d, Decision)])
        except BaseException as exc:
            errors.append(exc)

    def unary() -> None:
        client = connect(service)
        try:
            while not stop.is_set():
                for f in probe:
                    d = client.decide(f)
                    if d.allowed:
                        with lock:
                            seen[d.generation].add((f.dst_ip, f.dst_port))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=streamer) for _ in range(2)] + [threading.Thread(target=unary)]
    for w in workers:
        w.start()
    generations = [service.index.generation]
    try:
        for port in ports[1:]:
            generations.append(reload_to(service, world, port))
            wait_for(lambda: len(seen) >= len(generations) - 1, timeout=5, what="calls at the new generation")
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert not errors, errors
    assert generations == sorted(generations) and len(set(generations)) == len(generations)
    for generation, allowed in seen.items():
        ports_of = {dst: {p for d, p in allowed if d == dst} for dst in (WEB, DB)}
        assert len(ports_of[WEB]) == 1 and ports_of[WEB] == ports_of[DB], (generation, allowed)
    assert len(seen) >= 3  # calls did land on several generations while reloads happened


def client_allows(client: DecisionClient, port: int) -> bool:
    return client.decide(flow(CLIENT, WEB, port)).allowed and client.decide(flow(INTRUDER, DB, port)).allowed


BROKEN = [
    pytest.param("apiVersion: v1\nkind: [unclosed\n", "invalid YAML", id="YAML that does not parse"),
    pytest.param(
        policy_text(8080).replace("port: 8080", "port: 70000"), "ports[0].port", id="an invalid field"
    ),
    pytest.param(
        policy_text(8080) + "spec: {podSelector: {}}\n",
        "duplicate key 'spec'",
        id="a key given twice (the last one would silently win)",
    ),
    pytest.param("[" * 100_000 + "]" * 100_000, "invalid YAML", id="nesting too deep for the parser"),
]


@pytest.mark.parametrize(("text", "problem"), BROKEN)
def test_a_broken_change_keeps_the_last_good_state_and_status_says_why(
    service: Service,
    client: DecisionClient,
    world: Path,
    text: str,
    problem: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    generation = service.index.generation
    with caplog.at_level(logging.ERROR, logger="netpol_pdp"):
        replace_file(world / "policy.yaml", text)
        status = wait_for(
            lambda: (s := client.status())["feed"]["errors"] >= 1 and s, what="the failed reload"
        )
    assert status["ready"] and not status["synced"]
    assert "policy.yaml" in status["feed"]["last_error"] and problem in status["feed"]["last_error"]
    assert status["feed"]["last_error_unix"] > 0
    assert status["generation"] == generation
    assert client.decide(flow(CLIENT, WEB, 8080)).allowed  # the last good policy still decides
    failures = [r for r in caplog.records if r.getMessage() == "feed_reload_failed"]
    assert failures and any(problem in p for p in failures[0].fields["problems"])  # type: ignore[attr-defined]

    replace_file(world / "policy.yaml", policy_text(9000))
    status = wait_for(lambda: (s := client.status())["synced"] and s, what="the fixed reload")
    assert status["feed"]["last_error"] == "" and status["feed"]["loads"] == 2
    assert status["generation"] > generation
    assert client.decide(flow(CLIENT, WEB, 9000)).allowed


def test_health_goes_from_not_serving_to_serving_at_the_first_good_load(
    start_service: Callable[..., Service], world: Path, connect: Callable[..., DecisionClient], mode: str
) -> None:
    (world / "policy.yaml").write_text("kind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: 7}\n")
    service = start_service([world], mode=mode, wait_for_source=True)
    client = connect(service, retry=Retry(attempts=0))
    status = wait_for(
        lambda: (s := client.status())["feed"]["errors"] >= 1 and s, what="the failed first load"
    )
    wait_watching(service)
    assert not status["ready"] and "podSelector" in status["feed"]["last_error"]
    assert client.health() == "NOT_SERVING"
    with pytest.raises(ClientError) as err:
        client.decide(flow(CLIENT, WEB, 8080))
    assert err.value.code is grpc.StatusCode.UNAVAILABLE and "not ready" in err.value.details

    with grpc.insecure_channel(service.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="netpol.pdp.v1.DecisionService"), timeout=10
        )
        first = next(watch)
        replace_file(world / "policy.yaml", policy_text(8080))
        second = next(watch)
        watch.cancel()
    assert (first.status, second.status) == (
        health_pb2.HealthCheckResponse.NOT_SERVING,
        health_pb2.HealthCheckResponse.SERVING,
    )
    assert client.health() == "SERVING"
    assert client.decide(flow(CLIENT, WEB, 8080)).allowed
    assert client.status()["ready"]
