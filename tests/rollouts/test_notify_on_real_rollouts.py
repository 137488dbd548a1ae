"""spec.rollout.notify where rollouts really happen: a good image is told as Applied, a bad
one as Applied and then, once the Deployment's deadline passes and the operator sets it
back, as Reverted; each once, at a local HTTP receiver (the operator runs as a local
process, so 127.0.0.1 reaches it)."""

from __future__ import annotations

import time

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
    trigger_path,
    workload,
    workload_path,
)
from tests.e2e.test_notify_receivers import HttpReceiver, http_receiver, secret  # noqa: F401

pytestmark = pytest.mark.controlplane

PROGRESS_DEADLINE_S = 10


def test_a_bad_image_is_told_applied_then_reverted_and_a_good_one_applied(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    http_receiver: HttpReceiver,  # noqa: F811
) -> None:
    url = http_receiver.url
    kube.create(
        path_for("v1", "secrets", namespace), secret("hooks", log=f"{url}/log", ce=f"{url}/ce")
    )
    image_stream(kube, namespace)
    good = imported(kube, namespace)
    deployment = workload("Deployment", "web", {"web": good.reference})
    deployment["spec"] |= {"replicas": 1, "progressDeadlineSeconds": PROGRESS_DEADLINE_S}
    create(kube, namespace, deployment)
    notify = [
        {"name": "log", "type": "JSON", "secretRef": {"name": "hooks", "key": "log"}},
        {
            "name": "ce",
            "type": "CloudEvents",
            "secretRef": {"name": "hooks", "key": "ce"},
            "events": ["Reverted"],
        },
    ]
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}],
            rollout={"timeout": "5m", "notify": notify},
        ),
    )
    path = workload_path("Deployment", namespace, "web")

    better = imported(kube, namespace)
    kube.wait_for(path, lambda d: images_of(d)["web"] == better.reference)
    http_receiver.wait(lambda: len(http_receiver.at("/log")) == 1, 20, "Applied of the good image")
    # Proven healthy, so that it is what a revert goes back to.
    kube.wait_for(
        trigger_path(namespace),
        lambda t: (
            [x.get("rollout") for x in t.get("status", {}).get("targets") or []] == ["Healthy"]
        ),
        timeout=60,
    )

    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("notify-bad"))
    kube.wait_for(path, lambda d: images_of(d)["web"] == bad.reference)
    kube.wait_for(
        path, lambda d: images_of(d)["web"] == better.reference, timeout=PROGRESS_DEADLINE_S + 15
    )
    http_receiver.wait(
        lambda: len(http_receiver.at("/log")) == 3 and len(http_receiver.at("/ce")) == 1,
        20,
        "Applied and Reverted of the bad image",
    )
    # The revert rolls out too, healthy: nothing more to tell.
    kube.wait_for(path, lambda d: d["status"].get("availableReplicas") == 1, timeout=60)
    time.sleep(2)
    told = [(r.body["event"], r.body["image"]) for r in http_receiver.at("/log")]
    assert told == [
        ("Applied", better.reference),
        ("Applied", bad.reference),
        ("Reverted", bad.reference),
    ]
    reverted = http_receiver.at("/log")[-1].body
    assert reverted["message"] == (
        f"reverted web to {better.reference}: the rollout of {bad.reference} failed "
        "(ProgressDeadlineExceeded)"
    )
    (cloudevent,) = http_receiver.at("/ce")
    assert cloudevent.headers["ce-type"] == "dev.imagestream-trigger.rollout.reverted"
    assert cloudevent.headers["ce-subject"] == bad.reference
    assert cloudevent.body["event"] == "Reverted"
