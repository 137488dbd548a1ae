"""The ImageTrigger resource, served by the running operator on the real API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.controlplane.kube import ApiError, Kube, create_namespace, path_for
from tests.controlplane.operator_process import OperatorProcess, shipped_cluster_role, without_rule
from tests.e2e.objects import (
    BUILD,
    REPO,
    TRIGGERS,
    buildconfig,
    builds,
    built_by_trigger,
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    ready,
    trigger_path,
    wait_reason,
    workload,
    workload_path,
)


def test_named_deployment_follows_the_tag_and_status_tells(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    create(
        kube,
        namespace,
        workload("Deployment", "web", {"web": f"{REPO}:latest", "proxy": "quay.io/acme/proxy:1"}),
    )
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "web"}]),
    )

    wait_reason(kube, namespace, "TagNotResolved")
    first = imported(kube, namespace)

    done = kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == first.reference,
    )
    assert images_of(done)["proxy"] == "quay.io/acme/proxy:1"  # not from the stream: untouched
    trigger = wait_reason(kube, namespace, "Applied")
    status = trigger["status"]
    assert ready(trigger)["status"] == "True"
    assert status["image"] == first.reference
    assert status["shortDigest"] == first.image[:19]
    assert status["observedGeneration"] == trigger["metadata"]["generation"]
    assert status["targets"][0]["name"] == "web"
    assert status["history"][0]["image"] == first.reference
    assert status["history"][0]["updated"] == ["Deployment/web"]
    assert "lastTriggerTime" in status
    # Events are sent in the background, right after the pass.
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: "ImageUpdated" in {e["reason"] for e in events_for(kube, namespace, "follow")},
    )

    second = imported(kube, namespace)
    kube.wait_for(
        trigger_path(namespace),
        lambda t: t["status"].get("image") == second.reference and len(t["status"]["history"]) == 2,
    )
    assert (
        images_of(kube.get(workload_path("Deployment", namespace, "web")))["web"]
        == second.reference
    )


def test_selector_and_container_names_choose_the_targets(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    for name, tier in (("a", "front"), ("b", "front"), ("c", "back")):
        create(
            kube,
            namespace,
            workload(
                "StatefulSet",
                name,
                {"main": "busybox:1", "side": "busybox:1"},
                labels={"tier": tier},
            ),
        )
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [
                {
                    "kind": "StatefulSet",
                    "selector": {"matchLabels": {"tier": "front"}},
                    "containers": ["main"],
                }
            ],
        ),
    )
    first = imported(kube, namespace)

    for name in ("a", "b"):
        kube.wait_for(
            workload_path("StatefulSet", namespace, name),
            lambda s: images_of(s) == {"main": first.reference, "side": "busybox:1"},
        )
    assert images_of(kube.get(workload_path("StatefulSet", namespace, "c")))["main"] == "busybox:1"
    status = wait_reason(kube, namespace, "Applied")["status"]
    assert [t["name"] for t in status["targets"]] == ["a", "b"]


def test_buildconfig_gets_one_build_per_new_image_even_across_restarts(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    built_by_trigger(kube, namespace)
    operator = run_operator()
    first = imported(kube, namespace)
    kube.wait_for(path_for(BUILD, "builds", namespace), lambda b: len(b["items"]) == 1)
    wait_reason(kube, namespace, "Applied")

    operator.stop()
    restarted = run_operator()
    # The restarted operator re-plans everything at start: wait for that pass to end.
    restarted.wait_reconciled(f"ImageTrigger {namespace}/follow", after=0)
    wait_reason(kube, namespace, "Applied")
    assert builds(kube, namespace) == ["app-build-1"]

    second = imported(kube, namespace)
    kube.wait_for(path_for(BUILD, "builds", namespace), lambda b: len(b["items"]) == 2)
    build = kube.get(path_for(BUILD, "builds", namespace, "app-build-2"))
    assert build["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == second.reference
    bc = kube.get(path_for(BUILD, "buildconfigs", namespace, "app-build"))
    assert bc["status"]["lastVersion"] == 2
    assert first.reference != second.reference
    metrics = restarted.metrics()
    assert metrics['imagestream_trigger_builds_total{result="started"}'] == 1


@pytest.mark.parametrize("flag", ["suspend", "dryRun"])
def test_suspend_and_dry_run_write_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, flag: str
) -> None:
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(kube, namespace, buildconfig("app-build"))
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}, {"kind": "BuildConfig", "name": "app-build"}],
            **{flag: True},
        ),
    )
    imported(kube, namespace)

    trigger = wait_reason(kube, namespace, "Suspended" if flag == "suspend" else "DryRun")
    assert {t["result"] for t in trigger["status"]["targets"]} == {"DryRun"}
    assert (
        images_of(kube.get(workload_path("Deployment", namespace, "web")))["web"]
        == f"{REPO}:latest"
    )
    assert builds(kube, namespace) == []
    assert "would update" in ready(trigger)["message"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"source": {"imageStreamTag": "app"}, "targets": [{"kind": "Deployment", "name": "x"}]},
            "spec.source.imageStreamTag",
        ),
        ({"source": {"imageStreamTag": "app:latest"}, "targets": []}, "spec.targets"),
        (
            {
                "source": {"imageStreamTag": "app:latest"},
                "targets": [{"kind": "Deployment", "name": "x", "selector": {}}],
            },
            "exactly one of name or selector",
        ),
        (
            {
                "source": {"imageStreamTag": "app:latest"},
                "targets": [{"kind": "BuildConfig", "name": "x", "containers": ["a"]}],
            },
            "do not apply to a BuildConfig",
        ),
        (
            {
                "source": {"imageStreamTag": "app:latest"},
                "targets": [
                    {"kind": "Deployment", "name": "x"},
                    {"kind": "Deployment", "name": "x"},
                ],
            },
            "listed more than once",
        ),
    ],
    ids=[
        "tag-without-colon",
        "no-targets",
        "name-and-selector",
        "containers-on-build",
        "duplicate",
    ],
)
def test_invalid_imagetrigger_is_refused_at_admission(
    kube: Kube, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        kube.create(
            path_for(TRIGGERS, "imagetriggers", namespace),
            {
                "apiVersion": TRIGGERS,
                "kind": "ImageTrigger",
                "metadata": {"name": "bad"},
                "spec": spec,
            },
        )
    assert refused.value.status == 422
    assert message in refused.value.body["message"]


def test_what_admission_cannot_see_is_reported_as_invalid_spec(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    # Label values are free strings to the CRD schema; the runtime model checks them.
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "selector": {"matchLabels": {"tier": "not a valid value!"}}}],
        ),
    )
    trigger = wait_reason(kube, namespace, "InvalidSpec")
    assert "spec.targets[0]" in ready(trigger)["message"]
    stalled = [c for c in trigger["status"]["conditions"] if c["type"] == "Stalled"]
    assert [c["status"] for c in stalled] == ["True"]
    assert (
        operator.metrics()[
            'imagestream_trigger_invalid_triggers_total{reason="InvalidSpec",source="imagetrigger"}'
        ]
        == 1
    )


def test_cross_namespace_source_needs_the_streams_permission(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    source_ns = f"{namespace[:50]}-src"
    create_namespace(kube, source_ns)
    image_stream(kube, source_ns)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "web"}]),
    )
    kube.patch(trigger_path(namespace), {"spec": {"source": {"namespace": source_ns}}}, "merge")
    run_operator(serve=[namespace, source_ns])
    first = imported(kube, source_ns)

    denied = wait_reason(kube, namespace, "CrossNamespaceDenied")
    assert "imagestream-trigger.dev/allowed-namespaces" in ready(denied)["message"]
    assert (
        images_of(kube.get(workload_path("Deployment", namespace, "web")))["web"]
        == f"{REPO}:latest"
    )

    kube.patch(
        path_for("image.openshift.io/v1", "imagestreams", source_ns, "app"),
        {"metadata": {"annotations": {"imagestream-trigger.dev/allowed-namespaces": namespace}}},
        "merge",
    )
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == first.reference,
    )
    wait_reason(kube, namespace, "Applied")


def test_missing_rbac_rule_is_reported_as_forbidden_and_healed_by_granting_it(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    built_by_trigger(kube, namespace)
    operator = run_operator()
    # An administrator tightens RBAC while the operator runs (the pre-flight check
    # passed): the refusal must surface in the ImageTrigger's status.
    role = without_rule(shipped_cluster_role(), "builds/docker")
    role["metadata"]["name"] = f"imagestream-trigger-{namespace}"
    kube.apply(role)
    _wait_until_denied(kube, namespace)
    imported(kube, namespace)

    trigger = wait_reason(kube, namespace, "Forbidden")
    assert "builds/docker" in ready(trigger)["message"]
    assert operator.metrics()['imagestream_trigger_builds_total{result="failed"}'] >= 1

    # The administrator grants the rule again: the retries (with backoff, not the
    # 10-minute resync) start the build soon after, with nothing else happening.
    granted = shipped_cluster_role()
    granted["metadata"]["name"] = role["metadata"]["name"]
    kube.apply(granted)
    fixed = time.monotonic()
    kube.wait_for(
        trigger_path(namespace),
        lambda t: ready(t).get("reason") == "Applied",
        timeout=30,
    )
    assert time.monotonic() - fixed < 30
    assert builds(kube, namespace) == ["app-build-1"]
    assert operator.metrics()['imagestream_trigger_retries_total{reason="forbidden"}'] >= 1


def _wait_until_denied(kube: Kube, namespace: str) -> None:
    """Until the RBAC cache no longer lets the operator create docker builds."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:imagestream-trigger",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {
                "verb": "create",
                "group": "build.openshift.io",
                "resource": "builds",
                "subresource": "docker",
                "namespace": namespace,
            },
        },
    }
    deadline = time.monotonic() + 10
    while kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)["status"].get(
        "allowed"
    ):
        assert time.monotonic() < deadline, "the ClusterRole change never took effect"
        time.sleep(0.05)


def test_preflight_names_a_missing_permission(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    role = without_rule(shipped_cluster_role(), "imagestreams")
    operator = run_operator(role=role, wait=False)
    assert operator.process is not None
    code = operator.process.popen.wait(30)
    assert code == 2
    assert "list imagestreams.image.openshift.io" in operator.output()
