"""``oc tag`` against the emulated image API: an ImageStreamTag update lands in the
stream's spec and, at once, in its status.tags, with OpenShift's RBAC and refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.controlplane import simulate
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import (
    ApiError,
    Kube,
    create_namespace,
    eventually_allowed,
    path_for,
    service_account_token,
)

pytestmark = pytest.mark.controlplane

IMAGE = "image.openshift.io/v1"


def oc_tag_body(namespace: str, digest: str, source_namespace: str) -> dict[str, Any]:
    """What ``oc tag SRC/app@DIGEST NS/app:stable`` sends (pkg/cli/tag/tag.go)."""
    return {
        "apiVersion": IMAGE,
        "kind": "ImageStreamTag",
        "metadata": {"name": "app:stable", "namespace": namespace},
        "tag": {
            "name": "stable",
            "reference": False,
            "importPolicy": {"insecure": False, "scheduled": False, "importMode": "Legacy"},
            "referencePolicy": {"type": "Source"},
            "from": {
                "kind": "ImageStreamImage",
                "name": f"app@{digest}",
                "namespace": source_namespace,
            },
        },
    }


def source_stream(kube: Kube, namespace: str) -> None:
    kube.create(
        path_for(IMAGE, "imagestreams", namespace),
        {"apiVersion": IMAGE, "kind": "ImageStream", "metadata": {"name": "app"}},
    )


def test_tagging_an_image_moves_the_tag_at_once_and_only_once(kube: Kube, namespace: str) -> None:
    source_stream(kube, namespace)
    first = simulate.import_image(kube, namespace, "app", "latest")
    second = simulate.import_image(kube, namespace, "app", "latest")
    istag = path_for(IMAGE, "imagestreamtags", namespace, "app:stable")
    stream_path = path_for(IMAGE, "imagestreams", namespace, "app")

    # A new tag: the PUT creates it (201) and resolves it from the source's history.
    answer = kube.replace(istag, oc_tag_body(namespace, first.image, namespace))
    assert answer["kind"] == "ImageStreamTag"
    assert answer["image"]["metadata"]["name"] == first.image
    stream = kube.get(stream_path)
    item = simulate.head(stream, "stable")
    assert item is not None
    assert item["image"] == first.image
    assert item["dockerImageReference"] == first.reference
    assert item["generation"] == stream["metadata"]["generation"]

    # Moving it prepends; tagging the same image again changes nothing.
    kube.replace(istag, oc_tag_body(namespace, second.image, namespace))
    again = kube.replace(istag, oc_tag_body(namespace, second.image, namespace))
    assert again["image"]["metadata"]["name"] == second.image
    stream = kube.get(stream_path)
    (stable,) = [t for t in stream["status"]["tags"] if t["tag"] == "stable"]
    assert [i["image"] for i in stable["items"]] == [second.image, first.image]

    # A create of an existing tag is refused; so is an image the source never had.
    with pytest.raises(ApiError) as exists:
        kube.create(
            path_for(IMAGE, "imagestreamtags", namespace),
            oc_tag_body(namespace, first.image, namespace),
        )
    assert exists.value.status == 409
    unknown = simulate.openshift.digest_for("never imported")
    with pytest.raises(ApiError) as invalid:
        kube.replace(istag, oc_tag_body(namespace, unknown, namespace))
    assert invalid.value.status == 422


def test_tagging_into_another_namespace_creates_the_stream_and_needs_rbac(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    source_stream(kube, namespace)
    image = simulate.import_image(kube, namespace, "app", "latest")
    prod = f"{namespace}-prod"
    create_namespace(kube, prod)
    token = service_account_token(kube, prod, "promoter")
    as_sa = Kube(control_plane.url, token, control_plane.ca_file)
    istag = path_for(IMAGE, "imagestreamtags", prod, "app:stable")
    body = oc_tag_body(prod, image.image, namespace)

    with pytest.raises(ApiError) as refused:
        as_sa.replace(istag, body)
    assert refused.value.status == 403
    assert 'cannot update resource "imagestreamtags"' in refused.value.body["message"]

    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{prod}-tagger"},
            "rules": [
                {
                    "apiGroups": ["image.openshift.io"],
                    "resources": ["imagestreamtags", "imagestreams", "imagestreams/layers"],
                    "verbs": ["get", "create", "update"],
                }
            ],
        }
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tagger", "namespace": prod},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{prod}-tagger",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "promoter", "namespace": prod}],
        }
    )
    # Allowed to tag in prod, not to pull from the source namespace: OpenShift's tag
    # verifier refuses it as an invalid spec tag.
    no_layers = eventually_allowed(lambda: _refusal(as_sa, istag, body))
    assert no_layers.status == 422
    assert "Forbidden" in no_layers.body["message"]

    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tagger", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{prod}-tagger",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "promoter", "namespace": prod}],
        }
    )
    # The grant reaches the authorizer's cache within moments: until then, still a 422.
    deadline = time.monotonic() + 10
    while True:
        try:
            as_sa.replace(istag, body)
            break
        except ApiError as error:
            if error.status != 422 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    item = simulate.head(kube.get(path_for(IMAGE, "imagestreams", prod, "app")), "stable")
    assert item is not None
    assert item["image"] == image.image


def _refusal(client: Kube, path: str, body: dict[str, Any]) -> ApiError:
    try:
        client.replace(path, body)
    except ApiError as error:
        if error.status == 403:
            raise
        return error
    raise AssertionError("the tag was written without the right to pull from the source")
