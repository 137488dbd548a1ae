"""The operator under the faults a shared cluster inflicts: outages, expired watches, 503s.

Each test breaks the real control plane (the harness's switches), then checks
that the operator stayed up, missed nothing and came back quickly, with no
traceback in its log.
"""

from __future__ import annotations

import time

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    TRIGGERS,
    annotated_web,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    ready,
    workload,
    workload_path,
)

# From the API being back to a change made right then being applied.
BACK_WITHIN_S = 3.0


def no_traceback(operator: OperatorProcess) -> None:
    operator.check_alive()
    assert "Traceback" not in operator.output(), operator.tail()


def test_api_outage_the_operator_stays_up_and_is_back_within_seconds(
    kube: Kube, namespace: str, control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    web = annotated_web(kube, namespace)
    first = imported(kube, namespace)
    kube.wait_for(web, lambda d: images_of(d)["web"] == first.reference)

    control_plane.restart_apiserver(down_for=10)
    back = time.monotonic()
    second = imported(kube, namespace)
    kube.wait_for(web, lambda d: images_of(d)["web"] == second.reference, interval=0.02)
    took = time.monotonic() - back
    print(f"applied {took:.2f}s after the API was back")
    assert took < BACK_WITHIN_S, f"applied {took:.1f}s after the API was back"
    no_traceback(operator)


def test_expired_watches_are_listed_again_and_nothing_is_missed(
    kube: Kube, namespace: str, control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    web = annotated_web(kube, namespace)
    create(kube, namespace, workload("Deployment", "api", {"api": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "api"}]),
    )
    first = imported(kube, namespace)
    kube.wait_for(web, lambda d: images_of(d)["web"] == first.reference)
    lists = 'imagestream_trigger_api_requests_total{code="200",resource="deployments",verb="get"}'
    listed = operator.metrics().get(lists, 0)

    control_plane.expire_watches()  # every resourceVersion handed out so far: 410 Gone
    second = imported(kube, namespace)
    kube.wait_for(web, lambda d: images_of(d)["web"] == second.reference)
    kube.wait_for(
        workload_path("Deployment", namespace, "api"),
        lambda d: images_of(d)["api"] == second.reference,
    )
    # Our own Deployment watch had to list again to get there.
    assert operator.metrics().get(lists, 0) > listed
    no_traceback(operator)


def test_a_stream_deleted_where_no_watch_could_see_it_is_found_gone(
    kube: Kube, namespace: str, control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "api", {"api": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "api"}]),
    )
    imported(kube, namespace)
    follow = path_for(TRIGGERS, "imagetriggers", namespace, "follow")
    kube.wait_for(follow, lambda t: ready(t).get("reason") == "Applied")

    # Gone while kube-apiserver is down, and compacted away: kopf gets "410 Gone", lists
    # again, and that listing has no DELETED event to give.
    control_plane.stop_apiserver()
    try:
        key = f"/registry/image.openshift.io/imagestreams/{namespace}/app"
        assert control_plane.delete_unseen(key) == 1
    finally:
        control_plane.start_apiserver()
    kube.wait_for(follow, lambda t: ready(t).get("reason") == "SourceNotFound", timeout=30)
    no_traceback(operator)


def test_a_proxy_answering_503_for_5s_delays_the_change_and_loses_nothing(
    kube: Kube, namespace: str, control_plane: ControlPlane, operator: OperatorProcess
) -> None:
    web = annotated_web(kube, namespace)
    first = imported(kube, namespace)
    kube.wait_for(web, lambda d: images_of(d)["web"] == first.reference)
    # The change lands behind the proxy's back, on the API server itself.
    direct = Kube(control_plane.apiserver_url, control_plane.admin_token, control_plane.ca_file)
    with control_plane.faults_injected(unavailable_for_s=5):
        started = time.monotonic()
        second = imported(direct, namespace)
        kube_after = Kube(control_plane.url, control_plane.admin_token, control_plane.ca_file)
        time.sleep(5.2)
        assert control_plane.faults()["unavailable_responses"] > 0
    kube_after.wait_for(web, lambda d: images_of(d)["web"] == second.reference)
    assert time.monotonic() - started < 5 + BACK_WITHIN_S + 2
    no_traceback(operator)
