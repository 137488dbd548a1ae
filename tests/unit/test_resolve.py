"""Tag resolution must match OpenShift's (library-go imageutil.ResolveLatestTaggedImage)."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.resolve import (
    ResolvedImage,
    TagRef,
    image_repository,
    resolve_all,
    resolve_tag,
    stream_repositories,
)

LOCAL_REPO = "image-registry.openshift-image-registry.svc:5000/demo/app"
PUBLIC_REPO = "default-route-openshift-image-registry.apps-crc.testing/demo/app"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def item(image: str, ref: str | None = None, created: str = "2025-01-10T10:15:02Z") -> Any:
    return {
        "created": created,
        "dockerImageReference": ref or f"quay.io/acme/app@{image}",
        "image": image,
        "generation": 2,
    }


def stream(
    *,
    spec_tags: list[Any] | None = None,
    status_tags: list[Any] | None = None,
    local: str | None = LOCAL_REPO,
) -> dict[str, Any]:
    status: dict[str, Any] = {"tags": status_tags or []}
    if local is not None:
        status["dockerImageRepository"] = local
    return {
        "metadata": {"name": "app", "namespace": "demo"},
        "spec": {"tags": spec_tags or []},
        "status": status,
    }


def spec_tag(name: str, policy: str = "Source") -> dict[str, Any]:
    return {
        "name": name,
        "from": {"kind": "DockerImage", "name": f"quay.io/acme/app:{name}"},
        "referencePolicy": {"type": policy},
    }


# The example of openshift-semantics.md: two imports of latest, newest first.
EXAMPLE = stream(
    spec_tags=[spec_tag("latest")],
    status_tags=[
        {"tag": "latest", "items": [item(B), item(A, created="2025-01-09T08:00:00Z")]},
    ],
)


class TestTagRef:
    def test_str_is_namespace_stream_tag(self) -> None:
        assert str(TagRef("demo", "app", "latest")) == "demo/app:latest"

    def test_parse_uses_default_namespace(self) -> None:
        assert TagRef.parse("app:v1", "demo") == TagRef("demo", "app", "v1")

    @pytest.mark.parametrize(
        "value",
        ["app", ":latest", "app:", "app:v1:v2", ""],
        ids=["no-colon", "empty-stream", "empty-tag", "two-colons", "empty"],
    )
    def test_parse_rejects_with_a_human_message(self, value: str) -> None:
        with pytest.raises(ValueError, match=r'write it as "stream:tag"'):
            TagRef.parse(value, "demo")


@pytest.mark.parametrize(
    ("body", "tag", "expected"),
    [
        (EXAMPLE, "latest", ResolvedImage(f"quay.io/acme/app@{B}", B, "2025-01-10T10:15:02Z")),
        (
            stream(
                spec_tags=[spec_tag("latest", "Local")],
                status_tags=[{"tag": "latest", "items": [item(B)]}],
            ),
            "latest",
            ResolvedImage(f"{LOCAL_REPO}@{B}", B, "2025-01-10T10:15:02Z"),
        ),
        (
            stream(
                spec_tags=[spec_tag("latest", "Local")],
                status_tags=[{"tag": "latest", "items": [item(B)]}],
                local=None,
            ),
            "latest",
            ResolvedImage(f"quay.io/acme/app@{B}", B, "2025-01-10T10:15:02Z"),
        ),
        (
            stream(
                spec_tags=[spec_tag("latest", "Local")],
                status_tags=[
                    {"tag": "latest", "items": [{"dockerImageReference": "quay.io/x/y@" + B}]}
                ],
            ),
            "latest",
            ResolvedImage(f"quay.io/x/y@{B}", "", None),
        ),
        (
            stream(status_tags=[{"tag": "pushed", "items": [item(A, f"{LOCAL_REPO}@{A}")]}]),
            "pushed",
            ResolvedImage(f"{LOCAL_REPO}@{A}", A, "2025-01-10T10:15:02Z"),
        ),
        (
            stream(
                spec_tags=[spec_tag("latest", "Local")],
                status_tags=[{"tag": "latest", "items": [item(B)]}],
                local=LOCAL_REPO + ":v1",
            ),
            "latest",
            ResolvedImage(f"{LOCAL_REPO}@{B}", B, "2025-01-10T10:15:02Z"),
        ),
        (
            stream(
                status_tags=[
                    {"tag": "latest", "items": [item(B)]},
                    {"tag": "latest", "items": [item(A)]},
                ]
            ),
            "latest",
            ResolvedImage(f"quay.io/acme/app@{B}", B, "2025-01-10T10:15:02Z"),
        ),
    ],
    ids=[
        "source-policy-takes-items0-reference",
        "local-policy-pulls-through-internal-registry",
        "local-policy-without-internal-registry-falls-back",
        "local-policy-without-image-id-falls-back",
        "status-only-tag-resolves",
        "local-repository-tag-is-dropped",
        "first-status-entry-wins",
    ],
)
def test_resolve_tag(body: dict[str, Any], tag: str, expected: ResolvedImage) -> None:
    assert resolve_tag(body, tag) == expected


@pytest.mark.parametrize(
    ("body", "tag"),
    [
        (EXAMPLE, "v2"),
        (stream(spec_tags=[spec_tag("v2")]), "v2"),
        (stream(status_tags=[{"tag": "v2", "items": []}]), "v2"),
        (stream(status_tags=[{"tag": "v2"}]), "v2"),
        (stream(status_tags=[{"tag": "v2", "items": [{"image": A}]}]), "v2"),
        ({}, "latest"),
        ({"status": {"tags": "garbage"}}, "latest"),
    ],
    ids=[
        "no-status-entry",
        "spec-only-tag-not-imported-yet",
        "empty-items",
        "items-missing",
        "item-without-reference",
        "empty-body",
        "malformed-status",
    ],
)
def test_resolve_tag_unresolved(body: dict[str, Any], tag: str) -> None:
    assert resolve_tag(body, tag) is None


def test_resolve_all_resolves_every_status_tag_and_skips_the_rest() -> None:
    body = stream(
        spec_tags=[spec_tag("latest", "Local"), spec_tag("never")],
        status_tags=[
            {"tag": "latest", "items": [item(B)]},
            {"tag": "pushed", "items": [item(A, f"{LOCAL_REPO}@{A}")]},
            {"tag": "failed", "items": []},
        ],
    )
    assert resolve_all(body) == {
        "latest": ResolvedImage(f"{LOCAL_REPO}@{B}", B, "2025-01-10T10:15:02Z"),
        "pushed": ResolvedImage(f"{LOCAL_REPO}@{A}", A, "2025-01-10T10:15:02Z"),
    }


@pytest.mark.parametrize(
    ("pull_spec", "repository"),
    [
        ("app", "app"),
        ("app:v1", "app"),
        ("quay.io/acme/app", "quay.io/acme/app"),
        ("quay.io/acme/app:v1", "quay.io/acme/app"),
        (f"quay.io/acme/app@{A}", "quay.io/acme/app"),
        (f"quay.io/acme/app:v1@{A}", "quay.io/acme/app"),
        ("host:5000/ns/app:v1", "host:5000/ns/app"),
        ("host:5000/ns/app", "host:5000/ns/app"),
        (f"{LOCAL_REPO}@{A}", LOCAL_REPO),
        ("docker.io/library/nginx:1.27", "docker.io/library/nginx"),
    ],
    ids=[
        "bare-name",
        "bare-name-tag",
        "no-tag",
        "tag",
        "digest",
        "tag-and-digest",
        "port-and-tag",
        "port-no-tag",
        "internal-registry-digest",
        "no-docker-hub-normalization",
    ],
)
def test_image_repository(pull_spec: str, repository: str) -> None:
    assert image_repository(pull_spec) == repository


def test_stream_repositories_collects_every_place_an_image_may_come_from() -> None:
    body = stream(
        spec_tags=[
            spec_tag("latest"),
            {"name": "alias", "from": {"kind": "ImageStreamTag", "name": "app:latest"}},
            {"name": "mirror", "from": {"kind": "DockerImage", "name": "mirror:5000/acme/app"}},
        ],
        status_tags=[
            {"tag": "latest", "items": [item(B), item(A, "old.example.com/acme/app@" + A)]},
            {"tag": "pushed", "items": [item(A, f"{LOCAL_REPO}@{A}")]},
        ],
    )
    body["status"]["publicDockerImageRepository"] = PUBLIC_REPO
    body["spec"]["dockerImageRepository"] = "quay.io/acme/legacy"
    assert stream_repositories(body) == {
        LOCAL_REPO,
        PUBLIC_REPO,
        "quay.io/acme/legacy",
        "quay.io/acme/app",
        "old.example.com/acme/app",
        "mirror:5000/acme/app",
    }


def test_stream_repositories_of_an_empty_stream_is_empty() -> None:
    assert stream_repositories({}) == frozenset()
