"""Shared fixtures: one real control plane per test session, a fresh namespace per test.

Any test that uses the ``control_plane`` fixture (directly or through ``kube``
or ``namespace``) is marked ``controlplane`` automatically; a module that starts
a control plane of its own says so with ``pytestmark``. If the control plane
cannot be built or started, those tests ERROR with the reason; they are never
skipped.

``workloads_control_plane`` is a second one, started only if a test asks for it, where
workloads really roll out (kube-controller-manager, kube-scheduler, kwok's fake nodes:
``tests/controlplane/workloads.py``); a folder of such tests makes it its ``control_plane``
(``tests/rollouts/conftest.py``), so the shared one stays as light as ever.

Fault switches (``tests/harness/test_faults.py``) are reset after every test
that used the shared control plane, and a kube-apiserver left down is started
again (and that test fails), so one test's faults never leak into the next.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import cluster
from tests.controlplane.kube import Kube, create_namespace, install_crds
from tests.controlplane.operator_process import OperatorProcess

OPENSHIFT_CRDS = sorted(cluster.CRD_DIR.glob("*.yaml"))


def operator_crds() -> list[Path]:
    return sorted(cluster.OPERATOR_CRD_DIR.glob("*.yaml"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.controlplane)


def started_plane(
    tmp_path_factory: pytest.TempPathFactory, folder: str, *, workloads: bool = False
) -> Iterator[cluster.ControlPlane]:
    """Start a control plane with every CRD installed; stop it when the generator ends."""
    plane = cluster.ControlPlane(workdir=tmp_path_factory.mktemp(folder), workloads=workloads)
    plane.start()
    try:
        admin = Kube(plane.url, plane.admin_token, plane.ca_file)
        install_crds(admin, [*OPENSHIFT_CRDS, *operator_crds()])
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ControlPlane]:
    yield from started_plane(tmp_path_factory, "controlplane")


@pytest.fixture(scope="session")
def workloads_control_plane(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[cluster.ControlPlane]:
    """A control plane of its own where Deployments, StatefulSets and DaemonSets roll out."""
    yield from started_plane(tmp_path_factory, "controlplane-workloads", workloads=True)


@pytest.fixture(autouse=True)
def _no_faults_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    # Only for tests that use the plane anyway: never start one for a unit test.
    if "control_plane" not in request.fixturenames:
        yield
        return
    plane: cluster.ControlPlane = request.getfixturevalue("control_plane")
    yield
    plane.reset_faults()
    if not plane.apiserver_running():
        plane.start_apiserver()
        pytest.fail("kube-apiserver was left down (restarted for the next test)")


@pytest.fixture(scope="session")
def kube(control_plane: cluster.ControlPlane) -> Kube:
    """An admin client (system:masters) talking through the OpenShift emulation."""
    return Kube(control_plane.url, control_plane.admin_token, control_plane.ca_file)


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> str:
    # Readable in `kubectl get ns` when a test fails: test name plus a random suffix.
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{secrets.token_hex(3)}"
    create_namespace(kube, name)
    # Never deleted: with no controller-manager a namespace would stay Terminating
    # forever, and the whole control plane is thrown away at the end of the session.
    return name


@pytest.fixture
def run_operator(
    control_plane: cluster.ControlPlane, kube: Kube, namespace: str
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
