"""spec.rollout on the real API server: a rollout that never becomes healthy is reverted.

This control plane runs no controller manager, so a Deployment's rollout never progresses:
its status never observes the written generation, which is exactly a rollout that fails.
Nothing stands in for a controller here; the healthy path needs rollouts that progress and
is proven where the control plane has them.
"""

from __future__ import annotations

import json
from typing import Any

from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
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

RETRY = "imagestream-trigger.dev/retry-image"
LAST_APPLIED = "imagestream-trigger.dev/last-applied"
TIMEOUT_S = 10  # the shortest spec.rollout.timeout


def record_of(deployment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(deployment["metadata"]["annotations"][LAST_APPLIED])
    return found


def test_a_rollout_that_never_gets_healthy_is_reverted_quarantined_and_retried(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    original = f"{REPO}:latest"
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": original, "proxy": "x:1"}))
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}],
            rollout={"timeout": f"{TIMEOUT_S}s"},
        ),
    )
    deployment = workload_path("Deployment", namespace, "web")
    bad = imported(kube, namespace)

    written = kube.wait_for(deployment, lambda d: images_of(d)["web"] == bad.reference)
    assert record_of(written)["web"]["previous"] == original
    # Nothing wakes the trigger after the write (no controller writes a status): its
    # deadline does, and the revert follows.
    reverted = kube.wait_for(
        deployment, lambda d: images_of(d)["web"] == original, timeout=TIMEOUT_S + 15
    )
    assert images_of(reverted)["proxy"] == "x:1"
    assert record_of(reverted)["web"]["reverted"]
    trigger = kube.wait_for(
        trigger_path(namespace),
        lambda t: ready(t).get("reason") == "RolloutFailed" and quarantined(t),
    )
    assert quarantined(trigger) == [bad.reference]
    assert trigger["status"]["quarantine"][0]["reason"] == "RolloutTimeout"
    assert bad.image in ready(trigger)["message"]  # the retry command names the digest
    (target,) = trigger["status"]["targets"]
    assert target["result"] == "Quarantined"
    assert target["rollout"] == "Reverted"
    wanted = {("Warning", "RolloutFailed"), ("Normal", "RolloutReverted")}
    kube.wait_for(  # Events are posted in the background
        path_for("v1", "events", namespace),
        lambda events: (
            wanted
            <= {
                (e["type"], e["reason"])
                for e in events["items"]
                if e["involvedObject"]["name"] == "web"
                and e["involvedObject"]["kind"] == "Deployment"
            }
        ),
    )
    metrics = operator.metrics()
    assert metrics['imagestream_trigger_rollouts_total{result="failed"}'] == 1
    assert metrics['imagestream_trigger_rollouts_total{result="reverted"}'] == 1
    # Held back: not written again.
    assert images_of(kube.get(deployment))["web"] == original

    # A person retries it: written again, the annotation used up, the quarantine lifted.
    kube.patch(trigger_path(namespace), {"metadata": {"annotations": {RETRY: bad.image}}}, "merge")
    kube.wait_for(deployment, lambda d: images_of(d)["web"] == bad.reference)
    trigger = kube.wait_for(
        trigger_path(namespace),
        lambda t: RETRY not in (t["metadata"].get("annotations") or {}) and not quarantined(t),
    )
    # It still never gets healthy: reverted again once its new deadline passes.
    kube.wait_for(deployment, lambda d: images_of(d)["web"] == original, timeout=TIMEOUT_S + 15)

    # Another image of the tag is applied as usual.
    good = imported(kube, namespace)
    kube.wait_for(deployment, lambda d: images_of(d)["web"] == good.reference)
