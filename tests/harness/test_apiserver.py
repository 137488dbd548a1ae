"""The control plane is a real kube-apiserver: these behaviours would be absent from a mock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import (
    ApiError,
    Kube,
    eventually_allowed,
    path_for,
    service_account_token,
    wait_established,
)

# One test starts a control plane of its own (not the fixture): keep it out of `make unit`.
pytestmark = pytest.mark.controlplane


def deployment(name: str, containers: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": n, "image": image} for n, image in containers.items()]
                },
            },
        },
    }


def images(obj: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}


def test_strategic_merge_patch_changes_one_container_and_keeps_the_other(
    kube: Kube, namespace: str
) -> None:
    kube.create(
        path_for("apps/v1", "deployments", namespace),
        deployment("web", {"web": "quay.io/acme/web:1", "proxy": "quay.io/acme/proxy:1"}),
    )
    body = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "web", "image": "quay.io/acme/web:2"}]}}
        }
    }

    patched = kube.patch(path_for("apps/v1", "deployments", namespace, "web"), body, "strategic")

    assert images(patched) == {"web": "quay.io/acme/web:2", "proxy": "quay.io/acme/proxy:1"}
    # The same body as a JSON merge patch replaces the whole list: the server
    # really distinguishes the two content types.
    merged = kube.patch(path_for("apps/v1", "deployments", namespace, "web"), body, "merge")
    assert images(merged) == {"web": "quay.io/acme/web:2"}


def test_update_with_stale_resource_version_conflicts(kube: Kube, namespace: str) -> None:
    path = path_for("v1", "configmaps", namespace, "settings")
    kube.create(
        path_for("v1", "configmaps", namespace),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"a": "1"},
        },
    )
    stale = kube.get(path)
    fresh = dict(stale, data={"a": "2"})
    kube.replace(path, fresh)

    with pytest.raises(ApiError) as refused:
        kube.replace(path, dict(stale, data={"a": "3"}))

    assert refused.value.status == 409
    assert refused.value.reason == "Conflict"
    assert kube.get(path)["data"] == {"a": "2"}


def test_crd_schema_violation_is_rejected_with_422(kube: Kube, namespace: str) -> None:
    stream = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": "app"},
        "spec": {"tags": [{"name": "latest", "referencePolicy": {"type": "Nowhere"}}]},
    }
    with pytest.raises(ApiError) as refused:
        kube.create(path_for("image.openshift.io/v1", "imagestreams", namespace), stream)

    assert refused.value.status == 422
    assert "Nowhere" in refused.value.body["message"]


def test_crd_cel_rule_is_enforced(kube: Kube, namespace: str) -> None:
    crd_name = "ranges.harness.imagestream-trigger.dev"
    if not kube.exists(
        path_for("apiextensions.k8s.io/v1", "customresourcedefinitions", name=crd_name)
    ):
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {
                "group": "harness.imagestream-trigger.dev",
                "names": {"kind": "Range", "plural": "ranges", "singular": "range"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {
                                            "min": {"type": "integer"},
                                            "max": {"type": "integer"},
                                        },
                                        "x-kubernetes-validations": [
                                            {
                                                "rule": "self.min <= self.max",
                                                "message": "min must not exceed max",
                                            }
                                        ],
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
        kube.apply(crd)
        wait_established(kube, [crd_name])
    path = path_for("harness.imagestream-trigger.dev/v1", "ranges", namespace)
    kube.create(
        path,
        {
            "apiVersion": "harness.imagestream-trigger.dev/v1",
            "kind": "Range",
            "metadata": {"name": "ok"},
            "spec": {"min": 1, "max": 2},
        },
    )

    with pytest.raises(ApiError) as refused:
        kube.create(
            path,
            {
                "apiVersion": "harness.imagestream-trigger.dev/v1",
                "kind": "Range",
                "metadata": {"name": "bad"},
                "spec": {"min": 3, "max": 2},
            },
        )

    assert refused.value.status == 422
    assert "min must not exceed max" in refused.value.body["message"]


def test_service_account_without_a_rule_is_forbidden(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    token = service_account_token(kube, namespace, "nobody")
    as_sa = Kube(control_plane.url, token, control_plane.ca_file)

    with pytest.raises(ApiError) as refused:
        as_sa.get(path_for("apps/v1", "deployments", namespace))
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in refused.value.body["message"]

    # With a rule the same token works: the 403 was RBAC, not a broken token.
    kube.create(
        path_for("rbac.authorization.k8s.io/v1", "roles", namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}],
        },
    )
    kube.create(
        path_for("rbac.authorization.k8s.io/v1", "rolebindings", namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )
    listed = eventually_allowed(lambda: as_sa.get(path_for("apps/v1", "deployments", namespace)))
    assert listed["kind"] == "DeploymentList"


def test_watch_resumed_from_a_resource_version_sees_later_events(
    kube: Kube, namespace: str
) -> None:
    path = path_for("v1", "configmaps", namespace, "cm")
    created = kube.create(
        path_for("v1", "configmaps", namespace),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"n": "0"}},
    )
    for n in (1, 2):
        kube.patch(path, {"data": {"n": str(n)}}, "merge")

    seen = []
    for event in kube.watch(
        path_for("v1", "configmaps", namespace),
        resource_version=created["metadata"]["resourceVersion"],
        timeout=5,
    ):
        seen.append((event["type"], event["object"]["data"]["n"]))
        if len(seen) == 2:
            break

    assert seen == [("MODIFIED", "1"), ("MODIFIED", "2")]


def test_kubectl_lists_imagestreams_across_namespaces(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    kube.create(
        path_for("image.openshift.io/v1", "imagestreams", namespace),
        {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "app"}},
    )

    result = control_plane.kubectl("get", "imagestreams", "-A")

    assert result.returncode == 0, result.stderr
    assert namespace in result.stdout
    assert "app" in result.stdout


def test_children_die_with_a_crashed_parent(tmp_path: Any) -> None:
    """SIGKILL the process that started a control plane: etcd and kube-apiserver go too."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(os.getcwd())!r})
        from tests.controlplane.cluster import ControlPlane
        plane = ControlPlane(workdir={str(tmp_path)!r}).start()
        print(" ".join(str(p.popen.pid) for p in plane.processes), flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 3, "etcd, kube-apiserver and the emulation proxy should be running"

    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    deadline = time.monotonic() + 15
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in pids if _running(pid)]
        time.sleep(0.1)
    assert alive == []


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
