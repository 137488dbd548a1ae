"""Deciding what to change in a target, and the request bodies that carry it out."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonpatch
import pytest

from imagestream_trigger.api import LAST_APPLIED_ANNOTATION, Reason
from imagestream_trigger.decide import (
    ImageChange,
    build_request,
    plan_annotation,
    plan_target,
    workload_patch,
)
from imagestream_trigger.kinds import Container, containers_of, workload_kind
from imagestream_trigger.resolve import ResolvedImage, TagRef
from imagestream_trigger.triggers import AnnotationTrigger, ContainerSelector, ProblemCode

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
APP = TagRef("demo", "app", "latest")
TOOLS = TagRef("demo", "tools", "v1")
NEW = f"quay.io/acme/app@{B}"
NOW = "2025-01-10T10:16:00Z"

WEB = Container(name="web", image=f"quay.io/acme/app@{A}", init=False, index=0)
PROXY = Container(name="proxy", image="docker.io/envoyproxy/envoy:v1.31", init=False, index=1)
SETUP = Container(name="setup", image="quay.io/acme/tools:v1", init=True, index=0)
CONTAINERS = (WEB, PROXY, SETUP)


def pod_spec() -> dict[str, Any]:
    return {
        "containers": [
            {"name": "web", "image": WEB.image, "ports": [{"containerPort": 8080}]},
            {"name": "proxy", "image": PROXY.image},
        ],
        "initContainers": [{"name": "setup", "image": SETUP.image}],
    }


def deployment(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "demo"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
        },
    }


def cronjob() -> dict[str, Any]:
    return {
        "kind": "CronJob",
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec()}}},
        },
    }


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec", "template", "spec")),
        ("StatefulSet", ("spec", "template", "spec")),
        ("DaemonSet", ("spec", "template", "spec")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ],
    ids=["deployment", "statefulset", "daemonset", "cronjob"],
)
def test_pod_spec_path(kind: str, path: tuple[str, ...]) -> None:
    assert workload_kind(kind).pod_spec == path


@pytest.mark.parametrize("kind", ["BuildConfig", "Pod"], ids=["buildconfig", "unknown"])
def test_pod_spec_path_of_a_kind_without_pod_template(kind: str) -> None:
    with pytest.raises(ValueError, match="has no pod template"):
        workload_kind(kind)


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("Deployment", deployment(), CONTAINERS),
        ("CronJob", cronjob(), CONTAINERS),
        ("Deployment", {"spec": {}}, ()),
        (
            "Deployment",
            {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}},
            (Container("x", "", False, 0),),
        ),
    ],
    ids=["deployment", "cronjob", "no-template", "container-without-image"],
)
def test_containers_of(kind: str, body: dict[str, Any], expected: tuple[Container, ...]) -> None:
    assert containers_of(kind, body) == expected


def annotation_trigger(
    source: TagRef = APP,
    *,
    name: str | None = None,
    index: int | None = None,
    init: bool = False,
    paused: bool = False,
) -> AnnotationTrigger:
    selector = ContainerSelector(init=init, index=index, name=name)
    return AnnotationTrigger(
        source=source, container=selector, paused=paused, field_path=f"path:{selector}"
    )


def resolver(**images: str) -> Callable[[TagRef], ResolvedImage | None]:
    by_stream = {stream: ResolvedImage(ref, B, None) for stream, ref in images.items()}
    return lambda tag: by_stream.get(tag.stream)


@pytest.mark.parametrize(
    ("triggers", "resolve", "changes", "codes"),
    [
        ([annotation_trigger(name="web")], resolver(app=NEW), [ImageChange(WEB, NEW, APP)], []),
        ([annotation_trigger(index=0)], resolver(app=WEB.image), [], []),
        ([annotation_trigger(name="web", paused=True)], resolver(app=NEW), [], []),
        ([annotation_trigger(name="web")], resolver(), [], []),
        (
            [annotation_trigger(name="web"), annotation_trigger(TOOLS, index=0, init=True)],
            resolver(app=NEW, tools="quay.io/acme/tools@" + B),
            [ImageChange(WEB, NEW, APP), ImageChange(SETUP, "quay.io/acme/tools@" + B, TOOLS)],
            [],
        ),
        (
            [annotation_trigger(name="web"), annotation_trigger(name="db")],
            resolver(app=NEW),
            [],
            [ProblemCode.ContainerNotFound],
        ),
        (
            [annotation_trigger(name="web"), annotation_trigger(TOOLS, name="db")],
            resolver(app=NEW),
            [ImageChange(WEB, NEW, APP)],
            [],
        ),
        (
            [annotation_trigger(name="web"), annotation_trigger(TOOLS, index=0)],
            resolver(app=NEW, tools="quay.io/acme/tools@" + B),
            [ImageChange(WEB, "quay.io/acme/tools@" + B, TOOLS)],
            [ProblemCode.DuplicateContainer],
        ),
        (
            [annotation_trigger(name="web"), annotation_trigger(TOOLS, index=0)],
            resolver(app=NEW),
            [ImageChange(WEB, NEW, APP)],
            [ProblemCode.DuplicateContainer],
        ),
    ],
    ids=[
        "resolved-and-different",
        "already-at-image",
        "paused",
        "unresolved-is-skipped-silently",
        "two-containers",
        "missing-container-voids-all-changes-like-openshift",
        "missing-container-with-unresolved-tag-is-harmless",
        "same-container-twice-last-resolved-wins",
        "same-container-twice-first-when-second-unresolved",
    ],
)
def test_plan_annotation(
    triggers: list[AnnotationTrigger],
    resolve: Callable[[TagRef], ResolvedImage | None],
    changes: list[ImageChange],
    codes: list[str],
) -> None:
    planned, problems = plan_annotation(triggers, CONTAINERS, resolve)
    assert list(planned) == changes
    assert [p.reason for p in problems] == codes


def test_plan_annotation_problem_messages_name_the_triggers() -> None:
    _, problems = plan_annotation(
        [annotation_trigger(name="web"), annotation_trigger(TOOLS, index=0)],
        CONTAINERS,
        resolver(app=NEW),
    )
    assert problems[0].message == (
        'triggers with fieldPath "path:containers[?(@.name==\\"web\\")]" and '
        '"path:containers[0]" both select "web"; OpenShift applies them in order, so it '
        "follows demo/tools:v1 whenever that resolves, else demo/app:latest. Keep one trigger "
        "per container."
    )
    _, problems = plan_annotation([annotation_trigger(name="db")], CONTAINERS, resolver(app=NEW))
    assert problems[0].message == (
        'trigger with fieldPath "path:containers[?(@.name==\\"db\\")]" selects no container '
        '(this object has containers "web", "proxy" and init containers "setup"), so no '
        "trigger of this object is applied, as in OpenShift. Fix the selector."
    )


APP_REPOS = frozenset(
    {"quay.io/acme/app", "image-registry.openshift-image-registry.svc:5000/demo/app"}
)
RESOLVED = ResolvedImage(NEW, B, "2025-01-10T10:15:02Z")


@pytest.mark.parametrize(
    ("containers", "names", "init_names", "changes", "reason", "message"),
    [
        (CONTAINERS, None, None, [ImageChange(WEB, NEW, APP)], Reason.Applied, f"set web to {NEW}"),
        (
            CONTAINERS,
            ["proxy"],
            None,
            [ImageChange(PROXY, NEW, APP)],
            Reason.Applied,
            f"set proxy to {NEW}",
        ),
        (
            CONTAINERS,
            ["web"],
            ["setup"],
            [ImageChange(WEB, NEW, APP), ImageChange(SETUP, NEW, APP)],
            Reason.Applied,
            f"set web, init:setup to {NEW}",
        ),
        (
            CONTAINERS,
            ["web", "db"],
            ["web"],
            [],
            Reason.ContainerNotFound,
            'container "db", init container "web" not found; the target has containers "web", '
            '"proxy" and init containers "setup"',
        ),
        (CONTAINERS, [], [], [ImageChange(WEB, NEW, APP)], Reason.Applied, f"set web to {NEW}"),
        (
            (WEB, PROXY, Container("pull", "quay.io/acme/app:v0", True, 0)),
            None,
            None,
            [
                ImageChange(WEB, NEW, APP),
                ImageChange(Container("pull", "quay.io/acme/app:v0", True, 0), NEW, APP),
            ],
            Reason.Applied,
            f"set web, init:pull to {NEW}",
        ),
        (
            (PROXY, SETUP),
            None,
            None,
            [],
            Reason.NoMatchingContainer,
            "no container runs an image from demo/app:latest (repositories "
            "image-registry.openshift-image-registry.svc:5000/demo/app, quay.io/acme/app); the "
            'target has container "proxy" (docker.io/envoyproxy/envoy:v1.31), init container '
            '"setup" (quay.io/acme/tools:v1). Name the containers in the target to update them '
            "anyway.",
        ),
        ((), None, None, [], Reason.NoMatchingContainer, "the target has no containers."),
        (
            (Container("web", NEW, False, 0), PROXY),
            None,
            None,
            [],
            Reason.Unchanged,
            f"web already runs {NEW}",
        ),
        (
            (Container("web", NEW, False, 0), PROXY),
            ["web"],
            None,
            [],
            Reason.Unchanged,
            f"web already runs {NEW}",
        ),
    ],
    ids=[
        "auto-picks-stream-repository-leaves-sidecar",
        "named-container-even-from-elsewhere",
        "named-container-and-init-container",
        "missing-names",
        "empty-name-lists-mean-auto",
        "auto-includes-init-containers",
        "auto-finds-none",
        "auto-empty-pod",
        "auto-already-at-image",
        "named-already-at-image",
    ],
)
def test_plan_target(
    containers: tuple[Container, ...],
    names: list[str] | None,
    init_names: list[str] | None,
    changes: list[ImageChange],
    reason: Reason,
    message: str,
) -> None:
    planned, got_reason, got_message = plan_target(
        containers,
        names=names,
        init_names=init_names,
        repositories=APP_REPOS,
        resolved=RESOLVED,
        source=APP,
    )
    assert list(planned) == changes
    assert got_reason is reason
    assert message in got_message


def test_plan_target_matches_a_container_already_at_the_reference_outside_known_repos() -> None:
    local = ResolvedImage(f"registry.local:5000/demo/app@{B}", B, None)
    container = Container("web", local.reference, False, 0)
    planned, reason, _ = plan_target(
        (container,),
        names=None,
        init_names=None,
        repositories=frozenset(),
        resolved=local,
        source=APP,
    )
    assert (planned, reason) == ((), Reason.Unchanged)


def last_applied(patch: list[dict[str, Any]]) -> dict[str, Any]:
    value = patch[-1]["value"]
    raw = value[LAST_APPLIED_ANNOTATION] if isinstance(value, dict) else value
    return json.loads(raw)


def test_workload_patch_body() -> None:
    patch = workload_patch(
        "Deployment",
        [ImageChange(WEB, NEW, APP)],
        annotations={"deployment.kubernetes.io/revision": "3"},
        now=NOW,
    )
    assert patch == [
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "web"},
        {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": WEB.image},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": NEW},
        {
            "op": "add",
            "path": "/metadata/annotations/imagestream-trigger.dev~1last-applied",
            "value": '{"web":{"image":"quay.io/acme/app@'
            + B
            + '","previous":"'
            + WEB.image
            + '","source":"demo/app:latest","time":"2025-01-10T10:16:00Z"}}',
        },
    ]


def test_workload_patch_adds_the_annotations_map_when_absent() -> None:
    patch = workload_patch("Deployment", [ImageChange(WEB, NEW, APP)], annotations=None, now=NOW)
    assert patch[-1]["op"] == "add"
    assert patch[-1]["path"] == "/metadata/annotations"
    assert last_applied(patch) == {
        "web": {"image": NEW, "source": "demo/app:latest", "time": NOW, "previous": WEB.image}
    }


@pytest.mark.parametrize(
    ("previous", "expected_keys"),
    [
        (
            json.dumps(
                {
                    "proxy": {"image": "x", "source": "demo/p:1", "time": "t"},
                    "web": {"image": "old", "source": "demo/app:latest", "time": "t"},
                }
            ),
            ["init:setup", "proxy", "web"],
        ),
        ("not json", ["init:setup", "web"]),
        ('["a list"]', ["init:setup", "web"]),
    ],
    ids=["merged-with-previous", "unparsable-previous-ignored", "non-object-previous-ignored"],
)
def test_workload_patch_merges_the_previous_record(previous: str, expected_keys: list[str]) -> None:
    tools = "quay.io/acme/tools@" + B
    patch = workload_patch(
        "Deployment",
        [ImageChange(WEB, NEW, APP), ImageChange(SETUP, tools, TOOLS)],
        annotations={LAST_APPLIED_ANNOTATION: previous},
        now=NOW,
    )
    record = last_applied(patch)
    assert sorted(record) == expected_keys
    assert record["web"] == {
        "image": NEW,
        "source": "demo/app:latest",
        "time": NOW,
        "previous": WEB.image,
    }
    assert record["init:setup"] == {
        "image": tools,
        "source": "demo/tools:v1",
        "time": NOW,
        "previous": SETUP.image,
    }


def test_workload_patch_paths_for_init_containers_and_cronjobs() -> None:
    patch = workload_patch("CronJob", [ImageChange(SETUP, NEW, APP)], annotations={}, now=NOW)
    base = "/spec/jobTemplate/spec/template/spec/initContainers/0"
    assert [(op["op"], op["path"]) for op in patch[:3]] == [
        ("test", f"{base}/name"),
        ("test", f"{base}/image"),
        ("replace", f"{base}/image"),
    ]


def test_workload_patch_without_changes_writes_nothing() -> None:
    assert workload_patch("Deployment", [], annotations=None, now=NOW) == []


def test_applied_patch_changes_only_the_chosen_container() -> None:
    body = deployment({"deployment.kubernetes.io/revision": "3"})
    patch = workload_patch(
        "Deployment",
        [ImageChange(WEB, NEW, APP)],
        annotations=body["metadata"]["annotations"],
        now=NOW,
    )
    patched = jsonpatch.apply_patch(body, patch)

    expected = copy.deepcopy(body)
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = NEW
    expected["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json.dumps(
        {"web": {"image": NEW, "previous": WEB.image, "source": "demo/app:latest", "time": NOW}},
        separators=(",", ":"),
    )
    assert patched == expected  # sidecar, ports, pod template labels, revision: all untouched
    assert "annotations" not in patched["spec"]["template"]["metadata"]


def test_applied_patch_on_an_object_without_annotations() -> None:
    body = deployment()
    patch = workload_patch("Deployment", [ImageChange(WEB, NEW, APP)], annotations=None, now=NOW)
    patched = jsonpatch.apply_patch(body, patch)
    assert list(patched["metadata"]["annotations"]) == [LAST_APPLIED_ANNOTATION]
    assert (
        patched["spec"]["template"]["spec"]["containers"][1]
        == body["spec"]["template"]["spec"]["containers"][1]
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda spec: spec["containers"].reverse(),
        lambda spec: spec["containers"][0].update(image="quay.io/acme/app:rolled-back"),
        lambda spec: spec["containers"].insert(0, {"name": "debug", "image": "busybox"}),
    ],
    ids=["container-moved", "image-changed-meanwhile", "container-inserted-before"],
)
def test_applied_patch_fails_when_the_object_changed(mutate: Callable[[Any], None]) -> None:
    body = deployment({})
    patch = workload_patch("Deployment", [ImageChange(WEB, NEW, APP)], annotations={}, now=NOW)
    mutate(body["spec"]["template"]["spec"])
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(body, patch)


def test_build_request_is_the_body_openshift_sends() -> None:
    reference = f"quay.io/acme/app@{B}"
    assert build_request("web", "builds", APP, reference) == {
        "kind": "BuildRequest",
        "apiVersion": "build.openshift.io/v1",
        "metadata": {"name": "web", "namespace": "builds"},
        "triggeredByImage": {"kind": "DockerImage", "name": reference},
        "from": {"kind": "ImageStreamTag", "name": "app:latest", "namespace": "demo"},
        "triggeredBy": [
            {
                "message": "Image change",
                "imageChangeBuild": {
                    "imageID": reference,
                    "fromRef": {
                        "kind": "ImageStreamTag",
                        "name": "app:latest",
                        "namespace": "demo",
                    },
                },
            }
        ],
    }
