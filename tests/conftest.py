"""Shared test set-up: hypothesis profiles, the two evaluators the semantics tests run on, and ``cli``.

Profiles: ``default`` keeps a local run short; ``ci`` (selected when the ``CI``
environment variable is set, as ``.ci/run`` does) runs more examples per property,
sized so that ``tests/test_differential.py`` stays under ~90 s on two cores.
``HYPOTHESIS_PROFILE`` overrides the choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Protocol

import pytest
from hypothesis import HealthCheck, settings

from netpol_pdp.clients.cli import main
from netpol_pdp.index.decision import Decision
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow
from netpol_pdp.index.model import Object
from netpol_pdp.index.reference import ReferenceEvaluator

settings.register_profile(
    "default",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


class Evaluator(Protocol):
    def decide(self, flow: Flow, explain: bool = False) -> Decision: ...


EvaluatorFactory = Callable[[Iterable[Object]], Evaluator]


@pytest.fixture(params=["reference", "index"])
def evaluator_factory(request: pytest.FixtureRequest) -> EvaluatorFactory:
    """Builds an evaluator from model objects: the reference evaluator, then the index."""
    if request.param == "reference":
        return ReferenceEvaluator
    return lambda objs: Index.from_objects(list(objs))


#: ``cli("audit", path, ...)`` -> (exit status, stdout, stderr).
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``netpol-pdp ARGV...`` in this process, as the console script would, and capture its output."""

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run
