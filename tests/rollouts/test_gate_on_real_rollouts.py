"""spec.rollout where rollouts really happen: a healthy image is proven healthy, a bad one
is reverted and quarantined by the deadline the workload or the trigger sets.

Pods of an image whose digest begins with ``NEVER_READY_DIGEST_PREFIX`` never become
Ready (kwok's stages, tests/controlplane/kwok-stages.yaml): the deployment controller then
reports ProgressDeadlineExceeded, and a StatefulSet simply never gets ready.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.controlplane.simulate import import_image
from tests.controlplane.workloads import never_ready_digest
from tests.e2e.objects import (
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    quarantined,
    ready,
    trigger_path,
    workload,
    workload_path,
)

pytestmark = pytest.mark.controlplane

PROGRESS_DEADLINE_S = 10
# The deadline plus this is the bound the issue sets for a revert: the operator must
# notice a failed rollout and write the revert within 5 s of the deadline.
SLACK_S = 5


def rollout_of(trigger: dict[str, Any], name: str) -> str:
    for target in trigger.get("status", {}).get("targets") or []:
        if target.get("name") == name:
            return str(target.get("rollout") or "")
    return ""


def reasons(kube: Kube, namespace: str, kind: str, name: str) -> set[tuple[str, str]]:
    events = kube.get(path_for("v1", "events", namespace))
    return {
        (e["type"], e["reason"])
        for e in events["items"]
        if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == kind
    }


def scaled(obj: dict[str, Any], replicas: int, **spec: Any) -> dict[str, Any]:
    obj["spec"] |= {"replicas": replicas, **spec}
    return obj


def test_a_deployment_is_proven_healthy_then_a_bad_image_is_reverted_by_its_deadline(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    good = imported(kube, namespace)
    deployment = scaled(
        workload("Deployment", "web", {"web": good.reference}),
        2,
        progressDeadlineSeconds=PROGRESS_DEADLINE_S,
    )
    create(kube, namespace, deployment)
    rollout = {"timeout": "5m"}  # the Deployment's own deadline decides first
    create(
        kube,
        namespace,
        image_trigger(
            "follow", "app:latest", [{"kind": "Deployment", "name": "web"}], rollout=rollout
        ),
    )
    path = workload_path("Deployment", namespace, "web")

    # A good image: written, rolled out by the controllers, and judged healthy.
    better = imported(kube, namespace)
    kube.wait_for(path, lambda d: images_of(d)["web"] == better.reference)
    kube.wait_for(trigger_path(namespace), lambda t: rollout_of(t, "web") == "Healthy", timeout=60)
    deployed = kube.get(path)
    assert deployed["status"].get("updatedReplicas") == 2
    assert deployed["status"].get("availableReplicas") == 2

    # A bad one: its pods never get Ready, the Deployment's deadline passes, and the
    # operator sets back the image it wrote, within the deadline and a few seconds.
    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("web-bad"))
    kube.wait_for(path, lambda d: images_of(d)["web"] == bad.reference)
    reverted = kube.wait_for(
        path,
        lambda d: images_of(d)["web"] == better.reference,
        timeout=PROGRESS_DEADLINE_S + SLACK_S,
    )
    conditions = {c["type"]: c for c in reverted["status"].get("conditions") or []}
    assert conditions["Progressing"]["reason"] in {
        "ProgressDeadlineExceeded",  # as the operator saw it
        "ReplicaSetUpdated",  # already rolling back to the good image
        "NewReplicaSetAvailable",
    }
    trigger = kube.wait_for(
        trigger_path(namespace),
        lambda t: quarantined(t) == [bad.reference] and ready(t).get("reason") == "RolloutFailed",
    )
    assert rollout_of(trigger, "web") == "Reverted"
    # The revert rolls out too: the Deployment is whole again on the good image.
    kube.wait_for(
        path,
        lambda d: (
            d["status"].get("updatedReplicas") == 2
            and d["status"].get("availableReplicas") == 2
            and d["status"].get("replicas") == 2
        ),
        timeout=60,
    )
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: (
            {
                ("Normal", "RolloutSucceeded"),
                ("Warning", "RolloutFailed"),
                ("Normal", "RolloutReverted"),
            }
            <= reasons(kube, namespace, "Deployment", "web")
        ),
    )
    metrics = operator.metrics()
    assert metrics['imagestream_trigger_rollouts_total{result="reverted"}'] == 1

    # The next good image is applied as usual, and proven healthy.
    fixed = imported(kube, namespace)
    kube.wait_for(path, lambda d: images_of(d)["web"] == fixed.reference)
    kube.wait_for(trigger_path(namespace), lambda t: rollout_of(t, "web") == "Healthy", timeout=60)


def test_a_statefulset_that_never_gets_ready_is_reverted_by_the_triggers_timeout(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    good = imported(kube, namespace)
    create(kube, namespace, scaled(workload("StatefulSet", "db", {"db": good.reference}), 1))
    timeout_s = 10  # the shortest spec.rollout.timeout
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "StatefulSet", "name": "db"}],
            rollout={"timeout": f"{timeout_s}s"},
        ),
    )
    path = workload_path("StatefulSet", namespace, "db")
    kube.wait_for(path, lambda s: s["status"].get("readyReplicas") == 1, timeout=60)

    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("db-bad"))
    kube.wait_for(path, lambda s: images_of(s)["db"] == bad.reference)
    kube.wait_for(path, lambda s: images_of(s)["db"] == good.reference, timeout=timeout_s + SLACK_S)
    trigger = kube.wait_for(trigger_path(namespace), lambda t: quarantined(t) == [bad.reference])
    assert rollout_of(trigger, "db") == "Reverted"


def test_a_daemonset_that_never_gets_ready_is_reverted_by_the_triggers_timeout(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    # One pod per fake node; the rolling update stops at the first pod that never gets
    # ready, and the trigger's timeout decides.
    image_stream(kube, namespace)
    good = imported(kube, namespace)
    create(kube, namespace, workload("DaemonSet", "agent", {"agent": good.reference}))
    timeout_s = 10
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "DaemonSet", "name": "agent"}],
            rollout={"timeout": f"{timeout_s}s"},
        ),
    )
    path = workload_path("DaemonSet", namespace, "agent")
    kube.wait_for(
        path,
        lambda d: (
            d["status"].get("numberReady", 0) >= 1
            and d["status"].get("numberReady") == d["status"].get("desiredNumberScheduled")
        ),
        timeout=60,
    )

    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("agent-bad"))
    kube.wait_for(path, lambda d: images_of(d)["agent"] == bad.reference)
    kube.wait_for(
        path, lambda d: images_of(d)["agent"] == good.reference, timeout=timeout_s + SLACK_S
    )
    trigger = kube.wait_for(trigger_path(namespace), lambda t: quarantined(t) == [bad.reference])
    assert rollout_of(trigger, "agent") == "Reverted"
    # Events are posted in the background, just after the status that shows them.
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: (
            {("Warning", "RolloutFailed"), ("Normal", "RolloutReverted")}
            <= reasons(kube, namespace, "DaemonSet", "agent")
        ),
    )
    # The revert rolls out: every node runs the good image and is ready again.
    kube.wait_for(
        path,
        lambda d: (
            d["status"].get("updatedNumberScheduled")
            == d["status"].get("numberReady")
            == d["status"].get("desiredNumberScheduled")
        ),
        timeout=60,
    )
