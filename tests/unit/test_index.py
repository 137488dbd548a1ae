"""Projecting watched bodies into small records, and the typed indexes that keep them."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from imagestream_trigger.api import (
    ALLOWED_NAMESPACES_ANNOTATION,
    LAST_APPLIED_ANNOTATION,
    TRIGGERS_ANNOTATION,
    TargetKind,
)
from imagestream_trigger.frozen import FrozenJson
from imagestream_trigger.index import (
    BuildConfigIndex,
    Indexes,
    ObjectRef,
    StreamIndex,
    TriggerIndex,
    WorkloadIndex,
    WorkloadInfo,
    buildconfig_info,
    stream_info,
    trigger_info,
    workload_info,
)
from imagestream_trigger.kinds import KINDS, Container
from imagestream_trigger.report import status as status_model
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
    base = ".".join(KINDS[TargetKind(kind)].pod_spec)
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
            "strategy": {
                "type": "Docker",
                "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "base:v1"}},
            },
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


def test_stream_info_ignores_status_only_noise_and_move_times() -> None:
    body = imagestream()
    noisy = json.loads(json.dumps(body))
    noisy["metadata"]["generation"] = 7
    noisy["metadata"]["resourceVersion"] = "999"
    noisy["status"]["tags"][0]["conditions"] = [{"type": "ImportSuccess", "status": "False"}]
    assert stream_info(noisy) == stream_info(body)
    # When each tag moved is bookkeeping, never a difference.
    timed = dataclasses.replace(stream_info(body), moved_at={"latest": 12.5})
    assert timed == stream_info(body)


def test_stream_index_put_get_delete() -> None:
    index = StreamIndex()
    first = stream_info(imagestream(namespace="shared", name="base"))
    assert index.put(first) is None
    assert index.get("shared", "base") == first
    assert index.get("demo", "base") is None
    assert len(index) == 1
    assert list(index) == [first]
    # Putting again returns what it replaced.
    second = stream_info(imagestream(namespace="shared", name="base", allowed="*"))
    assert index.put(second) == first
    assert index.get("shared", "base") == second
    assert len(index) == 1
    assert index.delete("shared", "base") == second
    assert index.delete("shared", "base") is None
    assert len(index) == 0


# -- workloads --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_workload_info_projects_each_kind(kind: TargetKind) -> None:
    annotation = json.dumps([trigger_entry(kind)])
    body = workload(kind, annotation=annotation, annotations={"team": "shop"})
    info = workload_info(kind, body, native=True)

    assert info.ref == ObjectRef(body["apiVersion"], str(kind), "demo", "web", "uid-web")
    assert info.kind is kind
    assert info.id == (str(kind), "demo", "web")
    assert info.labels == {"app": "web", "tier": "frontend"}
    assert info.containers == EXPECTED_CONTAINERS
    assert info.annotated is True
    # Of the annotations, a patch needs only to know the map exists and our own record.
    assert info.has_annotations is True
    assert info.last_applied is None
    assert info.annotations == {}
    assert info.problems == ()
    assert len(info.triggers) == 1
    trigger = info.triggers[0]
    assert trigger.source == TagRef("demo", "app", "latest")
    assert trigger.container == ContainerSelector(init=False, index=None, name="web")
    assert trigger.paused is False
    assert trigger.field_path == field_path(kind)


def test_workload_info_keeps_our_last_applied_record() -> None:
    record = json.dumps({"web": {"image": f"quay.io/acme/app@{B}"}})
    kind = TargetKind.Deployment
    body = workload(kind, annotations={"team": "shop", LAST_APPLIED_ANNOTATION: record})
    info = workload_info(kind, body, native=True)
    assert info.last_applied == record
    assert info.annotations == {LAST_APPLIED_ANNOTATION: record}
    assert info.annotated is False


def test_workload_info_compares_what_matters_to_a_decision() -> None:
    kind = TargetKind.Deployment
    annotation = json.dumps([trigger_entry(kind)])
    base = workload_info(kind, workload(kind, annotation=annotation), native=True)
    # Our record and the existence of the annotations map are not news.
    ours = workload(
        kind, annotation=annotation, annotations={LAST_APPLIED_ANNOTATION: '{"web":{}}'}
    )
    assert workload_info(kind, ours, native=True) == base
    # A status-only update (replicas, resourceVersion) projects to an equal record.
    status = workload(kind, annotation=annotation)
    status["metadata"]["resourceVersion"] = "4712"
    status["status"] = {"replicas": 3, "readyReplicas": 2}
    assert workload_info(kind, status, native=True) == base
    # Labels and images are news.
    relabelled = workload(kind, annotation=annotation, labels={"app": "web"})
    assert workload_info(kind, relabelled, native=True) != base
    moved = workload(kind, annotation=annotation)
    moved["spec"]["template"]["spec"]["containers"][0]["image"] = f"quay.io/acme/app@{B}"
    assert workload_info(kind, moved, native=True) != base


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_workload_index_by_id_namespace_and_followed_stream(kind: TargetKind) -> None:
    index = WorkloadIndex()
    info = workload_info(
        kind, workload(kind, annotation=json.dumps([trigger_entry(kind)])), native=True
    )
    assert index.put(info) is None
    assert index.get(kind, "demo", "web") == info
    assert index.get(kind, "other", "web") is None
    assert list(index.names_in(kind, "demo")) == ["web"]
    assert list(index.names_in(kind, "other")) == []
    assert index.followers("demo", "app") == ((str(kind), "demo", "web"),)
    assert index.followers("demo", "base") == ()
    assert index.annotated_count(kind) == 1
    assert index.annotated() == (info,)
    assert len(index) == 1


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_cross_namespace_trigger_follows_the_stream_in_its_namespace(kind: TargetKind) -> None:
    body = workload(kind, annotation=json.dumps([trigger_entry(kind, "base:v1", "shared")]))
    info = workload_info(kind, body, native=True)
    assert info.triggers[0].source == TagRef("shared", "base", "v1")
    index = WorkloadIndex()
    index.put(info)
    assert index.followers("shared", "base") == ((str(kind), "demo", "web"),)
    assert index.followers("demo", "base") == ()


def test_every_followed_stream_has_the_workload_as_follower() -> None:
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
    index = WorkloadIndex()
    index.put(workload_info(kind, workload(kind, annotation=annotation), native=True))
    assert index.followers("demo", "app") == (("Deployment", "demo", "web"),)
    assert index.followers("shared", "tools") == (("Deployment", "demo", "web"),)


def test_two_triggers_on_one_stream_follow_it_once() -> None:
    kind = TargetKind.Deployment
    annotation = json.dumps(
        [
            trigger_entry(kind, "app:latest"),
            {
                "from": {"kind": "ImageStreamTag", "name": "app:debug"},
                "fieldPath": field_path(kind, '?(@.name=="proxy")'),
            },
        ]
    )
    index = WorkloadIndex()
    info = workload_info(kind, workload(kind, annotation=annotation), native=True)
    index.put(info)
    assert index.followers("demo", "app") == (("Deployment", "demo", "web"),)
    index.delete(kind, "demo", "web")
    assert index.followers("demo", "app") == ()
    assert index._followers == {}


def test_workload_index_put_replaces_the_old_links() -> None:
    kind = TargetKind.Deployment
    index = WorkloadIndex()
    first = workload_info(
        kind, workload(kind, annotation=json.dumps([trigger_entry(kind)])), native=True
    )
    index.put(first)
    # The annotation now follows another stream: the old link goes.
    second = workload_info(
        kind,
        workload(kind, annotation=json.dumps([trigger_entry(kind, "base:v1", "shared")])),
        native=True,
    )
    assert index.put(second) == first
    assert index.followers("demo", "app") == ()
    assert index.followers("shared", "base") == (("Deployment", "demo", "web"),)
    assert index.annotated_count(kind) == 1
    # Then the annotation goes: no follower, no annotated count.
    third = workload_info(kind, workload(kind), native=True)
    assert index.put(third) == second
    assert index.followers("shared", "base") == ()
    assert index.annotated_count(kind) == 0
    assert index.annotated() == ()
    assert list(index.names_in(kind, "demo")) == ["web"]


def test_workload_index_delete_unlinks_everything() -> None:
    index = WorkloadIndex()
    for kind in WORKLOAD_KINDS:
        body = workload(kind, annotation=json.dumps([trigger_entry(kind)]))
        index.put(workload_info(kind, body, native=True))
    assert len(index) == 4
    assert len(index.followers("demo", "app")) == 4
    for kind in WORKLOAD_KINDS:
        assert index.delete(kind, "demo", "web") is not None
        assert index.delete(kind, "demo", "web") is None
        assert index.annotated_count(kind) == 0
    assert len(index) == 0
    assert index._by == {}
    assert index._names == {}
    assert index._followers == {}
    assert set(index._annotated.values()) == {0}


def test_workload_index_names_are_per_kind_and_namespace() -> None:
    index = WorkloadIndex()
    index.put(workload_info(TargetKind.Deployment, workload("Deployment", name="a"), native=True))
    index.put(workload_info(TargetKind.Deployment, workload("Deployment", name="b"), native=True))
    index.put(workload_info(TargetKind.StatefulSet, workload("StatefulSet", name="c"), native=True))
    other = workload("Deployment", name="d", namespace="other")
    index.put(workload_info(TargetKind.Deployment, other, native=True))
    assert sorted(index.names_in("Deployment", "demo")) == ["a", "b"]
    assert list(index.names_in("StatefulSet", "demo")) == ["c"]
    assert list(index.names_in("Deployment", "other")) == ["d"]
    assert index.annotated() == ()


@pytest.mark.parametrize("kind", WORKLOAD_KINDS, ids=str)
def test_native_off_ignores_the_annotation(kind: TargetKind) -> None:
    annotation = json.dumps([trigger_entry(kind)])
    body = workload(kind, annotation=annotation)
    info = workload_info(kind, body, native=False)
    assert info.annotated is False
    assert info.triggers == ()
    assert info.problems == ()
    # Still needed to write our own record without clobbering the map.
    assert info.has_annotations is True
    assert info.annotations == {}
    assert info.containers == EXPECTED_CONTAINERS
    index = WorkloadIndex()
    index.put(info)
    assert index.followers("demo", "app") == ()
    assert index.annotated_count(kind) == 0
    assert list(index.names_in(kind, "demo")) == ["web"]


def test_native_off_does_not_report_problems_of_a_broken_annotation() -> None:
    info = workload_info(
        TargetKind.Deployment, workload("Deployment", annotation="{"), native=False
    )
    assert (info.annotated, info.triggers, info.problems) == (False, (), ())


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
    # Annotated even when broken: its problems must be reported by a reconcile.
    assert info.annotated is True
    assert bool(info.triggers) is follows
    index = WorkloadIndex()
    index.put(info)
    assert bool(index.followers("demo", "app")) is follows
    assert index.annotated() == (info,)


def test_workload_without_annotations() -> None:
    kind = TargetKind.DaemonSet
    info = workload_info(kind, workload(kind), native=True)
    assert info.annotated is False
    assert info.has_annotations is False
    assert info.annotations is None
    assert (info.triggers, info.problems) == ((), ())
    assert info.containers == EXPECTED_CONTAINERS


def test_workload_with_other_annotations_only() -> None:
    kind = TargetKind.Deployment
    info = workload_info(kind, workload(kind, annotations={"team": "shop"}), native=True)
    assert info.annotated is False
    assert info.annotations == {}
    assert info.triggers == ()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"metadata": [], "spec": "x"}, id="wrong-types"),
        pytest.param(
            {"metadata": {"name": 1, "labels": {"a": 1, 2: "b"}, "annotations": []}},
            id="odd-metadata",
        ),
        pytest.param(
            {"metadata": {"annotations": {TRIGGERS_ANNOTATION: 5}}, "spec": {"template": []}},
            id="annotation-not-a-string",
        ),
        pytest.param(
            {
                "spec": {
                    "template": {"spec": {"containers": [None, {"name": 3}], "initContainers": {}}}
                }
            },
            id="odd-containers",
        ),
    ],
)
def test_workload_info_is_total(body: dict[str, Any]) -> None:
    info = workload_info(TargetKind.Deployment, body, native=True)
    assert isinstance(info, WorkloadInfo)
    assert info.annotated is False
    assert all(isinstance(v, str) for v in info.labels.values())
    assert all(c.name == "" or isinstance(c.name, str) for c in info.containers)


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
            frozenset({("demo/app:latest", f"quay.io/acme/app@{B}")}),
            id="spec-lastTriggeredImageID-before-4.8",
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
            frozenset(
                {
                    ("demo/app:latest", f"quay.io/acme/app@{A}"),
                    ("demo/app:latest", f"quay.io/acme/app@{B}"),
                }
            ),
            id="status-and-spec-both-count",
        ),
        pytest.param(
            [{"type": "ImageChange", "imageChange": {"lastTriggeredImageID": f"x@{B}"}}],
            None,
            frozenset({("demo/base:v1", f"x@{B}")}),
            id="spec-trigger-without-from-follows-the-strategy-image",
        ),
        pytest.param(
            [
                {
                    "type": "ImageChange",
                    "imageChange": {
                        "from": {"kind": "DockerImage", "name": "a:b"},
                        "lastTriggeredImageID": f"x@{B}",
                    },
                }
            ],
            None,
            frozenset(),
            id="spec-trigger-not-on-an-imagestreamtag",
        ),
    ],
)
def test_buildconfig_built_comes_from_status_and_from_the_pre_4_8_spec_field(
    spec_triggers: list[dict[str, Any]] | None,
    status_triggers: list[dict[str, Any]] | None,
    expected: frozenset[tuple[str, str]],
) -> None:
    info = buildconfig_info(
        buildconfig(spec_triggers=spec_triggers, status_triggers=status_triggers)
    )
    assert info.built == expected


def test_buildconfig_info_and_index() -> None:
    info = buildconfig_info(buildconfig(namespace="demo", name="web"))
    assert info.ref == ObjectRef("build.openshift.io/v1", "BuildConfig", "demo", "web", "uid-bc")
    assert info.labels == {"app": "web"}
    assert info.id == (TargetKind.BuildConfig, "demo", "web")
    index = BuildConfigIndex()
    assert index.put(info) is None
    assert index.get("demo", "web") == info
    assert list(index.names_in("demo")) == ["web"]
    assert list(index.names_in("other")) == []
    assert len(index) == 1
    assert index.delete("demo", "web") == info
    assert index.delete("demo", "web") is None
    assert index._by == {}
    assert index._names == {}


def test_buildconfig_builds_started_are_no_news() -> None:
    # status.imageChangeTriggers moves when a build starts: our own doing.
    bare = buildconfig_info(buildconfig())
    built = buildconfig_info(
        buildconfig(status_triggers=[change_trigger("app:latest", None, f"quay.io/acme/app@{B}")])
    )
    assert built == bare
    assert built.built != bare.built


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

    index = TriggerIndex()
    assert index.put(info) is None
    assert index.get("demo", "follow-app") == info
    assert index.in_namespace("demo") == (info,)
    assert index.in_namespace("shared") == ()
    assert index.following(expected.namespace, expected.stream) == (info,)
    assert index.following("demo", "other") == ()


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
        pytest.param("not an object", "spec.source", id="spec-not-an-object"),
    ],
)
def test_trigger_info_invalid_spec(spec: Any, mentions: str) -> None:
    body = image_trigger(spec)
    info = trigger_info(body)
    assert isinstance(info.error, str)
    assert mentions in info.error
    assert info.spec is None
    assert info.source is None
    assert info.generation == 3

    # Indexed by namespace (it must report InvalidSpec), following nothing.
    index = TriggerIndex()
    index.put(info)
    assert index.in_namespace("demo") == (info,)
    assert index._following == {}


def test_trigger_info_without_generation_or_status() -> None:
    body = image_trigger({"source": {"imageStreamTag": "app:latest"}, "targets": []})
    del body["metadata"]["generation"]
    del body["status"]
    info = trigger_info(body)
    assert info.generation == 0
    assert info.status == {}


def test_trigger_status_is_no_news() -> None:
    spec = {
        "source": {"imageStreamTag": "app:latest"},
        "targets": [{"kind": "Deployment", "name": "w"}],
    }
    body = image_trigger(spec)
    written = image_trigger(spec)
    written["status"] = {"observedGeneration": 3, "conditions": [{"type": "Ready"}]}
    assert trigger_info(written) == trigger_info(body)
    changed = image_trigger({**spec, "suspend": True}, generation=4)
    assert trigger_info(changed) != trigger_info(body)


def test_trigger_index_put_moves_the_follower_and_delete_forgets_it() -> None:
    index = TriggerIndex()
    target = [{"kind": "Deployment", "name": "web"}]
    first = trigger_info(
        image_trigger({"source": {"imageStreamTag": "app:latest"}, "targets": target})
    )
    index.put(first)
    second = trigger_info(
        image_trigger(
            {"source": {"imageStreamTag": "base:v1", "namespace": "shared"}, "targets": target}
        )
    )
    assert index.put(second) == first
    assert index.following("demo", "app") == ()
    assert index.following("shared", "base") == (second,)
    assert index.in_namespace("demo") == (second,)
    assert len(index) == 1
    assert index.delete("demo", "follow-app") == second
    assert index.delete("demo", "follow-app") is None
    assert index._by == {}
    assert index._in == {}
    assert index._following == {}


# -- the planner's world ----------------------------------------------------------------------


def test_indexes_are_the_planners_world() -> None:
    indexes = Indexes()
    kind = TargetKind.Deployment
    indexes.streams.put(stream_info(imagestream()))
    indexes.workloads.put(workload_info(kind, workload(kind), native=True))
    indexes.buildconfigs.put(buildconfig_info(buildconfig(name="bc")))
    spec = {
        "source": {"imageStreamTag": "app:latest"},
        "targets": [{"kind": "Deployment", "name": "web"}],
    }
    indexes.triggers.put(trigger_info(image_trigger(spec)))

    stream = indexes.stream("demo", "app")
    assert stream is not None
    assert stream.name == "app"
    assert indexes.stream("demo", "nope") is None
    found = indexes.workload("Deployment", "demo", "web")
    assert found is not None
    assert found.ref.name == "web"
    assert indexes.workload("StatefulSet", "demo", "web") is None
    bc = indexes.buildconfig("demo", "bc")
    assert bc is not None
    assert bc.ref.name == "bc"
    assert list(indexes.names_in(TargetKind.Deployment, "demo")) == ["web"]
    assert list(indexes.names_in(TargetKind.BuildConfig, "demo")) == ["bc"]
    assert list(indexes.names_in(TargetKind.CronJob, "demo")) == []
    assert indexes.sizes() == {
        "imagestreams": 1,
        "workloads": 1,
        "buildconfigs": 1,
        "imagetriggers": 1,
    }


def test_containers_of_a_pod_template_are_located_for_a_patch() -> None:
    kind = TargetKind.CronJob
    info = workload_info(kind, workload(kind), native=True)
    assert [c.key for c in info.containers] == ["web", "proxy", "init:setup"]
    assert [(c.init, c.index) for c in info.containers] == [(False, 0), (False, 1), (True, 0)]
    assert KINDS[kind].patch_base == "/spec/jobTemplate/spec/template/spec"
    assert Container("setup", "x", init=True, index=0).key == "init:setup"


# -- memory: what the records share and how they keep a status -------------------------------


def decoded(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as it comes off the wire: every string an object of its own."""
    result: dict[str, Any] = json.loads(json.dumps(body))
    return result


def test_records_from_separate_bodies_share_their_repeated_strings() -> None:
    annotation = json.dumps([trigger_entry("Deployment")])
    stream = stream_info(decoded(imagestream()))

    def running_latest(name: str) -> dict[str, Any]:
        body = workload("Deployment", name=name, annotation=annotation)
        body["spec"]["template"]["spec"]["containers"][0]["image"] = f"quay.io/acme/app@{B}"
        return decoded(body)

    one, two = (
        workload_info(TargetKind.Deployment, running_latest(name), native=True)
        for name in ("one", "two")
    )
    for first, second in (
        (one.ref.namespace, two.ref.namespace),
        (one.ref.kind, two.ref.kind),
        (one.ref.api_version, two.ref.api_version),
        (one.containers[0].name, two.containers[0].name),
        (one.triggers[0].field_path, two.triggers[0].field_path),
        (one.triggers[0].source.tag, two.triggers[0].source.tag),
        (next(iter(one.labels)), next(iter(two.labels))),
        (one.ref.namespace, stream.namespace),
        # The image a workload runs is the one the stream's tag resolves to: one string.
        (one.containers[0].image, stream.tags["latest"].reference),
    ):
        assert first == second
        assert first is second
    # What is an object's own stays its own, and equal to what the body says.
    assert (one.ref.name, two.ref.name) == ("one", "two")


def test_a_stream_without_the_annotation_allows_no_other_namespace() -> None:
    first, second = stream_info(imagestream()), stream_info(imagestream(name="other"))
    assert first.allowed_namespaces == frozenset()
    assert first.allowed_namespaces is second.allowed_namespaces  # one shared empty set
    assert not first.allows("elsewhere")


def test_trigger_status_is_kept_compact_and_reads_as_the_body_says() -> None:
    status = {
        "observedGeneration": 2,
        "image": f"quay.io/acme/app@{A}",
        "targets": [{"kind": "Deployment", "name": "w", "result": "Applied"}],
        "history": [{"image": f"quay.io/acme/app@{A}", "time": CREATED, "updated": ["w"]}],
    }
    body = image_trigger({"source": {"imageStreamTag": "app:latest"}, "targets": []})
    body["status"] = status
    info = trigger_info(decoded(body))
    assert isinstance(info.status, FrozenJson)
    assert info.status == status
    assert dict(info.status) == status
    assert info.status.thaw() == status
    assert info.status.thaw() is not info.status.thaw()  # a reader may change its copy
    assert status_model.read(info.status) == status_model.read(status)
    assert len(info.status.text) < len(json.dumps(status))
