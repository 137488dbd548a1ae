"""Beside OpenShift's own trigger controller (emulated: tests/controlplane/builtin_triggers.py).

On crc and OpenShift both controllers see the image.openshift.io/triggers
annotation. Writing both (apply) must not flap; on a real OpenShift the default
(auto) must leave the annotation to OpenShift and only report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.controlplane.builtin_triggers import MANAGER, BuiltinTriggers
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    by_name,
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    trigger_annotation,
    workload,
    workload_path,
)

KINDS = ["Deployment", "StatefulSet", "DaemonSet", "CronJob"]
LAST_APPLIED = "imagestream-trigger.dev/last-applied"
QUIET_S = 30.0
OURS = "imagestream-trigger"  # our field manager: the User-Agent's product


def managers(obj: dict[str, Any]) -> set[str]:
    """Who has written the object (managedFields), the creator aside."""
    return {
        entry["manager"]
        for entry in obj["metadata"].get("managedFields", [])
        if entry.get("operation") != "Create" and entry.get("manager") != "Python-urllib"
    }


def follower(kind: str) -> dict[str, Any]:
    name = kind.lower()
    return workload(
        kind,
        name,
        {"web": f"{REPO}:latest"},
        annotation=trigger_annotation(by_name("web", kind=kind)),
    )


def test_both_controllers_writing_make_one_spec_change_per_move_and_then_stay_quiet(
    kube: Kube,
    namespace: str,
    builtin_triggers: BuiltinTriggers,
    run_operator: Callable[..., OperatorProcess],
) -> None:
    # The default mode on a cluster whose image API is a CRD (no OpenShift controller
    # assumed) is apply: both controllers write.
    operator = run_operator()
    assert "image.openshift.io/triggers annotations: apply (auto:" in operator.output()
    assert operator.metrics()['imagestream_trigger_native_annotations_mode{mode="apply"}'] == 1
    image_stream(kube, namespace)
    paths = [workload_path(kind, namespace, kind.lower()) for kind in KINDS]
    for kind in KINDS:
        create(kube, namespace, follower(kind))

    for _ in range(2):
        reference = imported(kube, namespace).reference
        for path in paths:
            kube.wait_for(path, lambda obj, r=reference: images_of(obj)["web"] == r)

    settled = {path: kube.get(path)["metadata"] for path in paths}
    time.sleep(QUIET_S)
    for path in paths:
        now = kube.get(path)["metadata"]
        # Created at generation 1, two moves: exactly one spec change each.
        assert now["generation"] == 3, (path, now["generation"])
        assert now["resourceVersion"] == settled[path]["resourceVersion"], path
    # Both really took part: each controller won some of the races, or at least both
    # were running and able to write (their writers are told apart by field manager).
    writers = set().union(*(managers(kube.get(p)) for p in paths))
    assert writers <= {OURS, MANAGER}, writers
    assert writers, "nobody wrote"


def test_auto_on_openshift_leaves_annotations_to_it_and_still_reports(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    builtin_triggers: BuiltinTriggers,
    run_operator: Callable[..., OperatorProcess],
) -> None:
    control_plane.set_faults(openshift_apiservers=True)
    operator = run_operator()
    assert "image.openshift.io/triggers annotations: observe (auto:" in operator.output()
    assert "openshift-apiserver/api" in operator.output()
    metrics = operator.metrics()
    assert metrics['imagestream_trigger_native_annotations_mode{mode="observe"}'] == 1
    assert metrics['imagestream_trigger_native_annotations_mode{mode="apply"}'] == 0

    image_stream(kube, namespace)
    create(kube, namespace, follower("Deployment"))
    # Mistakes both controllers skip; only we say so.
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "string-paused",
            {"web": f"{REPO}:latest"},
            annotation=trigger_annotation(by_name("web", paused="false")),
        ),
    )
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "console-pause",
            {"web": f"{REPO}:latest"},
            annotation=json.dumps([{**by_name("web"), "pause": "true"}]),
        ),
    )
    # ImageTrigger targets are ours in every mode.
    create(kube, namespace, workload("Deployment", "api", {"api": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "api"}]),
    )

    reference = imported(kube, namespace).reference
    web = kube.wait_for(
        workload_path("Deployment", namespace, "deployment"),
        lambda obj: images_of(obj)["web"] == reference,
    )
    api = kube.wait_for(
        workload_path("Deployment", namespace, "api"),
        lambda obj: images_of(obj)["api"] == reference,
    )
    # OpenShift's controller wrote the annotated one, we wrote the ImageTrigger's.
    assert managers(web) == {MANAGER}
    assert LAST_APPLIED not in web["metadata"].get("annotations", {})
    assert OURS in managers(api)
    assert LAST_APPLIED in api["metadata"]["annotations"]
    # The console's slip: OpenShift follows the tag regardless (the key is unknown to it).
    kube.wait_for(
        workload_path("Deployment", namespace, "console-pause"),
        lambda obj: images_of(obj)["web"] == reference,
    )

    for name, says in (("string-paused", "boolean"), ("console-pause", '"pause"')):
        kube.wait_for(
            path_for("v1", "events", namespace),
            lambda events, n=name, w=says: [
                e
                for e in events["items"]
                if e["involvedObject"]["name"] == n and e["type"] == "Warning" and w in e["message"]
            ],
        )
    assert [e for e in events_for(kube, namespace, "api") if e["reason"] == "ImageUpdated"]
    assert not [e for e in events_for(kube, namespace, "deployment") if e["type"] == "Normal"]

    metrics = operator.metrics()
    ours = (
        'imagestream_trigger_target_updates_total{kind="Deployment",result="%s",'
        'source="annotation"}'
    )
    assert metrics[ours % "updated"] == 0
    assert metrics[ours % "observed"] + metrics[ours % "unchanged"] >= 1
    invalid = 'imagestream_trigger_invalid_triggers_total{reason="%s",source="annotation"}'
    assert metrics[invalid % "PausedNotBoolean"] >= 1
    assert metrics[invalid % "PauseKeyIgnored"] >= 1
