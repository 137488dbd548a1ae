"""The OpenShift-only API, emulated on the real API server, behaves as OpenShift documents."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.controlplane import simulate
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import (
    ApiError,
    Kube,
    eventually_allowed,
    path_for,
    service_account_token,
)

IMAGE = "image.openshift.io/v1"
BUILD = "build.openshift.io/v1"


def make_stream(kube: Kube, namespace: str, name: str = "app") -> dict[str, Any]:
    created: dict[str, Any] = kube.create(
        path_for(IMAGE, "imagestreams", namespace),
        {
            "apiVersion": IMAGE,
            "kind": "ImageStream",
            "metadata": {"name": name},
            "spec": {
                "tags": [
                    {
                        "name": "latest",
                        "from": {"kind": "DockerImage", "name": "quay.io/acme/app:latest"},
                        "referencePolicy": {"type": "Source"},
                    }
                ]
            },
        },
    )
    return created


def make_buildconfig(kube: Kube, namespace: str) -> dict[str, Any]:
    created: dict[str, Any] = kube.create(
        path_for(BUILD, "buildconfigs", namespace),
        {
            "apiVersion": BUILD,
            "kind": "BuildConfig",
            "metadata": {"name": "app-build"},
            "spec": {
                "triggers": [
                    {
                        "type": "ImageChange",
                        "imageChange": {"from": {"kind": "ImageStreamTag", "name": "app:latest"}},
                    }
                ],
                "source": {"type": "Git", "git": {"uri": "https://example.invalid/app.git"}},
                "strategy": {
                    "type": "Docker",
                    "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "app:latest"}},
                },
                "output": {"to": {"kind": "ImageStreamTag", "name": "app-built:latest"}},
            },
        },
    )
    return created


def build_request(namespace: str, reference: str) -> dict[str, Any]:
    source = {"kind": "ImageStreamTag", "name": "app:latest", "namespace": namespace}
    return {
        "kind": "BuildRequest",
        "apiVersion": BUILD,
        "metadata": {"name": "app-build", "namespace": namespace},
        "triggeredByImage": {"kind": "DockerImage", "name": reference},
        "from": source,
        "triggeredBy": [
            {
                "message": "Image change",
                "imageChangeBuild": {"imageID": reference, "fromRef": source},
            }
        ],
    }


def test_import_prepends_only_when_the_digest_changes(kube: Kube, namespace: str) -> None:
    make_stream(kube, namespace)
    first = simulate.import_image(kube, namespace, "app", "latest")
    again = simulate.import_image(kube, namespace, "app", "latest", image=first.image)
    second = simulate.import_image(kube, namespace, "app", "latest")

    items = kube.get(path_for(IMAGE, "imagestreams", namespace, "app"))["status"]["tags"][0][
        "items"
    ]
    assert (first.changed, again.changed, second.changed) == (True, False, True)
    assert [i["image"] for i in items] == [second.image, first.image]
    assert items[0]["dockerImageReference"] == f"quay.io/acme/app@{second.image}"


def test_imagestreamtag_is_synthesized_and_cannot_be_watched(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    make_stream(kube, namespace)
    imported = simulate.import_image(kube, namespace, "app", "latest")

    istag = kube.get(path_for(IMAGE, "imagestreamtags", namespace, "app:latest"))
    assert istag["kind"] == "ImageStreamTag"
    assert istag["image"]["metadata"]["name"] == imported.image
    assert istag["image"]["dockerImageReference"] == imported.reference

    with pytest.raises(ApiError) as missing:
        kube.get(path_for(IMAGE, "imagestreamtags", namespace, "app:nope"))
    assert missing.value.status == 404

    with pytest.raises(ApiError) as refused:
        list(kube.watch(path_for(IMAGE, "imagestreamtags", namespace), timeout=2))
    assert refused.value.status == 405


def test_discovery_lists_the_virtual_resources_with_their_verbs(kube: Kube) -> None:
    image = {r["name"]: r for r in kube.get("/apis/image.openshift.io/v1")["resources"]}
    build = {r["name"]: r for r in kube.get("/apis/build.openshift.io/v1")["resources"]}

    assert "watch" not in image["imagestreamtags"]["verbs"]
    assert "get" in image["imagestreamtags"]["verbs"]
    assert "watch" in image["imagestreams"]["verbs"]
    assert build["buildconfigs/instantiate"]["verbs"] == ["create"]


def test_instantiate_creates_numbered_builds_and_refuses_an_image_twice(
    kube: Kube, namespace: str
) -> None:
    make_stream(kube, namespace)
    make_buildconfig(kube, namespace)
    instantiate = path_for(BUILD, "buildconfigs", namespace, "app-build") + "/instantiate"
    first = simulate.import_image(kube, namespace, "app", "latest")

    build = kube.create(instantiate, build_request(namespace, first.reference))

    assert build["kind"] == "Build"
    assert build["metadata"]["name"] == "app-build-1"
    assert build["spec"]["triggeredBy"][0]["imageChangeBuild"]["imageID"] == first.reference
    bc = kube.get(path_for(BUILD, "buildconfigs", namespace, "app-build"))
    assert bc["status"]["lastVersion"] == 1
    assert [t["lastTriggeredImageID"] for t in bc["status"]["imageChangeTriggers"]] == [
        first.reference
    ]

    with pytest.raises(ApiError) as refused:
        kube.create(instantiate, build_request(namespace, first.reference))
    assert "already instantiated a build for imageid" in refused.value.body["message"]

    second = simulate.import_image(kube, namespace, "app", "latest")
    assert (
        kube.create(instantiate, build_request(namespace, second.reference))["metadata"]["name"]
        == "app-build-2"
    )
    builds = kube.get(path_for(BUILD, "builds", namespace))["items"]
    assert sorted(b["metadata"]["name"] for b in builds) == ["app-build-1", "app-build-2"]


def test_instantiate_needs_rbac_on_the_subresource_and_the_strategy(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    make_stream(kube, namespace)
    make_buildconfig(kube, namespace)
    reference = simulate.import_image(kube, namespace, "app", "latest").reference
    token = service_account_token(kube, namespace, "builder")
    as_sa = Kube(control_plane.url, token, control_plane.ca_file)
    instantiate = path_for(BUILD, "buildconfigs", namespace, "app-build") + "/instantiate"

    with pytest.raises(ApiError) as no_rule:
        as_sa.create(instantiate, build_request(namespace, reference))
    assert no_rule.value.status == 403
    assert "buildconfigs/instantiate" in no_rule.value.body["message"]

    _grant(
        kube,
        namespace,
        "builder",
        [
            {
                "apiGroups": ["build.openshift.io"],
                "resources": ["buildconfigs/instantiate"],
                "verbs": ["create"],
            }
        ],
    )
    refusal = _refusal_once_granted(as_sa, instantiate, build_request(namespace, reference))
    assert refusal.status == 403
    assert "builds/docker" in refusal.body["message"]

    _grant(
        kube,
        namespace,
        "builder",
        [
            {
                "apiGroups": ["build.openshift.io"],
                "resources": ["buildconfigs/instantiate", "builds/docker"],
                "verbs": ["create"],
            }
        ],
    )
    build = eventually_allowed(
        lambda: as_sa.create(instantiate, build_request(namespace, reference))
    )
    assert build["kind"] == "Build"


def test_an_impersonated_instantiate_is_checked_as_the_impersonated_user(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    # As on OpenShift: kube-apiserver applies the impersonation, and openshift-apiserver
    # checks the subresource and the strategy for the user it is handed.
    make_stream(kube, namespace)
    make_buildconfig(kube, namespace)
    reference = simulate.import_image(kube, namespace, "app", "latest").reference
    instantiate = path_for(BUILD, "buildconfigs", namespace, "app-build") + "/instantiate"
    tenant = f"system:serviceaccount:{namespace}:tenant"
    as_tenant = kube.as_user(tenant)  # the admin may do anything; the tenant nothing yet

    with pytest.raises(ApiError) as refused:
        as_tenant.create(instantiate, build_request(namespace, reference))
    assert refused.value.status == 403
    message = refused.value.body["message"]
    assert f'User "{tenant}" cannot create resource "buildconfigs/instantiate"' in message

    _grant(
        kube,
        namespace,
        "tenant",
        [
            {
                "apiGroups": ["build.openshift.io"],
                "resources": ["buildconfigs/instantiate"],
                "verbs": ["create"],
            }
        ],
    )
    refusal = _refusal_once_granted(as_tenant, instantiate, build_request(namespace, reference))
    assert f'User "{tenant}" cannot create builds/docker' in refusal.body["message"]

    # Whoever may not impersonate is refused by kube-apiserver itself.
    plain = Kube(
        control_plane.url,
        service_account_token(kube, namespace, "plain"),
        control_plane.ca_file,
        impersonate=tenant,
    )
    with pytest.raises(ApiError) as not_allowed:
        plain.create(instantiate, build_request(namespace, reference))
    assert not_allowed.value.status == 403
    assert 'cannot impersonate resource "serviceaccounts"' in not_allowed.value.body["message"]

    _grant(
        kube,
        namespace,
        "tenant",
        [
            {
                "apiGroups": ["build.openshift.io"],
                "resources": ["buildconfigs/instantiate", "builds/docker"],
                "verbs": ["create"],
            }
        ],
    )
    build = eventually_allowed(
        lambda: as_tenant.create(instantiate, build_request(namespace, reference))
    )
    assert build["kind"] == "Build"


def _refusal_once_granted(as_sa: Kube, path: str, body: dict[str, Any]) -> ApiError:
    """The refusal left once the instantiate grant reached the RBAC cache (milliseconds)."""
    deadline = time.monotonic() + 10
    while True:
        with pytest.raises(ApiError) as refused:
            as_sa.create(path, body)
        if "buildconfigs/instantiate" not in str(refused.value) or time.monotonic() > deadline:
            return refused.value
        time.sleep(0.05)


def _grant(kube: Kube, namespace: str, account: str, rules: list[dict[str, Any]]) -> None:
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": account, "namespace": namespace},
            "rules": rules,
        }
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
    )
