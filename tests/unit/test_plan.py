"""Planning from memory: what every follower of an ImageStream tag should run.

The world is the operator's own ``index.Indexes``, filled through ``Intake.load`` exactly
as the start-up listing fills it, so these tests also check that the indexes and the
planner agree.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from imagestream_trigger.api import (
    ALLOWED_NAMESPACES_ANNOTATION,
    TRIGGERS_ANNOTATION,
    Reason,
    TargetKind,
)
from imagestream_trigger.decide import ImageChange
from imagestream_trigger.index import (
    Indexes,
    WorkloadInfo,
    buildconfig_info,
    trigger_info,
    workload_info,
)
from imagestream_trigger.inflight import Overlay, Written
from imagestream_trigger.intake import Intake
from imagestream_trigger.kinds import KINDS, Container
from imagestream_trigger.plan import (
    Action,
    BuildRecord,
    TargetPlan,
    TriggerPlan,
    World,
    build_ledger,
    plan_annotated,
    plan_trigger,
)
from imagestream_trigger.resolve import ResolvedImage, TagRef
from imagestream_trigger.triggers import ProblemCode

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
REGISTRY = "image-registry.openshift-image-registry.svc:5000"
OLD = f"quay.io/acme/app@{A}"
NEW = f"quay.io/acme/app@{B}"
OTHER = f"quay.io/acme/app@{C}"
ENVOY = "docker.io/envoyproxy/envoy:v1.31"
TOOLS = "quay.io/acme/tools:v1"
APP = TagRef("demo", "app", "latest")


def _is_world(world: World) -> World:  # mypy checks Indexes against the protocol here
    return world


# -- realistic bodies ---------------------------------------------------------------------------


def imagestream(
    *, namespace: str = "demo", name: str = "app", allowed: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if allowed is not None:
        metadata["annotations"] = {ALLOWED_NAMESPACES_ANNOTATION: allowed}
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": metadata,
        "spec": {
            "tags": [
                {
                    "name": "latest",
                    "from": {"kind": "DockerImage", "name": "quay.io/acme/app:latest"},
                    "referencePolicy": {"type": "Source"},
                },
                {
                    "name": "next",
                    "from": {"kind": "DockerImage", "name": "quay.io/acme/app:next"},
                },
            ],
        },
        "status": {
            "dockerImageRepository": f"{REGISTRY}/{namespace}/{name}",
            "tags": [
                {
                    "tag": "latest",
                    "items": [
                        {
                            "created": "2025-01-10T10:15:02Z",
                            "dockerImageReference": NEW,
                            "image": B,
                        },
                        {
                            "created": "2025-01-09T08:00:00Z",
                            "dockerImageReference": OLD,
                            "image": A,
                        },
                    ],
                },
                {"tag": "next", "items": []},  # import still running
            ],
        },
    }


def annotation(
    kind: str, *entries: tuple[str, str], namespace: str | None = None, paused: bool = False
) -> str:
    """``entries``: (stream:tag, container selector such as 'web' or '#0' for an index)."""
    base = ".".join(KINDS[TargetKind(kind)].pod_spec)
    triggers = []
    for stream_tag, container in entries:
        selector = container[1:] if container.startswith("#") else f'?(@.name=="{container}")'
        source: dict[str, Any] = {"kind": "ImageStreamTag", "name": stream_tag}
        if namespace is not None:
            source["namespace"] = namespace
        triggers.append(
            {
                "from": source,
                "fieldPath": f"{base}.containers[{selector}].image",
                "paused": paused,
            }
        )
    return json.dumps(triggers)


def workload(
    kind: str = "Deployment",
    *,
    name: str = "web",
    namespace: str = "demo",
    web: str = OLD,
    containers: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
    triggers: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels if labels is not None else {"app": name},
    }
    if triggers is not None:
        metadata["annotations"] = {TRIGGERS_ANNOTATION: triggers}
    pod = {
        "containers": containers
        if containers is not None
        else [{"name": "web", "image": web}, {"name": "proxy", "image": ENVOY}],
        "initContainers": [{"name": "setup", "image": TOOLS}],
    }
    template = {"metadata": {"labels": {"app": name}}, "spec": pod}
    if kind == TargetKind.CronJob:
        spec: dict[str, Any] = {
            "schedule": "@daily",
            "jobTemplate": {"spec": {"template": template}},
        }
    else:
        spec = {"selector": {"matchLabels": {"app": name}}, "template": template}
    api = "batch/v1" if kind == TargetKind.CronJob else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec}


def buildconfig(
    *,
    name: str = "web",
    namespace: str = "demo",
    built: list[tuple[str, str]] | None = None,
    spec_last: str | None = None,
) -> dict[str, Any]:
    """``built``: (ImageStreamTag name, lastTriggeredImageID) in status.imageChangeTriggers;
    ``spec_last``: the trigger's lastTriggeredImageID in the spec (before OpenShift 4.8)."""
    change: dict[str, Any] = {"from": {"kind": "ImageStreamTag", "name": "app:latest"}}
    if spec_last is not None:
        change["lastTriggeredImageID"] = spec_last
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "triggers": [{"type": "ImageChange", "imageChange": change}],
        },
        "status": {
            "lastVersion": 1,
            "imageChangeTriggers": [
                {
                    "from": {"kind": "ImageStreamTag", "name": tag, "namespace": namespace},
                    "lastTriggeredImageID": image,
                }
                for tag, image in built or []
            ],
        },
    }


def image_trigger(
    targets: list[dict[str, Any]],
    *,
    source: str = "app:latest",
    source_namespace: str | None = None,
    namespace: str = "demo",
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    src: dict[str, Any] = {"imageStreamTag": source}
    if source_namespace is not None:
        src["namespace"] = source_namespace
    body: dict[str, Any] = {
        "apiVersion": "imagestream-trigger.dev/v1alpha1",
        "kind": "ImageTrigger",
        "metadata": {"name": "follow-app", "namespace": namespace, "generation": 1},
        "spec": {"source": src, "targets": targets},
    }
    if status is not None:
        body["status"] = status
    return body


def world(*bodies: dict[str, Any], native: bool = True) -> Indexes:
    """The real indexes, loaded as the start-up listing loads them."""
    indexes = Indexes()
    intake = Intake(indexes, Overlay(), native=native)
    for body in bodies:
        intake.load(body["kind"], body)
    return indexes


def deployment_info(body: dict[str, Any]) -> WorkloadInfo:
    return workload_info(TargetKind(body["kind"]), body, native=True)


def container(name: str, image: str, *, init: bool = False, index: int = 0) -> Container:
    return Container(name=name, image=image, init=init, index=index)


# -- the OpenShift annotation -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "CronJob"])
def test_annotated_change_is_planned(kind: str) -> None:
    body = workload(kind, triggers=annotation(kind, ("app:latest", "web")))
    w = world(imagestream(), body)
    plan = plan_annotated(_is_world(w), deployment_info(body))
    assert plan.changes == (ImageChange(container("web", OLD), NEW, APP),)
    assert plan.problems == ()
    assert plan.workload == deployment_info(body)


def test_a_pause_key_is_reported_and_the_change_still_planned() -> None:
    # "pause": "true" (for "paused"): OpenShift ignores the key and rolls out, and so do
    # we (parity), while saying why the workload was not held back.
    entries = json.loads(annotation("Deployment", ("app:latest", "web")))
    del entries[0]["paused"]
    entries[0]["pause"] = "true"
    body = workload(triggers=json.dumps(entries))
    plan = plan_annotated(_is_world(world(imagestream(), body)), deployment_info(body))
    assert plan.changes == (ImageChange(container("web", OLD), NEW, APP),)
    assert [p.reason for p in plan.problems] == [ProblemCode.PauseKeyIgnored]


def test_annotated_cross_namespace_follows_the_other_namespace() -> None:
    body = workload(triggers=annotation("Deployment", ("app:latest", "web"), namespace="shared"))
    w = world(imagestream(namespace="shared"), imagestream(namespace="demo"), body)
    # Not subject to allowed-namespaces: that annotation governs ImageTriggers only.
    plan = plan_annotated(w, deployment_info(body))
    assert plan.changes == (
        ImageChange(container("web", OLD), NEW, TagRef("shared", "app", "latest")),
    )


@pytest.mark.parametrize(
    ("body", "streams"),
    [
        pytest.param(
            workload(web=NEW, triggers=annotation("Deployment", ("app:latest", "web"))),
            [imagestream()],
            id="already-up-to-date",
        ),
        pytest.param(
            workload(triggers=annotation("Deployment", ("app:next", "web"))),
            [imagestream()],
            id="tag-without-items",
        ),
        pytest.param(
            workload(triggers=annotation("Deployment", ("app:nope", "web"))),
            [imagestream()],
            id="tag-not-in-stream",
        ),
        pytest.param(
            workload(triggers=annotation("Deployment", ("app:latest", "web"))),
            [],
            id="stream-missing",
        ),
        pytest.param(
            workload(triggers=annotation("Deployment", ("app:latest", "web"), paused=True)),
            [imagestream()],
            id="paused",
        ),
        pytest.param(workload(), [imagestream()], id="no-annotation"),
    ],
)
def test_annotated_nothing_to_do(body: dict[str, Any], streams: list[dict[str, Any]]) -> None:
    w = world(*streams, body)
    plan = plan_annotated(w, deployment_info(body))
    assert plan.changes == ()
    assert plan.problems == ()


def test_annotated_by_index_and_untouched_sidecar() -> None:
    body = workload(triggers=annotation("Deployment", ("app:latest", "#0")))
    plan = plan_annotated(world(imagestream(), body), deployment_info(body))
    assert [(c.container.name, c.new_image) for c in plan.changes] == [("web", NEW)]


def test_annotated_parse_problems_are_reported_with_the_changes() -> None:
    kind = "Deployment"
    base = ".".join(KINDS[TargetKind(kind)].pod_spec)
    triggers = json.dumps(
        [
            {
                "from": {"kind": "ImageStreamTag", "name": "app:latest"},
                "fieldPath": f'{base}.containers[?(@.name=="web")].image',
            },
            {
                "from": {"kind": "DockerImage", "name": "quay.io/acme/app:latest"},
                "fieldPath": f"{base}.containers[1].image",
            },
        ]
    )
    body = workload(triggers=triggers)
    plan = plan_annotated(world(imagestream(), body), deployment_info(body))
    assert [c.container.name for c in plan.changes] == ["web"]
    assert [p.reason for p in plan.problems] == [ProblemCode.UnsupportedFromKind]


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        # Resolved: the static check and the planner both see the missing container.
        pytest.param("app:latest", [ProblemCode.ContainerNotFound], id="resolved"),
        # Unresolved: only the static check sees it.
        pytest.param("app:next", [ProblemCode.ContainerNotFound], id="unresolved"),
    ],
)
def test_annotated_missing_container_is_reported_once(tag: str, expected: list[str]) -> None:
    body = workload(triggers=annotation("Deployment", (tag, "web"), (tag, "missing")))
    plan = plan_annotated(world(imagestream(), body), deployment_info(body))
    assert plan.changes == ()  # OpenShift applies no trigger of this object
    assert [p.reason for p in plan.problems] == expected


def test_annotated_duplicate_container_is_reported_once() -> None:
    body = workload(triggers=annotation("Deployment", ("app:latest", "web"), ("app:latest", "#0")))
    plan = plan_annotated(world(imagestream(), body), deployment_info(body))
    assert [c.container.name for c in plan.changes] == ["web"]
    assert [p.reason for p in plan.problems] == [ProblemCode.DuplicateContainer]


# -- ImageTrigger: the trigger as a whole -------------------------------------------------------

WEB_TARGET = {"kind": "Deployment", "name": "web"}


@pytest.mark.parametrize(
    ("trigger", "streams", "blocked", "mentions"),
    [
        pytest.param(
            image_trigger([WEB_TARGET], source="app"),
            [imagestream()],
            Reason.InvalidSpec,
            "spec.source.imageStreamTag",
            id="invalid-spec",
        ),
        pytest.param(
            image_trigger([WEB_TARGET], source="nope:latest"),
            [imagestream()],
            Reason.SourceNotFound,
            "demo/nope",
            id="source-not-found",
        ),
        pytest.param(
            image_trigger([WEB_TARGET], source_namespace="shared"),
            [imagestream()],
            Reason.SourceNotFound,
            "shared/app",
            id="source-in-other-namespace-not-found",
        ),
        pytest.param(
            image_trigger([WEB_TARGET], namespace="team-a", source_namespace="demo"),
            [imagestream()],
            Reason.CrossNamespaceDenied,
            '"team-a"',
            id="cross-namespace-without-annotation",
        ),
        pytest.param(
            image_trigger([WEB_TARGET], namespace="team-a", source_namespace="demo"),
            [imagestream(allowed="team-b, team-c")],
            Reason.CrossNamespaceDenied,
            ALLOWED_NAMESPACES_ANNOTATION,
            id="cross-namespace-not-listed",
        ),
        pytest.param(
            image_trigger([WEB_TARGET], source="app:next"),
            [imagestream()],
            Reason.TagNotResolved,
            "'next'",
            id="tag-without-items",
        ),
        pytest.param(
            image_trigger([WEB_TARGET], source="app:v9"),
            [imagestream()],
            Reason.TagNotResolved,
            "'v9'",
            id="tag-unknown",
        ),
    ],
)
def test_trigger_blocked(
    trigger: dict[str, Any], streams: list[dict[str, Any]], blocked: Reason, mentions: str
) -> None:
    target_ns = trigger["metadata"]["namespace"]
    w = world(*streams, workload(namespace=target_ns), trigger)
    info = trigger_info(trigger)
    plan = plan_trigger(w, info)
    assert plan.blocked is blocked
    assert mentions in plan.message
    assert plan.targets == ()
    assert plan.image is None


def test_invalid_spec_message_is_the_validation_error() -> None:
    info = trigger_info(image_trigger([], source="app:latest"))
    plan = plan_trigger(world(imagestream()), info)
    assert plan.blocked is Reason.InvalidSpec
    assert info.error is not None
    assert plan.message == info.error
    assert plan.source is None


@pytest.mark.parametrize(
    "allowed",
    [
        pytest.param("team-a", id="listed"),
        pytest.param("team-b, team-a", id="listed-with-spaces"),
        pytest.param("*", id="star"),
    ],
)
def test_cross_namespace_allowed(allowed: str) -> None:
    trigger = image_trigger([WEB_TARGET], namespace="team-a", source_namespace="demo")
    w = world(imagestream(allowed=allowed), workload(namespace="team-a"), trigger)
    plan = plan_trigger(w, trigger_info(trigger))
    assert plan.blocked is None
    assert plan.source == APP
    assert plan.image == ResolvedImage(NEW, B, "2025-01-10T10:15:02Z")
    [target] = plan.targets
    assert (target.kind, target.name, target.action) == ("Deployment", "web", Action.Update)
    assert target.reason is None
    assert target.workload is not None
    assert target.workload.ref.namespace == "team-a"  # targets live in the trigger's namespace


# -- ImageTrigger: workload targets -------------------------------------------------------------


def plan_of(
    targets: list[dict[str, Any]], *bodies: dict[str, Any], status: dict[str, Any] | None = None
) -> TriggerPlan:
    trigger = image_trigger(targets, status=status)
    plan = plan_trigger(world(imagestream(), *bodies, trigger), trigger_info(trigger))
    assert plan.blocked is None, plan.message
    assert plan.image is not None
    assert plan.image.reference == NEW
    return plan


def summary(plan: TriggerPlan) -> list[tuple[str, str, Action, Reason | None]]:
    return [(t.kind, t.name, t.action, t.reason) for t in plan.targets]


def changed(target: TargetPlan) -> list[tuple[str, str, str]]:
    return [(c.container.key, c.container.image, c.new_image) for c in target.changes]


def test_target_not_found_by_name() -> None:
    plan = plan_of([{"kind": "Deployment", "name": "ghost"}], workload())
    [target] = plan.targets
    assert (target.kind, target.name, target.action, target.reason) == (
        "Deployment",
        "ghost",
        Action.Blocked,
        Reason.TargetNotFound,
    )
    assert target.message == "Deployment demo/ghost does not exist"


def test_target_of_another_kind_is_not_found() -> None:
    plan = plan_of([{"kind": "StatefulSet", "name": "web"}], workload("Deployment"))
    assert summary(plan) == [("StatefulSet", "web", Action.Blocked, Reason.TargetNotFound)]


def test_target_in_another_namespace_is_not_found() -> None:
    plan = plan_of([WEB_TARGET], workload(namespace="other"))
    assert summary(plan) == [("Deployment", "web", Action.Blocked, Reason.TargetNotFound)]


@pytest.mark.parametrize(
    ("selector", "label"),
    [
        pytest.param({"matchLabels": {"app": "nothing"}}, "app=nothing", id="match-labels"),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]}]},
            "tier In (db,cache)",
            id="match-expressions",
        ),
    ],
)
def test_target_not_found_by_selector(selector: dict[str, Any], label: str) -> None:
    plan = plan_of(
        [{"kind": "Deployment", "selector": selector}],
        workload(labels={"app": "web", "tier": "frontend"}),
    )
    [target] = plan.targets
    assert (target.name, target.action, target.reason) == (
        f"selector({label})",
        Action.Blocked,
        Reason.TargetNotFound,
    )
    assert target.message == f"no Deployment in demo matches the selector {label}"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({"matchLabels": {"tier": "frontend"}}, ["a-web", "b-web"], id="labels"),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            ["a-web", "b-web", "c-api"],
            id="exists",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]},
            ["c-api", "d-batch"],
            id="not-in-matches-missing-key",
        ),
        pytest.param({}, ["a-web", "b-web", "c-api", "d-batch"], id="empty-selects-all"),
    ],
)
def test_selector_matches_several_workloads_sorted_by_name(
    selector: dict[str, Any], expected: list[str]
) -> None:
    bodies = [
        workload(name="b-web", labels={"tier": "frontend"}),
        workload(name="d-batch", labels={}),
        workload(name="a-web", labels={"tier": "frontend"}),
        workload(name="c-api", labels={"tier": "backend"}),
        # Same labels, but another namespace or another kind: never selected.
        workload(name="a-other-ns", namespace="other", labels={"tier": "frontend"}),
        workload("StatefulSet", name="a-sts", labels={"tier": "frontend"}),
    ]
    plan = plan_of([{"kind": "Deployment", "selector": selector}], *bodies)
    assert [t.name for t in plan.targets] == expected
    assert all(t.action is Action.Update and t.reason is None for t in plan.targets)
    assert all(t.workload is not None and t.workload.ref.name == t.name for t in plan.targets)


def test_no_matching_container() -> None:
    body = workload(containers=[{"name": "nginx", "image": "docker.io/library/nginx:1.27"}])
    plan = plan_of([WEB_TARGET], body)
    [target] = plan.targets
    assert (target.action, target.reason) == (Action.Blocked, Reason.NoMatchingContainer)
    assert target.changes == ()
    assert "demo/app:latest" in target.message


@pytest.mark.parametrize(
    ("names", "mentions"),
    [
        pytest.param({"containers": ["nope"]}, 'container "nope"', id="container"),
        pytest.param({"initContainers": ["web"]}, 'init container "web"', id="init-container"),
        pytest.param({"containers": ["web", "nope"]}, 'container "nope"', id="one-of-two-missing"),
    ],
)
def test_container_not_found(names: dict[str, list[str]], mentions: str) -> None:
    plan = plan_of([{**WEB_TARGET, **names}], workload())
    [target] = plan.targets
    assert (target.action, target.reason) == (Action.Blocked, Reason.ContainerNotFound)
    assert target.changes == ()  # no partial rollout
    assert mentions in target.message


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param({"containers": ["web"]}, [("web", OLD, NEW)], id="web"),
        # Named containers are updated whatever they run now.
        pytest.param({"containers": ["proxy"]}, [("proxy", ENVOY, NEW)], id="sidecar-by-name"),
        pytest.param(
            {"containers": ["proxy", "web"]},
            [("proxy", ENVOY, NEW), ("web", OLD, NEW)],
            id="two",
        ),
        pytest.param({"initContainers": ["setup"]}, [("init:setup", TOOLS, NEW)], id="init"),
        pytest.param(
            {"containers": ["web"], "initContainers": ["setup"]},
            [("web", OLD, NEW), ("init:setup", TOOLS, NEW)],
            id="container-and-init",
        ),
    ],
)
def test_applied_for_named_containers(
    names: dict[str, list[str]], expected: list[tuple[str, str, str]]
) -> None:
    body = workload()
    plan = plan_of([{**WEB_TARGET, **names}], body)
    [target] = plan.targets
    assert (target.action, target.reason) == (Action.Update, None)
    assert changed(target) == expected
    assert all(c.source == APP for c in target.changes)
    assert target.workload == deployment_info(body)


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        pytest.param(
            [{"name": "web", "image": OLD}, {"name": "proxy", "image": ENVOY}],
            [("web", OLD, NEW)],
            id="sidecar-untouched",
        ),
        pytest.param(
            [{"name": "web", "image": "quay.io/acme/app:latest"}],
            [("web", "quay.io/acme/app:latest", NEW)],
            id="by-tag",
        ),
        pytest.param(
            [{"name": "web", "image": f"{REGISTRY}/demo/app@{A}"}],
            [("web", f"{REGISTRY}/demo/app@{A}", NEW)],
            id="internal-registry",
        ),
        pytest.param(
            [{"name": "a", "image": OLD}, {"name": "b", "image": OTHER}],
            [("a", OLD, NEW), ("b", OTHER, NEW)],
            id="two-from-the-stream",
        ),
        pytest.param(
            [{"name": "web", "image": NEW}, {"name": "worker", "image": OLD}],
            [("worker", OLD, NEW)],
            id="only-the-stale-one",
        ),
    ],
)
def test_applied_for_repository_matching_containers(
    containers: list[dict[str, str]], expected: list[tuple[str, str, str]]
) -> None:
    plan = plan_of([WEB_TARGET], workload(containers=containers))
    [target] = plan.targets
    assert (target.action, target.reason) == (Action.Update, None)
    assert changed(target) == expected


@pytest.mark.parametrize(
    "names",
    [pytest.param({}, id="by-repository"), pytest.param({"containers": ["web"]}, id="by-name")],
)
def test_unchanged_when_already_running_the_image(names: dict[str, list[str]]) -> None:
    plan = plan_of([{**WEB_TARGET, **names}], workload(web=NEW))
    [target] = plan.targets
    assert (target.action, target.reason) == (Action.InSync, None)
    assert target.changes == ()
    assert NEW in target.message


def test_cronjob_target() -> None:
    plan = plan_of([{"kind": "CronJob", "name": "web"}], workload("CronJob"))
    [target] = plan.targets
    assert (target.kind, target.action) == (TargetKind.CronJob, Action.Update)
    assert changed(target) == [("web", OLD, NEW)]


def test_targets_keep_their_order_and_are_planned_independently() -> None:
    plan = plan_of(
        [
            {"kind": "StatefulSet", "name": "db", "containers": ["nope"]},
            WEB_TARGET,
            {"kind": "Deployment", "name": "ghost"},
            {"kind": "BuildConfig", "name": "web"},
        ],
        workload(),
        workload("StatefulSet", name="db"),
        buildconfig(),
    )
    assert summary(plan) == [
        ("StatefulSet", "db", Action.Blocked, Reason.ContainerNotFound),
        ("Deployment", "web", Action.Update, None),
        ("Deployment", "ghost", Action.Blocked, Reason.TargetNotFound),
        ("BuildConfig", "web", Action.Build, None),
    ]
    assert [t.key for t in plan.targets] == [
        "StatefulSet/db",
        "Deployment/web",
        "Deployment/ghost",
        "BuildConfig/web",
    ]


# -- ImageTrigger: BuildConfig targets ------------------------------------------------------------

BC_TARGET = {"kind": "BuildConfig", "name": "web"}
AT = "2025-01-10T10:16:00Z"


def bc_status(image: str, result: str, kind: str = "BuildConfig") -> dict[str, Any]:
    """A status written before the build ledger existed: only ``targets``."""
    return {
        "image": OLD,
        "targets": [{"kind": kind, "name": "web", "result": result, "image": image}],
    }


def ledger_status(image: str, build: str | None, name: str = "web") -> dict[str, Any]:
    """A status with the build ledger: ``builds`` (``build`` None: the intent only)."""
    entry: dict[str, Any] = {"image": image, "requestedAt": AT}
    if build is not None:
        entry["build"] = build
    return {"image": OLD, "builds": {name: entry}}


@pytest.mark.parametrize(
    ("built", "status", "expected"),
    [
        pytest.param(None, None, Action.Build, id="never-built"),
        pytest.param([("app:latest", OLD)], None, Action.Build, id="built-for-the-previous-image"),
        pytest.param([("app:latest", NEW)], None, Action.InSync, id="server-recorded-this-image"),
        pytest.param(
            [("other:latest", NEW)], None, Action.Build, id="server-recorded-another-source"
        ),
        # The ledger: the intent is written before instantiate, the Build's name after.
        pytest.param(None, ledger_status(NEW, None), Action.Recover, id="intent-for-this-image"),
        pytest.param(None, ledger_status(NEW, "web-4"), Action.InSync, id="built-this-image"),
        pytest.param(None, ledger_status(OLD, None), Action.Build, id="intent-for-older-image"),
        pytest.param(None, ledger_status(OLD, "web-3"), Action.Build, id="built-older-image"),
        pytest.param(
            None, ledger_status(NEW, "web-4", name="api"), Action.Build, id="ledger-of-another-bc"
        ),
        pytest.param(
            [("app:latest", NEW)],
            ledger_status(NEW, None),
            Action.InSync,
            id="server-record-settles-an-intent",
        ),
        # Statuses written before the ledger: a BuildConfig reported built counts.
        pytest.param(
            None, bc_status(NEW, "Applied"), Action.InSync, id="legacy-applied-this-image"
        ),
        pytest.param(
            None, bc_status(NEW, "Unchanged"), Action.InSync, id="legacy-unchanged-this-image"
        ),
        pytest.param(None, bc_status(OLD, "Applied"), Action.Build, id="legacy-previous-image"),
        pytest.param(None, bc_status(NEW, "Failed"), Action.Build, id="legacy-failed-retries"),
        pytest.param(None, bc_status(NEW, "DryRun"), Action.Build, id="legacy-dry-run-only"),
        pytest.param(
            None,
            bc_status(NEW, "Applied", kind="Deployment"),
            Action.Build,
            id="legacy-for-a-deployment-of-that-name",
        ),
    ],
)
def test_buildconfig_target(
    built: list[tuple[str, str]] | None, status: dict[str, Any] | None, expected: Action
) -> None:
    bc = buildconfig(built=built)
    plan = plan_of([BC_TARGET], bc, status=status)
    [target] = plan.targets
    assert (target.kind, target.name, target.action) == ("BuildConfig", "web", expected)
    assert target.reason is None
    assert target.buildconfig == buildconfig_info(bc)
    assert target.workload is None
    assert target.changes == ()
    assert NEW in target.message


def test_buildconfig_spec_last_triggered_image_counts_as_built() -> None:
    # spec...lastTriggeredImageID, where BuildConfigs last triggered before OpenShift 4.8
    # keep it: OpenShift's controller would not build NEW again (its buildconfigs reactor
    # checks spec and status), so neither do we; an older image there changes nothing.
    plan = plan_of([BC_TARGET], buildconfig(built=[], spec_last=NEW))
    assert summary(plan) == [("BuildConfig", "web", Action.InSync, None)]
    plan = plan_of([BC_TARGET], buildconfig(built=[], spec_last=OLD))
    assert summary(plan) == [("BuildConfig", "web", Action.Build, None)]


def test_buildconfigs_by_selector() -> None:
    plan = plan_of(
        [{"kind": "BuildConfig", "selector": {"matchLabels": {"app": "web"}}}],
        buildconfig(name="web", built=[("app:latest", NEW)]),
        buildconfig(name="api"),
    )
    assert summary(plan) == [("BuildConfig", "web", Action.InSync, None)]


def test_buildconfig_not_found() -> None:
    plan = plan_of([{"kind": "BuildConfig", "name": "ghost"}], buildconfig())
    assert summary(plan) == [("BuildConfig", "ghost", Action.Blocked, Reason.TargetNotFound)]


# -- the build ledger -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param({}, {}, id="empty"),
        pytest.param(
            ledger_status(NEW, None), {"web": BuildRecord(NEW, AT, "")}, id="intent-without-build"
        ),
        pytest.param(
            ledger_status(NEW, "web-4"), {"web": BuildRecord(NEW, AT, "web-4")}, id="with-build"
        ),
        pytest.param(
            {"builds": {"web": {"image": NEW, "requestedAt": AT, "build": None}}},
            {"web": BuildRecord(NEW, AT, "")},
            id="build-null-as-the-intent-patch-writes-it",
        ),
        pytest.param(
            bc_status(NEW, "Applied"), {"web": BuildRecord(NEW, build="(earlier)")}, id="legacy"
        ),
        pytest.param(bc_status(NEW, "Failed"), {}, id="legacy-failed-is-no-record"),
        pytest.param(
            {**bc_status(OLD, "Applied"), **ledger_status(NEW, None)},
            {"web": BuildRecord(NEW, AT, "")},
            id="ledger-wins-over-legacy",
        ),
        pytest.param(
            {
                "builds": {
                    "a": "junk",
                    "b": {"image": ""},
                    "c": {"image": 5},
                    "d": {"image": NEW, "requestedAt": 7, "build": ["x"]},
                },
                "targets": [None, {"kind": "BuildConfig", "name": 1, "result": "Applied"}],
            },
            {"d": BuildRecord(NEW, "", "")},
            id="junk-is-skipped",
        ),
        pytest.param({"builds": [], "targets": {}}, {}, id="wrong-types"),
    ],
)
def test_build_ledger(status: dict[str, Any], expected: dict[str, BuildRecord]) -> None:
    assert build_ledger(status) == expected


def test_build_record_as_status() -> None:
    assert BuildRecord(NEW, AT).as_status() == {"image": NEW, "requestedAt": AT}
    assert BuildRecord(NEW, AT, "web-4").as_status() == {
        "image": NEW,
        "requestedAt": AT,
        "build": "web-4",
    }
    # What as_status writes, build_ledger reads back.
    status = {"builds": {"web": BuildRecord(NEW, AT, "web-4").as_status()}}
    assert build_ledger(status) == {"web": BuildRecord(NEW, AT, "web-4")}


# -- writes in flight (inflight.Overlay) ----------------------------------------------------

WEB_ID = ("Deployment", "demo", "web")


def info_with(web: str, *, name: str = "web", namespace: str = "demo") -> WorkloadInfo:
    return deployment_info(workload(name=name, namespace=namespace, web=web))


def recorded_overlay() -> tuple[Overlay, WorkloadInfo]:
    before = info_with(OLD)
    overlay = Overlay()
    overlay.record(before.id, {"web": Written(OLD, NEW)})
    return overlay, before


def test_overlay_records_per_object_and_container() -> None:
    overlay, before = recorded_overlay()
    assert before.id == WEB_ID
    assert overlay.written(WEB_ID) == {"web": Written(OLD, NEW)}
    assert overlay.written(("Deployment", "demo", "api")) == {}
    # A later write of another container adds to the object's entry.
    overlay.record(WEB_ID, {"init:setup": Written(TOOLS, NEW)})
    assert overlay.written(WEB_ID) == {"web": Written(OLD, NEW), "init:setup": Written(TOOLS, NEW)}
    assert len(overlay) == 1


def test_overlay_shows_our_write_until_the_index_catches_up() -> None:
    overlay, before = recorded_overlay()
    seen = overlay.apply(before.id, before.containers)
    assert [c.image for c in seen] == [NEW, ENVOY, TOOLS]
    assert [(c.name, c.init, c.index) for c in seen] == [
        (c.name, c.init, c.index) for c in before.containers
    ]
    # Still in flight: asking again gives the same answer, and an unrelated update
    # (the index shows the old image still) keeps the entry.
    overlay.observe(before.id, before.containers)
    assert overlay.apply(before.id, before.containers)[0].image == NEW
    assert overlay.images


def test_overlay_forgets_once_the_index_shows_our_image() -> None:
    overlay, before = recorded_overlay()
    caught_up = info_with(NEW)
    overlay.observe(caught_up.id, caught_up.containers)
    assert overlay.images == {}
    assert overlay.apply(caught_up.id, caught_up.containers) is caught_up.containers
    # A later rollback to the old image is not hidden by a stale entry.
    assert overlay.apply(before.id, before.containers) is before.containers


def test_overlay_forgets_when_someone_else_changed_the_image() -> None:
    overlay, _ = recorded_overlay()
    theirs = info_with(OTHER)
    # Until the index is observed, the entry does not cover a container that moved on.
    assert overlay.apply(theirs.id, theirs.containers)[0].image == OTHER
    overlay.observe(theirs.id, theirs.containers)
    assert overlay.images == {}


def test_overlay_forgets_a_container_that_disappeared() -> None:
    overlay, _ = recorded_overlay()
    gone = deployment_info(workload(containers=[{"name": "proxy", "image": ENVOY}]))
    overlay.observe(gone.id, gone.containers)
    assert overlay.images == {}


@pytest.mark.parametrize(
    ("name", "namespace"),
    [pytest.param("api", "demo", id="other-name"), pytest.param("web", "other", id="other-ns")],
)
def test_overlay_is_per_object(name: str, namespace: str) -> None:
    overlay, _ = recorded_overlay()
    other = info_with(OLD, name=name, namespace=namespace)
    assert overlay.apply(other.id, other.containers) is other.containers
    overlay.observe(other.id, info_with(NEW, name=name, namespace=namespace).containers)
    assert len(overlay.images) == 1


def test_overlay_forget() -> None:
    overlay, before = recorded_overlay()
    overlay.forget(before.id)
    overlay.forget(before.id)  # twice is fine
    assert overlay.images == {}
    assert len(overlay) == 0


@pytest.mark.parametrize(
    ("after", "echo"),
    [
        pytest.param(
            [{"name": "web", "image": NEW}, {"name": "proxy", "image": ENVOY}], True, id="ours"
        ),
        pytest.param(
            [{"name": "web", "image": OTHER}, {"name": "proxy", "image": ENVOY}],
            False,
            id="theirs",
        ),
        pytest.param(
            [{"name": "web", "image": NEW}, {"name": "proxy", "image": OTHER}],
            False,
            id="ours-and-theirs",
        ),
        pytest.param(
            [{"name": "web", "image": OLD}, {"name": "proxy", "image": ENVOY}],
            False,
            id="nothing-changed",
        ),
        pytest.param([{"name": "web", "image": NEW}], False, id="a-container-went"),
        pytest.param(
            [{"name": "proxy", "image": ENVOY}, {"name": "web", "image": NEW}],
            False,
            id="reordered",
        ),
    ],
)
def test_overlay_is_echo(after: list[dict[str, str]], echo: bool) -> None:
    overlay, before = recorded_overlay()
    now = deployment_info(workload(containers=after))
    assert overlay.is_echo(before.id, before.containers, now.containers) is echo


def test_overlay_is_no_echo_without_a_write() -> None:
    before, now = info_with(OLD), info_with(NEW)
    assert Overlay().is_echo(before.id, before.containers, now.containers) is False


def test_overlay_makes_a_replan_see_nothing_to_do() -> None:
    # What the reconciler does: plan the annotated workload with our writes applied.
    body = workload(triggers=annotation("Deployment", ("app:latest", "web")))
    w = world(imagestream(), body)
    found = w.workload("Deployment", "demo", "web")
    assert found is not None
    assert plan_annotated(w, found).changes == (ImageChange(container("web", OLD), NEW, APP),)
    overlay = Overlay()
    overlay.record(found.id, {"web": Written(OLD, NEW)})
    current = dataclasses.replace(found, containers=overlay.apply(found.id, found.containers))
    assert plan_annotated(w, current).changes == ()


def test_native_off_an_annotated_workload_is_still_an_imagetrigger_target() -> None:
    body = workload(triggers=annotation("Deployment", ("app:latest", "web")))
    trigger = image_trigger([WEB_TARGET])
    w = world(imagestream(), body, trigger, native=False)
    found = w.workload("Deployment", "demo", "web")
    assert found is not None
    assert found.annotated is False
    assert plan_annotated(w, found).changes == ()  # the annotation is not even read
    [target] = plan_trigger(w, trigger_info(trigger)).targets
    assert (target.action, changed(target)) == (Action.Update, [("web", OLD, NEW)])


def test_an_unwatched_trigger_is_applied_when_the_object_is_planned() -> None:
    # from.kind DockerImage with a "stream:tag" name: OpenShift's updater resolves it as an
    # ImageStreamTag all the same when it processes the object.
    entries = json.loads(annotation("Deployment", ("app:latest", "web")))
    entries[0]["from"]["kind"] = "DockerImage"
    body = workload(triggers=json.dumps(entries))
    plan = plan_annotated(_is_world(world(imagestream(), body)), deployment_info(body))
    assert plan.changes == (ImageChange(container("web", OLD), NEW, APP),)
    assert [p.reason for p in plan.problems] == [ProblemCode.UnsupportedFromKind]
