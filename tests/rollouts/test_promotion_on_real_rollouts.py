"""spec.rollout.promoteTo where rollouts really happen: an image that ran healthy is tagged
into the known-good tag (as ``oc tag`` does, resolved by the emulated openshift-apiserver),
a second ImageTrigger following that tag gets it, and a never-ready image is reverted and
never promoted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.controlplane.simulate import head, import_image
from tests.controlplane.workloads import never_ready_digest
from tests.e2e.objects import (
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    quarantined,
    trigger_path,
    workload,
    workload_path,
)

pytestmark = pytest.mark.controlplane

PROGRESS_DEADLINE_S = 10
IMAGE = "image.openshift.io/v1"


def stable_image(kube: Kube, namespace: str) -> str:
    item = head(kube.get(path_for(IMAGE, "imagestreams", namespace, "app")), "stable")
    return str(item["image"]) if item else ""


def promoted(trigger: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = trigger.get("status", {}).get("promoted") or {}
    return found


def test_a_healthy_image_is_promoted_and_followed_and_a_never_ready_one_is_not(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    first = imported(kube, namespace)
    web = workload("Deployment", "web", {"web": first.reference})
    web["spec"] |= {"replicas": 2, "progressDeadlineSeconds": PROGRESS_DEADLINE_S}
    create(kube, namespace, web)
    create(kube, namespace, workload("Deployment", "api", {"api": first.reference}))
    rollout = {"timeout": "5m", "promoteTo": {"imageStreamTag": "app:stable"}}
    create(
        kube,
        namespace,
        image_trigger(
            "candidate", "app:latest", [{"kind": "Deployment", "name": "web"}], rollout=rollout
        ),
    )
    # The second trigger follows only what was proven: app:stable.
    create(
        kube,
        namespace,
        image_trigger("production", "app:stable", [{"kind": "Deployment", "name": "api"}]),
    )
    web_path = workload_path("Deployment", namespace, "web")
    api_path = workload_path("Deployment", namespace, "api")
    candidate = trigger_path(namespace, "candidate")

    # A good image rolls out on both replicas, is judged healthy, and then promoted.
    good = imported(kube, namespace)
    kube.wait_for(web_path, lambda d: images_of(d)["web"] == good.reference)
    trigger = kube.wait_for(
        candidate, lambda t: promoted(t).get("image") == good.reference, timeout=90
    )
    assert promoted(trigger)["to"] == f"{namespace}/app:stable"
    deployed = kube.get(web_path)
    assert deployed["status"].get("availableReplicas") == 2
    assert deployed["status"].get("updatedReplicas") == 2
    conditions = {c["type"]: c for c in trigger["status"]["conditions"]}
    assert conditions["Promoted"]["status"] == "True"
    assert stable_image(kube, namespace) == good.image
    stream = kube.get(path_for(IMAGE, "imagestreams", namespace, "app"))
    (spec_tag,) = [t for t in stream["spec"]["tags"] if t["name"] == "stable"]
    assert spec_tag["from"] == {
        "kind": "ImageStreamImage",
        "name": f"app@{good.image}",
        "namespace": namespace,
    }
    # The tag moved, so what follows it moves: the production trigger writes api.
    kube.wait_for(api_path, lambda d: images_of(d)["api"] == good.reference)
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: any(
            e["reason"] == "Promoted" and e["involvedObject"]["kind"] == "ImageTrigger"
            for e in events_for(kube, namespace, "candidate")
        ),
    )
    assert operator.metrics()['imagestream_trigger_promotions_total{result="promoted"}'] == 1

    # A never-ready image: reverted at the Deployment's deadline, quarantined, not promoted.
    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("promote-bad"))
    kube.wait_for(web_path, lambda d: images_of(d)["web"] == bad.reference)
    kube.wait_for(web_path, lambda d: images_of(d)["web"] == good.reference, timeout=60)
    trigger = kube.wait_for(candidate, lambda t: quarantined(t) == [bad.reference])
    assert promoted(trigger)["image"] == good.reference
    assert stable_image(kube, namespace) == good.image
    assert images_of(kube.get(api_path))["api"] == good.reference
    metrics = operator.metrics()
    assert metrics['imagestream_trigger_promotions_total{result="promoted"}'] == 1
    assert metrics['imagestream_trigger_rollouts_total{result="reverted"}'] == 1
