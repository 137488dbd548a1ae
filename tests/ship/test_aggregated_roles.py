"""The aggregated ClusterRoles (manifests/rbac/aggregate_roles.yaml): a namespace's editors
manage ImageTriggers there, its viewers read them, through the built-in edit and view roles.

Requests are real: kubectl as the admin, impersonating each user, against the real RBAC
authorizer and the built-in admin, edit and view roles the kube-apiserver bootstraps.
One step is done here instead of by a controller: this control plane runs no
kube-controller-manager, whose clusterrole-aggregation controller copies into each
aggregated role the rules of every ClusterRole its aggregationRule selects. ``aggregate``
does the same from the server's own selectors, so a wrong label aggregates nothing and
fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, load_yaml, path_for
from tests.ship.conftest import MANIFESTS

RBAC = "rbac.authorization.k8s.io/v1"
SAMPLE = MANIFESTS / "samples" / "imagetrigger.yaml"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert not selector.get("matchExpressions"), "the built-in roles select by matchLabels"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def aggregate(kube: Kube, name: str) -> list[dict[str, Any]]:
    """What the clusterrole-aggregation controller does for ClusterRole ``name``."""
    path = path_for(RBAC, "clusterroles", name=name)
    selectors = kube.get(path)["aggregationRule"]["clusterRoleSelectors"]
    rules: list[dict[str, Any]] = []
    for role in sorted(
        kube.get(path_for(RBAC, "clusterroles"))["items"], key=lambda r: r["metadata"]["name"]
    ):
        labels = role["metadata"].get("labels") or {}
        if role["metadata"]["name"] != name and any(_selects(s, labels) for s in selectors):
            rules += [r for r in role.get("rules") or [] if r not in rules]
    kube.patch(path, {"rules": rules}, "merge")
    return rules


@pytest.fixture(scope="module")
def aggregated(control_plane: ControlPlane, kube: Kube) -> None:
    for role in load_yaml([MANIFESTS / "rbac" / "aggregate_roles.yaml"]):
        kube.apply(role)
    # view feeds edit, edit feeds admin (the built-in roles' own labels): in that order.
    for name in ("view", "edit", "admin"):
        aggregate(kube, name)


def bind(kube: Kube, namespace: str, user: str, cluster_role: str) -> None:
    kube.create(
        path_for(RBAC, "rolebindings", namespace),
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{cluster_role}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


def can_i(
    plane: ControlPlane, user: str, namespace: str, verb: str, resource: str, subresource: str = ""
) -> bool:
    args = ["auth", "can-i", verb, resource, "-n", namespace, f"--as={user}"]
    result = plane.kubectl(*args, *([f"--subresource={subresource}"] if subresource else []))
    assert result.stdout.strip() in ("yes", "no"), result.stdout + result.stderr
    return result.stdout.strip() == "yes"


def eventually(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    # The RBAC authorizer reads roles and bindings from an informer: a grant applies a
    # moment later.
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


TRIGGERS = "imagetriggers.imagestream-trigger.dev"


def test_edit_creates_imagetriggers_and_view_only_reads_them(
    control_plane: ControlPlane, kube: Kube, namespace: str, aggregated: None
) -> None:
    bind(kube, namespace, "alice", "edit")
    bind(kube, namespace, "bob", "view")
    eventually(lambda: can_i(control_plane, "alice", namespace, "create", TRIGGERS), "alice")
    eventually(lambda: can_i(control_plane, "bob", namespace, "list", TRIGGERS), "bob")

    created = control_plane.kubectl("create", "-f", str(SAMPLE), "-n", namespace, "--as=alice")
    assert created.returncode == 0, created.stderr
    assert "imagetrigger.imagestream-trigger.dev/app created" in created.stdout

    listed = control_plane.kubectl("get", TRIGGERS, "-n", namespace, "--as=bob", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["imagetrigger.imagestream-trigger.dev/app"]

    refused = control_plane.kubectl(
        "create", "-f", str(SAMPLE), "-n", namespace, "--as=bob", "--dry-run=server"
    )
    assert refused.returncode != 0
    assert 'User "bob" cannot create resource "imagetriggers"' in refused.stderr, refused.stderr

    for verb in ("update", "patch", "delete", "get", "watch"):
        assert can_i(control_plane, "alice", namespace, verb, TRIGGERS), verb
    for verb in ("create", "update", "patch", "delete"):
        assert not can_i(control_plane, "bob", namespace, verb, TRIGGERS), verb
    # The status records which builds were requested: the operator's alone.
    assert not can_i(control_plane, "alice", namespace, "patch", TRIGGERS, "status")
    assert can_i(control_plane, "alice", namespace, "patch", TRIGGERS)


def test_admin_manages_imagetriggers_and_nothing_reaches_other_namespaces(
    control_plane: ControlPlane, kube: Kube, namespace: str, aggregated: None
) -> None:
    bind(kube, namespace, "carol", "admin")
    eventually(lambda: can_i(control_plane, "carol", namespace, "delete", TRIGGERS), "carol")
    assert can_i(control_plane, "carol", namespace, "create", TRIGGERS)
    assert not can_i(control_plane, "carol", "default", "list", TRIGGERS)
