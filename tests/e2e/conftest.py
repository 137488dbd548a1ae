"""Fixtures for tests of the operator on the shared control plane (``run_operator`` and
``operator`` are in tests/conftest.py, for tests/rollouts too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.controlplane.builtin_triggers import BuiltinTriggers
from tests.controlplane.cluster import ControlPlane


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
