"""approval: Manual where rollouts really happen: nothing is written until a person
approves the image; an approved image is still gated (a never-ready one is reverted and
quarantined); a newer image waits for its own approval."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.kube import Kube
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
    trigger_path,
    workload,
    workload_path,
)
from tests.rollouts.test_gate_on_real_rollouts import (
    PROGRESS_DEADLINE_S,
    SLACK_S,
    rollout_of,
    scaled,
)

pytestmark = pytest.mark.controlplane


def pending_image(trigger: dict[str, Any]) -> str:
    return str((trigger.get("status", {}).get("pending") or {}).get("image") or "")


def approve(kube: Kube, namespace: str, digest: str) -> None:
    # What `kubectl imagetrigger approve` writes (tests/e2e/test_timing_approval.py runs it).
    kube.patch(trigger_path(namespace), {"spec": {"approvedImage": digest}}, "merge")


def test_an_approved_image_is_still_gated_and_the_next_one_waits_for_its_own_approval(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    good = imported(kube, namespace)
    create(
        kube,
        namespace,
        scaled(
            workload("Deployment", "web", {"web": good.reference}),
            2,
            progressDeadlineSeconds=PROGRESS_DEADLINE_S,
        ),
    )
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}],
            rollout={"approval": "Manual"},
        ),
    )
    path = workload_path("Deployment", namespace, "web")
    kube.wait_for(path, lambda d: d["status"].get("availableReplicas") == 2, timeout=60)

    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("approved-bad"))
    held = kube.wait_for(trigger_path(namespace), lambda t: pending_image(t) == bad.reference)
    assert held["status"]["conditions"][0]["reason"] == "PendingApproval"
    assert images_of(kube.get(path))["web"] == good.reference  # nothing written unapproved

    # Approved, written, and its rollout fails: approval does not switch the gate off.
    approve(kube, namespace, bad.image)
    kube.wait_for(path, lambda d: images_of(d)["web"] == bad.reference)
    kube.wait_for(
        path,
        lambda d: images_of(d)["web"] == good.reference,
        timeout=PROGRESS_DEADLINE_S + SLACK_S,
    )
    trigger = kube.wait_for(trigger_path(namespace), lambda t: quarantined(t) == [bad.reference])
    assert rollout_of(trigger, "web") == "Reverted"
    assert pending_image(trigger) == ""

    # A newer image waits for its own approval (the earlier one does not carry over).
    fixed = imported(kube, namespace)
    kube.wait_for(trigger_path(namespace), lambda t: pending_image(t) == fixed.reference)
    assert images_of(kube.get(path))["web"] == good.reference
    approve(kube, namespace, fixed.image)
    kube.wait_for(path, lambda d: images_of(d)["web"] == fixed.reference)
    done = kube.wait_for(
        trigger_path(namespace), lambda t: rollout_of(t, "web") == "Healthy", timeout=60
    )
    assert pending_image(done) == ""
