"""Every test in this folder runs on the control plane where workloads roll out.

``control_plane`` is overridden, and so is every session fixture built on it
(``kube``): pytest keeps one value per session fixture, so without its own ``kube`` this
folder would get the client of whichever plane asked first. Function fixtures
(``namespace``) follow the override by themselves.
"""

from __future__ import annotations

import pytest

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube


@pytest.fixture(scope="session")
def control_plane(workloads_control_plane: ControlPlane) -> ControlPlane:
    return workloads_control_plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    """An admin client (system:masters) through the OpenShift emulation of this plane."""
    return Kube(control_plane.url, control_plane.admin_token, control_plane.ca_file)
