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


def test_tagref_str_is_namespace_stream_tag() -> None:
    assert str(TagRef("demo", "app", "latest")) == "demo/app:latest"


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


# Odd bodies: the CRD (or a loose schema) accepts them; nothing may raise.

RESOLVED_B = ResolvedImage(f"quay.io/acme/app@{B}", B, "2025-01-10T10:15:02Z")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            stream(
                status_tags=[
                    {"tag": "latest", "items": [item(B)]},
                    {"tag": "latest", "items": [item(A)]},
                    {"tag": "latest", "items": []},
                ]
            ),
            {"latest": RESOLVED_B},
        ),
        (
            stream(
                status_tags=[
                    {"tag": "latest", "items": []},
                    {"tag": "latest", "items": [item(A)]},
                ]
            ),
            {},
        ),
        (
            stream(
                spec_tags=[spec_tag("latest", "Source"), spec_tag("latest", "Local")],
                status_tags=[{"tag": "latest", "items": [item(B)]}],
            ),
            {"latest": RESOLVED_B},
        ),
        (
            stream(
                spec_tags=[{"referencePolicy": {"type": "Local"}}, {"name": 7}, "x", None],
                status_tags=[{"tag": "latest", "items": [item(B)]}],
            ),
            {"latest": RESOLVED_B},
        ),
        (
            stream(
                status_tags=[
                    {"tag": "none", "items": None},
                    {"tag": "missing"},
                    {"tag": "empty", "items": []},
                    {"tag": "not-a-list", "items": {"0": item(A)}},
                    {"tag": "not-objects", "items": ["x", 1, None]},
                    {"tag": "", "items": [item(A)]},
                    {"items": [item(A)]},
                    {"tag": 5, "items": [item(A)]},
                    {"tag": None, "items": [item(A)]},
                    "latest",
                    None,
                    ["tag", "latest"],
                ]
            ),
            {},
        ),
        (
            stream(
                status_tags=[
                    {
                        "tag": "typed",
                        "items": [
                            {"dockerImageReference": 1, "image": B},
                            item(A),
                        ],
                    },
                    {
                        "tag": "odd",
                        "items": [{"dockerImageReference": "x@" + B, "image": ["x"], "created": 3}],
                    },
                ]
            ),
            {"odd": ResolvedImage("x@" + B, "", None)},
        ),
    ],
    ids=[
        "duplicate-status-tag-first-wins",
        "duplicate-status-tag-first-wins-even-if-empty",
        "duplicate-spec-tag-first-wins",
        "spec-tags-without-name",
        "entries-missing-or-odd",
        "non-string-fields-read-as-absent",
    ],
)
def test_resolve_all_of_odd_statuses(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert resolve_all(body) == expected
    for tag, image in expected.items():
        assert resolve_tag(body, tag) == image


@pytest.mark.parametrize(
    "body",
    [None, [], "stream", 1, {"status": []}, {"status": {"tags": {"latest": {}}}}, {"spec": 1}],
    ids=["none", "list", "string", "number", "status-list", "tags-mapping", "spec-number"],
)
def test_resolution_is_total(body: Any) -> None:
    assert resolve_all(body) == {}
    assert resolve_tag(body, "latest") is None
    assert stream_repositories(body) == frozenset()


def test_lone_surrogates_come_out_as_replacement_characters() -> None:
    # Only a body that did not come from the API server can hold one; it stores U+FFFD.
    body = stream(
        spec_tags=[spec_tag("t\ud800", "Local")],
        status_tags=[{"tag": "t\ud800", "items": [item("sha256:\udc00")]}],
        local="registry:5000/demo/app\ud83d",
    )
    resolved = resolve_all(body)
    assert resolved == {
        "t\ufffd": ResolvedImage(
            "registry:5000/demo/app\ufffd@sha256:\ufffd", "sha256:\ufffd", "2025-01-10T10:15:02Z"
        )
    }
    assert resolve_tag(body, "t\ud800") == resolved["t\ufffd"]
    for text in (*resolved, resolved["t\ufffd"].reference, *stream_repositories(body)):
        text.encode("utf-8")


def test_stream_repositories_skips_pull_specs_without_a_repository() -> None:
    body = stream(status_tags=[{"tag": "x", "items": [item(A, "@" + A), item(A, ":v1")]}], local="")
    body["spec"]["tags"] = [{"name": "x", "from": {"kind": "DockerImage", "name": 5}}]
    assert stream_repositories(body) == frozenset()


def test_image_repository_of_a_non_string_is_empty() -> None:
    assert image_repository(None) == ""  # type: ignore[arg-type]
    assert image_repository(["app:v1"]) == ""  # type: ignore[arg-type]


# -- Local with no dockerImageRepository in the status ----------------------------------
# openshift-controller-manager's tagRetriever: the repository becomes
# <internalRegistryHostname>/<namespace>/<stream>, then the Local rule applies; with no
# hostname configured the item's own reference is used.

HOST = "image-registry.openshift-image-registry.svc:5000"
NO_STATUS_REPO = stream(
    spec_tags=[spec_tag("latest", "Local"), spec_tag("plain")],
    status_tags=[
        {"tag": "latest", "items": [item(B)]},
        {"tag": "plain", "items": [item(A)]},
    ],
    local=None,
)


def test_local_without_a_status_repository_goes_through_the_internal_registry() -> None:
    resolved = resolve_tag(NO_STATUS_REPO, "latest", internal_registry=HOST)
    assert resolved == ResolvedImage(f"{HOST}/demo/app@{B}", B, "2025-01-10T10:15:02Z")
    # Only Local tags: a Source tag keeps the item's own reference.
    assert resolve_tag(NO_STATUS_REPO, "plain", internal_registry=HOST) == ResolvedImage(
        f"quay.io/acme/app@{A}", A, "2025-01-10T10:15:02Z"
    )
    assert resolve_all(NO_STATUS_REPO, internal_registry=HOST)["latest"] == resolved


def test_local_without_any_registry_hostname_keeps_the_items_reference() -> None:
    assert resolve_tag(NO_STATUS_REPO, "latest") == ResolvedImage(
        f"quay.io/acme/app@{B}", B, "2025-01-10T10:15:02Z"
    )


def test_a_status_repository_wins_over_the_internal_registry() -> None:
    body = stream(
        spec_tags=[spec_tag("latest", "Local")],
        status_tags=[{"tag": "latest", "items": [item(B)]}],
    )
    resolved = resolve_tag(body, "latest", internal_registry="elsewhere:5000")
    assert resolved is not None
    assert resolved.reference == f"{LOCAL_REPO}@{B}"


def test_the_internal_repository_counts_as_one_the_stream_is_pulled_from() -> None:
    assert f"{HOST}/demo/app" in stream_repositories(NO_STATUS_REPO, internal_registry=HOST)
    assert f"{HOST}/demo/app" not in stream_repositories(NO_STATUS_REPO)
