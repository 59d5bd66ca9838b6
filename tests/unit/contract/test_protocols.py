"""Each fake and each adapter has every method of its port, with the port's parameters: the same names, kinds,
defaults and parameter types. A runtime check of the structure mypy checks statically; return types are left
to mypy (the comparison below would need subtyping)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from reconciler.repository.dynamodb import DynamoDBStore
from reconciler.repository.sqs_dead_letters import SqsDeadLetters
from reconciler.service.ports import DeadLetters, SettlementStore
from tests.fakes import InMemoryDeadLetters, InMemorySettlementStore

IMPLEMENTATIONS = [
    (SettlementStore, InMemorySettlementStore),
    (SettlementStore, DynamoDBStore),
    (DeadLetters, InMemoryDeadLetters),
    (DeadLetters, SqsDeadLetters),
]


def port_methods(port: type) -> list[str]:
    return sorted(name for name, member in vars(port).items() if inspect.isfunction(member) and not name.startswith("_"))


def parameters(function) -> list[tuple]:
    hints = typing.get_type_hints(function)
    return [
        (parameter.name, parameter.kind, parameter.default, hints.get(parameter.name))
        for parameter in inspect.signature(function).parameters.values()
        if parameter.name != "self"
    ]


@pytest.mark.parametrize(("port", "implementation"), IMPLEMENTATIONS, ids=lambda value: value.__name__)
def test_the_implementation_has_every_method_of_its_port_with_the_ports_parameters(port, implementation):
    methods = port_methods(port)
    assert methods, f"{port.__name__} declares no methods"
    for name in methods:
        method = getattr(implementation, name, None)
        assert callable(method), f"{implementation.__name__} has no {name}"
        assert parameters(method) == parameters(getattr(port, name)), f"{implementation.__name__}.{name}"


def test_the_comparison_tells_a_renamed_parameter():
    class Renamed:
        def load_job(self, job: str): ...

    assert parameters(Renamed.load_job) != parameters(SettlementStore.load_job)


def test_the_fakes_load_no_aws_library():
    probe = "import sys, tests.fakes; print(sorted({name.split('.')[0] for name in sys.modules} & {'boto3', 'botocore', 'moto'}))"
    root = Path(__file__).resolve().parents[3]
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
