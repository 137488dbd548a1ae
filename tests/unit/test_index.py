"""Projecting watched bodies into the small records and index keys the operator keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestream_trigger.api import (
    ALLOWED_NAMESPACES_ANNOTATION,
    POD_SPEC_PATHS,
    TRIGGERS_ANNOTATION,
    TargetKind,
)
from imagestream_trigger.decide import Container
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.index import (
    BuildConfigInfo,
    ObjectRef,
    StreamInfo,
    buildconfig_info,
    buildconfig_keys,
    stream_info,
    stream_keys,
    trigger_info,
    trigger_keys,
    workload_info,
    workload_keys,
)
from imagestream_trigger.resolve import ResolvedImage, TagRef
from imagestream_trigger.triggers import ContainerSelector, ProblemCode

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
REGISTRY = "image-registry.openshift-image-registry.svc:5000"
PUBLIC = "default-route-openshift-image-registry.apps-crc.testing"
CREATED = "2025-01-10T10:15:02Z"

WORKLOAD_KINDS = [
    TargetKind.Deployment,
    TargetKind.StatefulSet,
    TargetKind.DaemonSet,
    TargetKind.CronJob,
]


# -- bodies as the API server returns them ------------------------------------------------


def imagestream(
    *, namespace: str = "demo", name: str = "app", allowed: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": "uid-is"}
    if allowed is not None:
        metadata["annotations"] = {ALLOWED_NAMESPACES_ANNOTATION: allowed}
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": metadata,
        "spec": {
            "lookupPolicy": {"local": False},
            "tags": [
                {
                    "name": "latest",
                    "from": {"kind": "DockerImage", "name": "quay.io/acme/app:latest"},
                    "referencePolicy": {"type": "Source"},
                },
                {
                    "name": "local",
                    "from": {"kind": "DockerImage", "name": "quay.io/acme/app:local"},
                    "referencePolicy": {"type": "Local"},
                },
                {
                    "name": "pending",
                    "from": {"kind": "DockerImage", "name": "quay.io/acme/app:pending"},
                },
            ],
        },
        "status": {
            "dockerImageRepository": f"{REGISTRY}/{namespace}/{name}",
            "publicDockerImageRepository": f"{PUBLIC}/{namespace}/{name}",
            "tags": [
                {
                    "tag": "latest",
                    "items": [
                        {
                            "created": CREATED,
                            "dockerImageReference": f"quay.io/acme/app@{B}",
                            "image": B,
                            "generation": 2,
                        },
                        {
                            "created": "2025-01-09T08:00:00Z",
                            "dockerImageReference": f"quay.io/acme/app@{A}",
                            "image": A,
                            "generation": 1,
                        },
                    ],
                },
                {
                    "tag": "local",
                    "items": [
                        {
                            "created": CREATED,
                            "dockerImageReference": f"quay.io/acme/app@{C}",
                            "image": C,
                        }
                    ],
                },
                # Pushed into the integrated registry: no spec entry.
                {
                    "tag": "pushed",
                    "items": [
                        {
                            "created": CREATED,
                            "dockerImageReference": f"{REGISTRY}/{namespace}/{name}@{A}",
                            "image": A,
                        }
                    ],
                },
                # Import not done yet: no items.
                {"tag": "pending", "items": []},
            ],
        },
    }


def field_path(kind: str, selector: str = '?(@.name=="web")', *, init: bool = False) -> str:
    base = ".".join(POD_SPEC_PATHS[TargetKind(kind)])
    return f"{base}.{'initContainers' if init else 'containers'}[{selector}].image"


def trigger_entry(
    kind: str, stream_tag: str = "app:latest", namespace: str | None = None, **extra: Any
) -> dict[str, Any]:
    source: dict[str, Any] = {"kind": "ImageStreamTag", "name": stream_tag}
    if namespace is not None:
        source["namespace"] = namespace
    return {"from": source, "fieldPath": field_path(kind), **extra}


def workload(
    kind: str,
    *,
    name: str = "web",
    namespace: str = "demo",
    annotation: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "resourceVersion": "4711",
        "labels": labels if labels is not None else {"app": "web", "tier": "frontend"},
    }
    if annotations is not None or annotation is not None:
        metadata["annotations"] = dict(annotations or {})
        if annotation is not None:
            metadata["annotations"][TRIGGERS_ANNOTATION] = annotation
    pod = {
        "containers": [
            {"name": "web", "image": f"quay.io/acme/app@{A}"},
            {"name": "proxy", "image": "docker.io/envoyproxy/envoy:v1.31"},
        ],
        "initContainers": [{"name": "setup", "image": "quay.io/acme/tools:v1"}],
    }
    template = {"metadata": {"labels": {"app": "web"}}, "spec": pod}
    if kind == TargetKind.CronJob:
        spec: dict[str, Any] = {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": template}},
        }
        api_version = "batch/v1"
    else:
        spec = {"selector": {"matchLabels": {"app": "web"}}, "template": template}
        api_version = "apps/v1"
    return {"apiVersion": api_version, "kind": str(kind), "metadata": metadata, "spec": spec}


EXPECTED_CONTAINERS = (
    Container(name="web", image=f"quay.io/acme/app@{A}", init=False, index=0),
    Container(name="proxy", image="docker.io/envoyproxy/envoy:v1.31", init=False, index=1),
    Container(name="setup", image="quay.io/acme/tools:v1", init=True, index=0),
)


def buildconfig(
    *,
    namespace: str = "demo",
    name: str = "web",
    spec_triggers: list[dict[str, Any]] | None = None,
    status_triggers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "uid-bc",
            "labels": {"app": "web"},
            "resourceVersion": "99",
        },
        "spec": {
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "triggers": spec_triggers or [],
        },
        "status": {"lastVersion": 3},
    }
    if status_triggers is not None:
        body["status"]["imageChangeTriggers"] = status_triggers
    return body


def image_trigger(
    spec: Any, *, namespace: str = "demo", name: str = "follow-app", generation: int = 3
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "imagestream-trigger.dev/v1alpha1",
        "kind": "ImageTrigger",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "uid-it",
            "generation": generation,
        },
        "status": {"observedGeneration": 2, "image": f"quay.io/acme/app@{A}"},
    }
    if spec is not None:
        body["spec"] = spec
    return body


# -- ImageStreams ---------------------------------------------------------------------------


def test_stream_info_resolves_every_tag_that_has_an_image() -> None:
    info = stream_info(imagestream())
    assert (info.namespace, info.name) == ("demo", "app")
    assert dict(info.tags) == {
        "latest": ResolvedImage(f"quay.io/acme/app@{B}", B, CREATED),
        # referencePolicy Local: pulled through the integrated registry.
        "local": ResolvedImage(f"{REGISTRY}/demo/app@{C}", C, CREATED),
        # Status-only tags resolve too.
        "pushed": ResolvedImage(f"{REGISTRY}/demo/app@{A}", A, CREATED),
    }
    assert "pending" not in info.tags


def test_stream_info_repositories_cover_every_place_the_stream_is_pulled_from() -> None:
    info = stream_info(imagestream())
    assert info.repositories == frozenset(
        {"quay.io/acme/app", f"{REGISTRY}/demo/app", f"{PUBLIC}/demo/app"}
    )


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        pytest.param(None, frozenset(), id="no-annotation"),
        pytest.param("", frozenset(), id="empty"),
        pytest.param(" , ,", frozenset(), id="only-separators"),
        pytest.param("team-a", frozenset({"team-a"}), id="one"),
        pytest.param("team-a,team-b", frozenset({"team-a", "team-b"}), id="two"),
        pytest.param(" team-a ,  team-b,, ", frozenset({"team-a", "team-b"}), id="spaces"),
        pytest.param("*", frozenset({"*"}), id="star"),
        pytest.param(" * ", frozenset({"*"}), id="star-with-spaces"),
    ],
)
def test_stream_info_parses_allowed_namespaces(
    annotation: str | None, expected: frozenset[str]
) -> None:
    assert stream_info(imagestream(allowed=annotation)).allowed_namespaces == expected


@pytest.mark.parametrize(
    ("allowed", "namespace", "expected"),
    [
        pytest.param(None, "demo", True, id="own-namespace-always"),
        pytest.param("team-b", "demo", True, id="own-namespace-even-if-not-listed"),
        pytest.param(None, "team-a", False, id="other-namespace-without-annotation"),
        pytest.param("", "team-a", False, id="other-namespace-empty-annotation"),
        pytest.param("team-a, team-b", "team-a", True, id="listed"),
        pytest.param("team-a, team-b", "team-b", True, id="listed-after-space"),
        pytest.param("team-b", "team-a", False, id="not-listed"),
        pytest.param("team-ab", "team-a", False, id="no-prefix-match"),
        pytest.param("*", "anything", True, id="star-allows-any"),
        pytest.param("team-b, *", "team-a", True, id="star-among-names"),
    ],
)
def test_stream_allows(allowed: str | None, namespace: str, expected: bool) -> None:
    assert stream_info(imagestream(allowed=allowed)).allows(namespace) is expected


def test_stream_keys() -> None:
    keys = stream_keys(imagestream(namespace="shared", name="base"))
    assert list(keys) == [("stream", "shared", "base")]
    info = keys[("stream", "shared", "base")]
    assert isinstance(info, StreamInfo)
    assert info.name == "base"


# -- workloads --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_workload_info_projects_each_kind(kind: TargetKind) -> None:
    annotation = json.dumps([trigger_entry(kind)])
    body = workload(kind, annotation=annotation, annotations={"team": "shop"})
    info = workload_info(kind, body, native=True)

    assert info.ref == ObjectRef(body["apiVersion"], str(kind), "demo", "web", "uid-web")
    assert info.kind is kind
    assert info.labels == {"app": "web", "tier": "frontend"}
    assert info.containers == EXPECTED_CONTAINERS
    assert info.annotation == annotation
    assert info.annotations == {"team": "shop", TRIGGERS_ANNOTATION: annotation}
    assert info.resource_version == "4711"
    assert info.problems == ()
    assert len(info.triggers) == 1
    trigger = info.triggers[0]
    assert trigger.source == TagRef("demo", "app", "latest")
    assert trigger.container == ContainerSelector(init=False, index=None, name="web")
    assert trigger.paused is False
    assert trigger.field_path == field_path(kind)


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_workload_keys_for_each_kind(kind: TargetKind) -> None:
    body = workload(kind, annotation=json.dumps([trigger_entry(kind)]))
    keys = workload_keys(kind, body, native=True)
    assert set(keys) == {
        ("object", kind, "demo", "web"),
        ("in", kind, "demo"),
        ("follows", "demo", "app"),
    }
    assert keys[("object", kind, "demo", "web")] == workload_info(kind, body, native=True)
    assert keys[("in", kind, "demo")] == "web"
    assert keys[("follows", "demo", "app")] == (kind, "demo", "web")


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_cross_namespace_trigger_follows_the_stream_in_its_namespace(kind: TargetKind) -> None:
    body = workload(kind, annotation=json.dumps([trigger_entry(kind, "base:v1", "shared")]))
    info = workload_info(kind, body, native=True)
    assert info.triggers[0].source == TagRef("shared", "base", "v1")
    keys = workload_keys(kind, body, native=True)
    assert keys[("follows", "shared", "base")] == (kind, "demo", "web")
    assert ("follows", "demo", "base") not in keys


def test_every_followed_stream_gets_a_key() -> None:
    kind = TargetKind.Deployment
    annotation = json.dumps(
        [
            trigger_entry(kind, "app:latest"),
            {
                "from": {"kind": "ImageStreamTag", "name": "tools:v1", "namespace": "shared"},
                "fieldPath": field_path(kind, "0", init=True),
            },
        ]
    )
    keys = workload_keys(kind, workload(kind, annotation=annotation), native=True)
    follows = {key for key in keys if key[0] == "follows"}
    assert follows == {("follows", "demo", "app"), ("follows", "shared", "tools")}


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_native_off_ignores_the_annotation(kind: TargetKind) -> None:
    annotation = json.dumps([trigger_entry(kind)])
    body = workload(kind, annotation=annotation)
    info = workload_info(kind, body, native=False)
    assert info.annotation is None
    assert info.triggers == ()
    assert info.problems == ()
    # Still needed to write our own record without clobbering the map.
    assert info.annotations == {TRIGGERS_ANNOTATION: annotation}
    assert info.containers == EXPECTED_CONTAINERS
    keys = workload_keys(kind, body, native=False)
    assert set(keys) == {("object", kind, "demo", "web"), ("in", kind, "demo")}


def test_native_off_does_not_report_problems_of_a_broken_annotation() -> None:
    info = workload_info(
        TargetKind.Deployment, workload("Deployment", annotation="{"), native=False
    )
    assert (info.triggers, info.problems) == ((), ())


@pytest.mark.parametrize(
    ("kind", "annotation", "codes", "follows"),
    [
        pytest.param(
            TargetKind.Deployment,
            json.dumps([trigger_entry("Deployment", paused="false")]),
            [ProblemCode.PausedNotBoolean],
            False,
            id="paused-as-string-voids-everything",
        ),
        pytest.param(
            TargetKind.Deployment, "[{not json", [ProblemCode.InvalidJSON], False, id="not-json"
        ),
        pytest.param(
            TargetKind.CronJob,
            # A Deployment's fieldPath on a CronJob: this entry only is ignored.
            json.dumps(
                [
                    {
                        "from": {"kind": "ImageStreamTag", "name": "app:latest"},
                        "fieldPath": field_path("Deployment"),
                    }
                ]
            ),
            [ProblemCode.InvalidFieldPath],
            False,
            id="cronjob-with-deployment-path",
        ),
        pytest.param(
            TargetKind.StatefulSet,
            json.dumps(
                [
                    {
                        "from": {"kind": "DockerImage", "name": "quay.io/acme/app:latest"},
                        "fieldPath": field_path("StatefulSet", "1"),
                    },
                    trigger_entry("StatefulSet"),
                ]
            ),
            [ProblemCode.UnsupportedFromKind],
            True,
            id="one-bad-entry-others-still-follow",
        ),
    ],
)
def test_annotation_problems_are_kept_on_the_record(
    kind: TargetKind, annotation: str, codes: list[str], follows: bool
) -> None:
    body = workload(kind, annotation=annotation)
    info = workload_info(kind, body, native=True)
    assert [p.reason for p in info.problems] == codes
    assert info.annotation == annotation
    assert bool(info.triggers) is follows
    keys = workload_keys(kind, body, native=True)
    assert (("follows", "demo", "app") in keys) is follows


def test_workload_without_annotations() -> None:
    kind = TargetKind.DaemonSet
    info = workload_info(kind, workload(kind), native=True)
    assert info.annotation is None
    assert info.annotations is None
    assert (info.triggers, info.problems) == ((), ())
    assert info.containers == EXPECTED_CONTAINERS


def test_workload_with_other_annotations_only() -> None:
    kind = TargetKind.Deployment
    info = workload_info(kind, workload(kind, annotations={"team": "shop"}), native=True)
    assert info.annotation is None
    assert info.annotations == {"team": "shop"}
    assert info.triggers == ()


# -- BuildConfigs -----------------------------------------------------------------------------


def change_trigger(name: str, namespace: str | None, image: str | None) -> dict[str, Any]:
    source: dict[str, Any] = {"kind": "ImageStreamTag", "name": name}
    if namespace is not None:
        source["namespace"] = namespace
    record: dict[str, Any] = {"from": source, "lastTriggerTime": CREATED}
    if image is not None:
        record["lastTriggeredImageID"] = image
    return record


@pytest.mark.parametrize(
    ("spec_triggers", "status_triggers", "expected"),
    [
        pytest.param(None, None, frozenset(), id="never-triggered"),
        pytest.param(
            None,
            [change_trigger("app:latest", "shared", f"quay.io/acme/app@{B}")],
            frozenset({("shared/app:latest", f"quay.io/acme/app@{B}")}),
            id="status-with-namespace",
        ),
        pytest.param(
            None,
            [change_trigger("app:latest", None, f"quay.io/acme/app@{B}")],
            frozenset({("demo/app:latest", f"quay.io/acme/app@{B}")}),
            id="status-namespace-defaults-to-buildconfig",
        ),
        pytest.param(
            None,
            [change_trigger("app:latest", "", f"quay.io/acme/app@{B}")],
            frozenset({("demo/app:latest", f"quay.io/acme/app@{B}")}),
            id="status-empty-namespace-defaults-to-buildconfig",
        ),
        pytest.param(
            None,
            [
                change_trigger("app:latest", None, f"quay.io/acme/app@{B}"),
                change_trigger("tools:v1", "shared", f"quay.io/acme/tools@{A}"),
            ],
            frozenset(
                {
                    ("demo/app:latest", f"quay.io/acme/app@{B}"),
                    ("shared/tools:v1", f"quay.io/acme/tools@{A}"),
                }
            ),
            id="several-sources",
        ),
        pytest.param(
            None,
            [change_trigger("app:latest", None, None)],
            frozenset(),
            id="status-entry-not-yet-triggered",
        ),
        pytest.param(
            [
                {
                    "type": "ImageChange",
                    "imageChange": {
                        "from": {"kind": "ImageStreamTag", "name": "app:latest"},
                        "lastTriggeredImageID": f"quay.io/acme/app@{B}",
                    },
                }
            ],
            None,
            frozenset(),
            id="spec-lastTriggeredImageID-ignored",
        ),
        pytest.param(
            [
                {
                    "type": "ImageChange",
                    "imageChange": {
                        "from": {"kind": "ImageStreamTag", "name": "app:latest"},
                        "lastTriggeredImageID": f"quay.io/acme/app@{B}",
                    },
                }
            ],
            [change_trigger("app:latest", None, f"quay.io/acme/app@{A}")],
            frozenset({("demo/app:latest", f"quay.io/acme/app@{A}")}),
            id="status-wins-over-spec",
        ),
    ],
)
def test_buildconfig_built_comes_from_status_only(
    spec_triggers: list[dict[str, Any]] | None,
    status_triggers: list[dict[str, Any]] | None,
    expected: frozenset[tuple[str, str]],
) -> None:
    info = buildconfig_info(
        buildconfig(spec_triggers=spec_triggers, status_triggers=status_triggers)
    )
    assert info.built == expected


def test_buildconfig_info_and_keys() -> None:
    body = buildconfig(namespace="demo", name="web")
    keys = buildconfig_keys(body)
    assert set(keys) == {
        ("object", TargetKind.BuildConfig, "demo", "web"),
        ("in", TargetKind.BuildConfig, "demo"),
    }
    info = keys[("object", TargetKind.BuildConfig, "demo", "web")]
    assert isinstance(info, BuildConfigInfo)
    assert info.ref == ObjectRef("build.openshift.io/v1", "BuildConfig", "demo", "web", "uid-bc")
    assert info.labels == {"app": "web"}
    assert info.resource_version == "99"
    assert keys[("in", TargetKind.BuildConfig, "demo")] == "web"


def test_buildconfig_without_status() -> None:
    body = buildconfig()
    del body["status"]
    assert buildconfig_info(body).built == frozenset()


# -- ImageTriggers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param({"imageStreamTag": "app:latest"}, TagRef("demo", "app", "latest"), id="own"),
        pytest.param(
            {"imageStreamTag": "base:v1", "namespace": "shared"},
            TagRef("shared", "base", "v1"),
            id="cross-namespace",
        ),
    ],
)
def test_trigger_info_valid_spec(source: dict[str, str], expected: TagRef) -> None:
    body = image_trigger({"source": source, "targets": [{"kind": "Deployment", "name": "web"}]})
    info = trigger_info(body)
    assert info.ref == ObjectRef(
        "imagestream-trigger.dev/v1alpha1", "ImageTrigger", "demo", "follow-app", "uid-it"
    )
    assert info.generation == 3
    assert info.error is None
    assert info.spec is not None
    assert info.spec.targets[0].name == "web"
    assert info.source == expected
    assert info.status == {"observedGeneration": 2, "image": f"quay.io/acme/app@{A}"}

    keys = trigger_keys(body)
    assert set(keys) == {
        ("trigger", "demo", "follow-app"),
        ("trigger-in", "demo"),
        ("source", expected.namespace, expected.stream),
    }
    assert keys[("trigger", "demo", "follow-app")] == info
    assert keys[("trigger-in", "demo")] == "follow-app"
    assert keys[("source", expected.namespace, expected.stream)] == ("demo", "follow-app")


@pytest.mark.parametrize(
    ("spec", "mentions"),
    [
        pytest.param(
            {"source": {"imageStreamTag": "app"}, "targets": [{"kind": "Deployment", "name": "w"}]},
            "spec.source.imageStreamTag",
            id="tag-without-colon",
        ),
        pytest.param(
            {"source": {"imageStreamTag": "app:latest"}, "targets": []},
            "spec.targets",
            id="no-targets",
        ),
        pytest.param(
            {"source": {"imageStreamTag": "app:latest"}, "targets": [{"kind": "Pod", "name": "w"}]},
            "spec.targets[0].kind",
            id="unknown-kind",
        ),
        pytest.param(None, "spec.source", id="no-spec"),
    ],
)
def test_trigger_info_invalid_spec(spec: Any, mentions: str) -> None:
    body = image_trigger(spec)
    info = trigger_info(body)
    assert isinstance(info.error, InvalidSpecError)
    assert mentions in info.error.message
    assert info.spec is None
    assert info.source is None
    assert info.generation == 3

    keys = trigger_keys(body)
    assert set(keys) == {("trigger", "demo", "follow-app"), ("trigger-in", "demo")}
    assert not any(key[0] == "source" for key in keys)


def test_trigger_info_without_generation_or_status() -> None:
    body = image_trigger({"source": {"imageStreamTag": "app:latest"}, "targets": []})
    del body["metadata"]["generation"]
    del body["status"]
    info = trigger_info(body)
    assert info.generation == 0
    assert info.status == {}


def test_local_index_replaces_an_objects_keys_whole_and_forgets_it_on_delete() -> None:
    from imagestream_trigger.index import LocalIndex

    local = LocalIndex()
    assert local.replace("uid-1", {("in", "Deployment", "ns"): "a", ("follows", "ns", "app"): 1})
    assert local.replace("uid-2", {("in", "Deployment", "ns"): "b"})
    assert sorted(local.get(("in", "Deployment", "ns")) or []) == ["a", "b"]
    # The same keys again: nothing changed, which the handlers use to skip a fan-out.
    assert not local.replace("uid-2", {("in", "Deployment", "ns"): "b"})
    # New keys drop the old ones of that object only.
    assert local.replace("uid-1", {("in", "Deployment", "ns"): "a"})
    assert local.get(("follows", "ns", "app")) is None
    local.remove("uid-1")
    assert local.get(("in", "Deployment", "ns")) == ["b"]
    assert len(local) == 1
