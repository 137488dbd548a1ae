"""Proof that workloads really roll out on the control plane with controllers and fake nodes.

The upstream deployment, replicaset, statefulset, daemonset and garbage-collector
controllers act; kube-scheduler binds pods to kwok's nodes; kwok makes them Running and
Ready, except for an image whose digest begins with ``NEVER_READY_DIGEST_PREFIX``.
Everything is read back from the API, polling with a timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.controlplane.kube import ApiError, Kube, path_for
from tests.controlplane.openshift import digest_for
from tests.controlplane.workloads import FAKE_NODES, never_ready_digest

pytestmark = pytest.mark.controlplane

T = TypeVar("T")

REPOSITORY = "registry.example/team/app"
GOOD_V1 = f"{REPOSITORY}@{digest_for('rollouts-good-v1')}"
GOOD_V2 = f"{REPOSITORY}@{digest_for('rollouts-good-v2')}"
NEVER_READY = f"{REPOSITORY}@{never_ready_digest('rollouts-bad')}"
PROGRESS_DEADLINE_S = 10
# Generous: a loaded 2-core machine; nothing here measures speed.
TIMEOUT_S = 90.0


def eventually(probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT_S) -> T:
    """Call ``probe`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.2)


def pod_template(name: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, image),
        },
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            found: dict[str, Any] = item
            return found
    return {}


def rolled_out(dep: dict[str, Any]) -> bool:
    """What `kubectl rollout status` waits for, and Available=True."""
    status = dep.get("status") or {}
    wanted = dep["spec"]["replicas"]
    return (
        status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
        and status.get("updatedReplicas") == wanted
        and status.get("availableReplicas") == wanted
        and status.get("replicas") == wanted
        and condition(dep, "Available").get("status") == "True"
    )


def items(kube: Kube, plural: str, namespace: str, selector: str) -> list[dict[str, Any]]:
    api_version = "v1" if plural == "pods" else "apps/v1"
    found: list[dict[str, Any]] = kube.get(
        path_for(api_version, plural, namespace), labelSelector=selector
    )["items"]
    return found


def pod_ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def image_of(obj: dict[str, Any]) -> str:
    image: str = obj["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def create_rolled_out(kube: Kube, namespace: str, name: str, image: str) -> dict[str, Any]:
    path = path_for("apps/v1", "deployments", namespace, name)
    kube.create(path_for("apps/v1", "deployments", namespace), deployment(name, image))
    rolled: dict[str, Any] = kube.wait_for(path, rolled_out, timeout=TIMEOUT_S, interval=0.2)
    return rolled


def set_image(kube: Kube, namespace: str, name: str, image: str) -> None:
    kube.patch(
        path_for("apps/v1", "deployments", namespace, name),
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
    )


def test_a_deployment_rolls_out_and_then_to_a_new_image(kube: Kube, namespace: str) -> None:
    dep = create_rolled_out(kube, namespace, "web", GOOD_V1)

    assert condition(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    (first,) = items(kube, "replicasets", namespace, "app=web")
    assert image_of(first) == GOOD_V1
    pods = items(kube, "pods", namespace, "app=web")
    assert len(pods) == 2
    assert all(pod_ready(p) and p["status"]["phase"] == "Running" for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} <= set(FAKE_NODES)

    set_image(kube, namespace, "web", GOOD_V2)
    path = path_for("apps/v1", "deployments", namespace, "web")
    dep = kube.wait_for(path, rolled_out, timeout=TIMEOUT_S, interval=0.2)

    assert condition(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    by_image = {image_of(rs): rs for rs in items(kube, "replicasets", namespace, "app=web")}
    assert set(by_image) == {GOOD_V1, GOOD_V2}
    assert by_image[GOOD_V2]["status"].get("readyReplicas") == 2
    assert by_image[GOOD_V1]["spec"]["replicas"] == 0

    def only_new_pods() -> list[dict[str, Any]] | None:
        # The old pods go once deleted: kwok stands in for the kubelet that confirms it.
        pods = items(kube, "pods", namespace, "app=web")
        images = [p["spec"]["containers"][0]["image"] for p in pods]
        return pods if images == [GOOD_V2, GOOD_V2] else None

    pods = eventually(only_new_pods, "only the two new pods are left")
    assert all(pod_ready(p) for p in pods)


def test_a_never_ready_image_exceeds_the_progress_deadline(kube: Kube, namespace: str) -> None:
    create_rolled_out(kube, namespace, "api", GOOD_V1)

    set_image(kube, namespace, "api", NEVER_READY)
    path = path_for("apps/v1", "deployments", namespace, "api")
    dep = kube.wait_for(
        path,
        lambda d: condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded",
        timeout=PROGRESS_DEADLINE_S + TIMEOUT_S,
        interval=0.2,
    )

    assert condition(dep, "Progressing")["status"] == "False"
    # maxUnavailable 25% of 2 is 0: the old pods keep serving, one surge pod hangs.
    assert dep["status"]["availableReplicas"] == 2
    assert dep["status"]["updatedReplicas"] == 1
    assert condition(dep, "Available")["status"] == "True"
    new_pods = [
        p
        for p in items(kube, "pods", namespace, "app=api")
        if p["spec"]["containers"][0]["image"] == NEVER_READY
    ]
    assert len(new_pods) == 1
    (pod,) = new_pods
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready")["status"] == "False"
    assert pod["status"]["containerStatuses"][0]["ready"] is False


def test_a_statefulset_becomes_ready(kube: Kube, namespace: str) -> None:
    kube.create(
        path_for("apps/v1", "statefulsets", namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": pod_template("db", GOOD_V1),
            },
        },
    )

    sts = kube.wait_for(
        path_for("apps/v1", "statefulsets", namespace, "db"),
        lambda s: (
            (s.get("status") or {}).get("availableReplicas") == 2
            and s["status"].get("updatedReplicas") == 2
            and s["status"].get("currentRevision") == s["status"].get("updateRevision")
        ),
        timeout=TIMEOUT_S,
        interval=0.2,
    )

    assert sts["status"]["readyReplicas"] == 2
    pods = items(kube, "pods", namespace, "app=db")
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]
    assert all(pod_ready(p) for p in pods)


def test_a_daemonset_runs_one_ready_pod_on_each_fake_node(kube: Kube, namespace: str) -> None:
    kube.create(
        path_for("apps/v1", "daemonsets", namespace),
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": pod_template("agent", GOOD_V1),
            },
        },
    )

    nodes = len(FAKE_NODES)
    ds = kube.wait_for(
        path_for("apps/v1", "daemonsets", namespace, "agent"),
        lambda d: (
            (d.get("status") or {}).get("numberAvailable") == nodes
            and d["status"].get("updatedNumberScheduled") == nodes
        ),
        timeout=TIMEOUT_S,
        interval=0.2,
    )

    assert ds["status"]["desiredNumberScheduled"] == nodes
    assert ds["status"]["numberReady"] == nodes
    pods = items(kube, "pods", namespace, "app=agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(FAKE_NODES)
    assert all(pod_ready(p) for p in pods)


def test_deleting_a_deployment_collects_its_replicasets_and_pods(
    kube: Kube, namespace: str
) -> None:
    create_rolled_out(kube, namespace, "gone", GOOD_V1)
    (rs,) = items(kube, "replicasets", namespace, "app=gone")
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert len(items(kube, "pods", namespace, "app=gone")) == 2

    kube.delete(path_for("apps/v1", "deployments", namespace, "gone"))

    eventually(
        lambda: (
            not items(kube, "replicasets", namespace, "app=gone")
            and not items(kube, "pods", namespace, "app=gone")
        ),
        "the garbage collector deletes the ReplicaSet and its pods",
    )
    with pytest.raises(ApiError) as gone:
        kube.get(path_for("apps/v1", "deployments", namespace, "gone"))
    assert gone.value.status == 404


def test_the_workload_processes_die_with_a_crashed_parent(tmp_path: Path) -> None:
    """SIGKILL the process that started a plane with workloads: all six processes go too."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from tests.controlplane.cluster import ControlPlane
        plane = ControlPlane(workdir={str(tmp_path)!r}, workloads=True).start()
        print(" ".join(f"{{p.name}}={{p.popen.pid}}" for p in plane.processes), flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    started = dict(item.split("=") for item in parent.stdout.readline().split())
    assert set(started) >= {"kube-controller-manager", "kube-scheduler", "kwok"}, started
    pids = [int(pid) for pid in started.values()]

    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    eventually(
        lambda: not [pid for pid in pids if _running(pid)],
        f"every child of the killed parent is gone: {started}",
        timeout=15,
    )


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
