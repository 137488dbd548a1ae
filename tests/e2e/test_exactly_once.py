"""Builds exactly once per image, whatever happens between the request and its record.

``instantiate`` is not idempotent for a BuildConfig without an imageChange
trigger of its own: the server has nothing to refuse a second request with.
The operator records its intent before sending, never resends blindly, and
asks the cluster when an intent has no outcome. These tests cut that path
where a real cluster would: a lost response, a crash right after the request,
a SIGKILL in the middle of a burst.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.controlplane.simulate import import_image
from tests.e2e.objects import (
    BUILD,
    REPO,
    TRIGGERS,
    buildconfig,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    workload,
    workload_path,
)


def builds_by_image(kube: Kube, namespace: str, bc: str) -> Counter[str]:
    """How many Builds of ``bc`` each image triggered."""
    items = kube.get(
        path_for(BUILD, "builds", namespace),
        labelSelector=f"openshift.io/build-config.name={bc}",
    )["items"]
    return Counter(
        cause["imageChangeBuild"]["imageID"]
        for build in items
        for cause in build["spec"].get("triggeredBy") or []
        if cause.get("imageChangeBuild")
    )


def trigger(kube: Kube, namespace: str, name: str = "follow") -> dict[str, Any]:
    found: dict[str, Any] = kube.get(path_for(TRIGGERS, "imagetriggers", namespace, name))
    return found


def without_own_trigger(kube: Kube, namespace: str, name: str = "app-build") -> None:
    image_stream(kube, namespace)
    create(kube, namespace, buildconfig(name, own_trigger=False))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "BuildConfig", "name": name}]),
    )


def test_a_lost_instantiate_response_makes_no_second_build(
    kube: Kube, namespace: str, control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    without_own_trigger(kube, namespace)
    control_plane.set_faults(drop_instantiate_responses=1)
    try:
        image = imported(kube, namespace)
        done = kube.wait_for(
            path_for(TRIGGERS, "imagetriggers", namespace, "follow"),
            lambda t: t.get("status", {}).get("builds", {}).get("app-build", {}).get("build"),
        )
    finally:
        control_plane.set_faults(drop_instantiate_responses=0)
    assert builds_by_image(kube, namespace, "app-build") == {image.reference: 1}
    assert done["status"]["builds"]["app-build"]["build"] == "app-build-1"
    metrics = operator.metrics()
    assert metrics['imagestream_trigger_retries_total{reason="build_unknown"}'] >= 1
    # Found by asking the cluster, not started a second time.
    assert metrics['imagestream_trigger_builds_total{result="already_built"}'] == 1
    assert metrics['imagestream_trigger_builds_total{result="started"}'] == 0


def test_a_crash_between_the_request_and_its_record_makes_no_second_build(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    without_own_trigger(kube, namespace)
    crashing = run_operator(env={"IMAGESTREAM_TRIGGER_FAULT": "exit-after-instantiate"})
    image = imported(kube, namespace)
    assert crashing.wait_exit() == 86  # the fault hook: right after the POST returned
    assert builds_by_image(kube, namespace, "app-build") == {image.reference: 1}
    intent = trigger(kube, namespace)["status"]["builds"]["app-build"]
    assert intent["image"] == image.reference
    assert "build" not in intent  # the outcome was never recorded

    run_operator()
    done = kube.wait_for(
        path_for(TRIGGERS, "imagetriggers", namespace, "follow"),
        lambda t: t.get("status", {}).get("builds", {}).get("app-build", {}).get("build"),
    )
    assert done["status"]["builds"]["app-build"]["build"] == "app-build-1"
    assert builds_by_image(kube, namespace, "app-build") == {image.reference: 1}

    # And the next image is built as usual, once.
    second = imported(kube, namespace)
    kube.wait_for(
        path_for(TRIGGERS, "imagetriggers", namespace, "follow"),
        lambda t: t["status"]["builds"]["app-build"].get("build") == "app-build-2",
    )
    assert builds_by_image(kube, namespace, "app-build") == {
        image.reference: 1,
        second.reference: 1,
    }


STREAMS = 20
BUILDCONFIGS = 5


def test_sigkill_in_a_burst_loses_nothing_and_doubles_no_build(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    streams = [f"s{i}" for i in range(STREAMS)]
    for stream in streams:
        image_stream(kube, namespace, stream)
    for i, stream in enumerate(streams):
        if i < BUILDCONFIGS:
            create(kube, namespace, buildconfig(f"b{i}", f"{stream}:latest", own_trigger=False))
            target = {"kind": "BuildConfig", "name": f"b{i}"}
        else:
            create(kube, namespace, workload("Deployment", f"d{i}", {"app": f"{REPO}:latest"}))
            target = {"kind": "Deployment", "name": f"d{i}"}
        create(kube, namespace, image_trigger(f"t{i}", f"{stream}:latest", [target]))
    operator = run_operator()

    def burst() -> None:
        threads = [
            threading.Thread(target=import_image, args=(kube, namespace, s, "latest"))
            for s in streams
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    burst()
    # Kill it as soon as the first build exists: the rest of the burst is in flight.
    kube.wait_for(path_for(BUILD, "builds", namespace), lambda b: len(b["items"]) >= 1)
    operator.kill()
    burst()  # while it is down
    burst()
    run_operator()

    heads = {
        s: kube.get(path_for("image.openshift.io/v1", "imagestreams", namespace, s))["status"][
            "tags"
        ][0]["items"][0]["dockerImageReference"]
        for s in streams
    }
    for i, stream in enumerate(streams[:BUILDCONFIGS]):
        kube.wait_for(
            path_for(TRIGGERS, "imagetriggers", namespace, f"t{i}"),
            lambda t, bc=f"b{i}", head=heads[stream]: (
                t.get("status", {}).get("builds", {}).get(bc, {}).get("image") == head
                and bool(t["status"]["builds"][bc].get("build"))
            ),
            timeout=60,
        )
    for i, stream in enumerate(streams[BUILDCONFIGS:], start=BUILDCONFIGS):
        kube.wait_for(
            workload_path("Deployment", namespace, f"d{i}"),
            lambda d, s=stream: images_of(d)["app"] == heads[s],
            timeout=60,
        )
    # Every target converged: now count.
    for i in range(BUILDCONFIGS):
        counts = builds_by_image(kube, namespace, f"b{i}")
        assert counts[heads[streams[i]]] == 1, counts
        assert all(n == 1 for n in counts.values()), f"b{i} built an image twice: {counts}"
