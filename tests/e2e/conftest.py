"""Fixtures for tests of the operator running as its own process on the real control plane."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.controlplane.builtin_triggers import BuiltinTriggers
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube
from tests.controlplane.operator_process import OperatorProcess


@pytest.fixture
def run_operator(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start the operator (serving the test's namespace unless told otherwise); stopped after."""
    started: list[OperatorProcess] = []

    def start(**kwargs: Any) -> OperatorProcess:
        wait = kwargs.pop("wait", True)
        process = OperatorProcess(control_plane, kube, namespace, **kwargs)
        started.append(process)
        return process.start(wait=wait)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def operator(run_operator: Callable[..., OperatorProcess]) -> OperatorProcess:
    return run_operator()


@pytest.fixture
def builtin_triggers(control_plane: ControlPlane) -> Iterator[BuiltinTriggers]:
    """OpenShift's own trigger controller (emulated), serving every namespace; killed after."""
    with BuiltinTriggers(
        control_plane.url,
        control_plane.admin_token,
        control_plane.ca_file,
        control_plane.dir / "builtin-triggers.log",
    ) as controller:
        yield controller
