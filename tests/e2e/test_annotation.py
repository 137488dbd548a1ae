"""OpenShift's image.openshift.io/triggers annotation, served by the running operator."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    annotated_web,
    by_name,
    create,
    events_for,
    image_stream,
    images_of,
    imported,
    trigger_annotation,
    web_image,
    workload,
    workload_path,
)

KINDS = ["Deployment", "StatefulSet", "DaemonSet", "CronJob"]


@pytest.mark.parametrize("kind", KINDS)
def test_tag_change_updates_the_chosen_container_and_leaves_the_sidecar(
    kube: Kube, namespace: str, operator: OperatorProcess, kind: str
) -> None:
    image_stream(kube, namespace)
    create(
        kube,
        namespace,
        workload(
            kind,
            "web",
            {"web": f"{REPO}:latest", "proxy": "quay.io/acme/proxy:1"},
            annotation=trigger_annotation(by_name("web", kind=kind)),
        ),
    )

    first = imported(kube, namespace)
    updated = kube.wait_for(
        workload_path(kind, namespace, "web"),
        lambda obj: images_of(obj)["web"] == first.reference,
    )
    assert images_of(updated)["proxy"] == "quay.io/acme/proxy:1"

    second = imported(kube, namespace)
    updated = kube.wait_for(
        workload_path(kind, namespace, "web"),
        lambda obj: images_of(obj)["web"] == second.reference,
    )
    assert images_of(updated) == {"web": second.reference, "proxy": "quay.io/acme/proxy:1"}
    record = json.loads(updated["metadata"]["annotations"]["imagestream-trigger.dev/last-applied"])
    assert record["web"]["image"] == second.reference
    assert record["web"]["source"] == f"{namespace}/app:latest"
    template_meta = updated["spec"].get("template", {}).get("metadata", {})
    assert "imagestream-trigger.dev/last-applied" not in template_meta.get("annotations", {})


def test_reimport_of_the_same_digest_writes_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    annotated_web(kube, namespace)
    first = imported(kube, namespace)
    done = kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda obj: images_of(obj)["web"] == first.reference,
    )
    version = done["metadata"]["resourceVersion"]

    again = imported(kube, namespace, image=first.image)
    assert not again.changed
    # A re-import that changes nothing sends no watch event. Touch the Deployment so a
    # pass of it certainly runs after the re-import, and wait for that pass to end.
    mark = operator.log_offset()
    touch(kube, namespace)
    operator.wait_reconciled(f"Deployment {namespace}/web", after=mark)
    after = kube.get(workload_path("Deployment", namespace, "web"))
    assert after["metadata"]["labels"]["touched"] == "yes"
    assert images_of(after)["web"] == first.reference
    assert int(after["metadata"]["generation"]) == int(done["metadata"]["generation"])
    assert (
        operator.metrics().get(
            'imagestream_trigger_target_updates_total{kind="Deployment",result="updated",source="annotation"}'
        )
        == 1
    )
    assert version != after["metadata"]["resourceVersion"]  # only the label moved it


def touch(kube: Kube, namespace: str, name: str = "web") -> None:
    """A change of the workload that matters to no decision: a pass runs, and must write nothing."""
    kube.patch(
        workload_path("Deployment", namespace, name),
        {"metadata": {"labels": {"touched": "yes"}}},
        "merge",
    )


def test_paused_as_a_string_is_reported_and_changes_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    annotated_web(kube, namespace, annotation=trigger_annotation(by_name("web", paused="false")))
    imported(kube, namespace)

    warning = kube.wait_for(
        path_for("v1", "events", namespace),
        lambda events: [e for e in events["items"] if e["type"] == "Warning"],
    )["items"]
    messages = [e["message"] for e in warning if e["involvedObject"]["name"] == "web"]
    assert any("paused" in m and "boolean" in m for m in messages), messages
    # The Warning comes before any write would: wait for a whole pass after the move.
    mark = operator.log_offset()
    touch(kube, namespace)
    operator.wait_reconciled(f"Deployment {namespace}/web", after=mark)
    assert web_image(kube, namespace) == f"{REPO}:latest"
    metrics = operator.metrics()
    assert (
        metrics.get(
            'imagestream_trigger_invalid_triggers_total{reason="PausedNotBoolean",source="annotation"}'
        )
        == 1
    )


def test_unknown_container_is_reported(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    annotated_web(kube, namespace, annotation=trigger_annotation(by_name("wbe")))
    imported(kube, namespace)
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: any("wbe" in e["message"] for e in events_for(kube, namespace, "web")),
    )
    mark = operator.log_offset()
    touch(kube, namespace)
    operator.wait_reconciled(f"Deployment {namespace}/web", after=mark)
    assert web_image(kube, namespace) == f"{REPO}:latest"


def test_a_change_made_while_stopped_is_applied_at_start(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    annotated_web(kube, namespace)
    first = imported(kube, namespace)  # no operator running yet

    run_operator()

    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda obj: images_of(obj)["web"] == first.reference,
    )


def test_global_dry_run_decides_and_writes_nothing(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    operator = run_operator(args=["--dry-run"])
    annotated_web(kube, namespace)
    # The decision counts as a dry run of a tag move once the operator knows the workload.
    operator.wait_metric('imagestream_trigger_annotated_workloads{kind="Deployment"}', above=0)
    imported(kube, namespace)

    dry = (
        "imagestream_trigger_target_updates_total"
        '{kind="Deployment",result="dry_run",source="annotation"}'
    )
    operator.wait_metric(dry, above=0)
    assert web_image(kube, namespace) == f"{REPO}:latest"


def test_native_annotations_can_be_turned_off(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    operator = run_operator(args=["--no-native-annotations"])
    annotated_web(kube, namespace)
    imported(kube, namespace)
    # The move was taken in (its wakes are queued in the same step): with the
    # annotation off, the workload is not even known as annotated, so nothing follows.
    operator.wait_metric("imagestream_trigger_tag_changes_total", above=0)
    metrics = operator.metrics()
    assert metrics['imagestream_trigger_annotated_workloads{kind="Deployment"}'] == 0
    assert metrics["imagestream_trigger_queue_depth"] == 0

    assert web_image(kube, namespace) == f"{REPO}:latest"
    updates = {
        k: v
        for k, v in operator.metrics().items()
        if k.startswith("imagestream_trigger_target_updates_total")
    }
    assert updates, "the series exist (at zero) from the start"
    assert set(updates.values()) == {0.0}


def test_a_pause_key_is_warned_about_and_the_tag_still_followed(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    # "pause" for "paused": a key OpenShift ignores, so it follows the tag all the same.
    web = annotated_web(
        kube, namespace, annotation=trigger_annotation(by_name("web", pause="true"))
    )
    first = imported(kube, namespace)
    kube.wait_for(web, lambda d: images_of(d)["web"] == first.reference)  # as OpenShift does
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: any(
            e["type"] == "Warning" and "is not paused" in e["message"]
            for e in events_for(kube, namespace, "web")
        ),
    )
    reason = (
        'imagestream_trigger_invalid_triggers_total{reason="PauseKeyIgnored",source="annotation"}'
    )
    assert operator.metrics()[reason] == 1


def test_a_trigger_openshift_does_not_watch_is_applied_when_the_workload_changes(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    # from.kind "DockerImage": OpenShift's stream index skips the entry (a tag move does
    # not wake the workload), but its updater applies it whenever the workload changes.
    entry = by_name("web")
    entry["from"]["kind"] = "DockerImage"
    web = annotated_web(kube, namespace, annotation=trigger_annotation(entry))
    first = imported(kube, namespace)
    # The workload's next pass must see the move: nothing else will wake it.
    operator.wait_logged(f"tag {namespace}/app:latest moved to {first.reference}")
    mark = operator.log_offset()
    touch(kube, namespace)  # a pass of the workload: the entry is applied
    kube.wait_for(web, lambda d: images_of(d)["web"] == first.reference)
    operator.wait_reconciled(f"Deployment {namespace}/web", after=mark)

    # (That a move alone does not wake it is shown at the intake, in the unit tests.)
    second = imported(kube, namespace)
    operator.wait_logged(f"tag {namespace}/app:latest moved to {second.reference}")
    kube.patch(web, {"metadata": {"labels": {"touched": "again"}}}, "merge")
    kube.wait_for(web, lambda d: images_of(d)["web"] == second.reference)
