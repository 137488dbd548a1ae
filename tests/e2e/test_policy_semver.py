"""Tag policies on the real API server: an ImageTrigger following a stream with a semver
range picks the right tag among 20, moves with a newer 1.x tag and ignores 2.0.0; the
shipped CRD admits exactly one of imageStreamTag or imageStream (with a policy)."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import parse_spec
from tests.controlplane import simulate
from tests.controlplane.kube import ApiError, Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    TRIGGERS,
    create,
    image_stream,
    images_of,
    ready,
    trigger_path,
    wait_reason,
    workload,
    workload_path,
)

# 20 tags as a real stream holds them: releases with and without "v", pre-releases, a 2.x
# line and tags that are no semantic version. The newest release in ">=1.2 <2" is v1.4.10
# (1.10.0-rc.1 and 1.9.0-beta.2 are pre-releases; 1.6 and 01.5.0 no strict versions).
TWENTY = [
    "latest",
    "stable",
    "main-4f2a9c1",
    "1.0.0",
    "1.1.9",
    "1.2.0",
    "v1.2.7",
    "1.3.0-rc.1",
    "1.4.0",
    "v1.4.2",
    "v1.4.10",
    "1.4.9",
    "1.9.0-beta.2",
    "1.10.0-rc.1",
    "01.5.0",
    "1.6",
    "2.0.0-rc.1",
    "2.0.1",
    "2.1.0",
    "0.9.12",
]
RANGE = ">=1.2 <2"


def policy_trigger(source: dict[str, Any], name: str = "follow") -> dict[str, Any]:
    return {
        "apiVersion": TRIGGERS,
        "kind": "ImageTrigger",
        "metadata": {"name": name},
        "spec": {"source": source, "targets": [{"kind": "Deployment", "name": "web"}]},
    }


def web(kube: Kube, namespace: str) -> str:
    return images_of(kube.get(workload_path("Deployment", namespace, "web")))["web"]


def test_the_semver_policy_picks_the_right_tag_among_20(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    imports = {tag: simulate.import_image(kube, namespace, "app", tag) for tag in TWENTY}
    assert len({i.reference for i in imports.values()}) == 20
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        policy_trigger({"imageStream": "app", "policy": {"semver": {"range": RANGE}}}),
    )

    right = imports["v1.4.10"].reference
    kube.wait_for(
        workload_path("Deployment", namespace, "web"), lambda d: images_of(d)["web"] == right
    )
    trigger = kube.wait_for(
        trigger_path(namespace), lambda t: t.get("status", {}).get("tag") == "v1.4.10"
    )
    assert ready(trigger)["status"] == "True"
    assert trigger["status"]["image"] == right
    assert trigger["status"]["targets"][0]["image"] == right

    # A newer 1.x release moves the Deployment to it.
    newer = simulate.import_image(kube, namespace, "app", "1.5.0")
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == newer.reference,
    )
    kube.wait_for(trigger_path(namespace), lambda t: t["status"].get("tag") == "1.5.0")

    # 2.0.0 is out of range: the pass it causes keeps 1.5.0.
    mark = operator.log_offset()
    major = simulate.import_image(kube, namespace, "app", "2.0.0")
    operator.wait_reconciled(f"ImageTrigger {namespace}/follow", after=mark)
    assert web(kube, namespace) == newer.reference
    assert major.reference != newer.reference
    # And the stream's events are taken in order: a later 1.x tag is still followed.
    later = simulate.import_image(kube, namespace, "app", "1.5.1")
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == later.reference,
    )
    kube.wait_for(trigger_path(namespace), lambda t: t["status"].get("tag") == "1.5.1")


def test_no_tag_in_range_says_so_and_a_matching_import_heals_it(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    for tag in ("latest", "2.0.1", "0.9.0"):
        simulate.import_image(kube, namespace, "app", tag)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        policy_trigger({"imageStream": "app", "policy": {"semver": {"range": RANGE}}}),
    )
    trigger = wait_reason(kube, namespace, "NoTagMatches")
    assert ready(trigger)["message"] == (
        f'none of the 3 tags of ImageStream {namespace}/app matches semver range ">=1.2 <2" '
        "(newest seen: 2.0.1)"
    )
    assert web(kube, namespace) == f"{REPO}:latest"
    fixed = simulate.import_image(kube, namespace, "app", "1.2.0")
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == fixed.reference,
    )
    wait_reason(kube, namespace, "Applied")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            {"imageStreamTag": "app:latest", "imageStream": "app", "policy": {"numerical": {}}},
            "exactly one of imageStreamTag or imageStream must be set",
            id="both",
        ),
        pytest.param({}, "exactly one of imageStreamTag or imageStream must be set", id="neither"),
        pytest.param(
            {"imageStream": "app"}, "imageStream needs a policy", id="stream-without-policy"
        ),
        pytest.param(
            {"imageStreamTag": "app:latest", "policy": {"numerical": {}}},
            "imageStream needs a policy",
            id="policy-with-tag",
        ),
        pytest.param(
            {"imageStream": "app", "policy": {"semver": {"range": "1.x"}, "numerical": {}}},
            "exactly one of semver, alphabetical or numerical must be set",
            id="two-policies",
        ),
        pytest.param(
            {"imageStream": "app", "policy": {}},
            "exactly one of semver, alphabetical or numerical must be set",
            id="no-policy-kind",
        ),
        pytest.param(
            {"imageStream": "app", "policy": {"alphabetical": {"order": "up"}}},
            "spec.source.policy.alphabetical.order: Unsupported value",
            id="bad-order",
        ),
        pytest.param(
            {"imageStreamTag": "app:latest", "filterTags": {"pattern": "^v"}},
            "filterTags applies to imageStream only",
            id="filter-with-tag",
        ),
    ],
)
def test_the_crd_refuses_what_the_model_refuses(
    kube: Kube, namespace: str, source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        kube.create(path_for(TRIGGERS, "imagetriggers", namespace), policy_trigger(source))
    assert refused.value.status == 422
    assert message in str(refused.value)
    with pytest.raises(InvalidSpecError):
        parse_spec({"source": source, "targets": [{"kind": "Deployment", "name": "web"}]})


def test_the_crd_stores_a_policy_with_its_defaults(kube: Kube, namespace: str) -> None:
    source = {
        "imageStream": "app",
        "namespace": "builds",
        "policy": {"numerical": {}},
        "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
    }
    created = kube.create(path_for(TRIGGERS, "imagetriggers", namespace), policy_trigger(source))
    assert created["spec"]["source"]["policy"] == {"numerical": {"order": "asc"}}
    spec = parse_spec(created["spec"])  # and the operator takes what was stored
    assert spec.source.tag_policy() is not None
