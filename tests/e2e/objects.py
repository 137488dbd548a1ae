"""Builders for the objects e2e tests create, and small waits on their state."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.aio import client as k8s

from imagestream_trigger.act.client import Api
from tests.controlplane import simulate
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, path_for

IMAGE = "image.openshift.io/v1"
BUILD = "build.openshift.io/v1"
TRIGGERS = "imagestream-trigger.dev/v1alpha1"
REPO = "quay.io/acme/app"

POD_SPEC = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
API = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "CronJob": "batch/v1",
}
PLURAL = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "CronJob": "cronjobs",
}


def image_stream(kube: Kube, namespace: str, name: str = "app", **annotations: str) -> None:
    kube.create(
        path_for(IMAGE, "imagestreams", namespace),
        {
            "apiVersion": IMAGE,
            "kind": "ImageStream",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "tags": [
                    {"name": "latest", "from": {"kind": "DockerImage", "name": f"{REPO}:latest"}}
                ]
            },
        },
    )


def imported(
    kube: Kube, namespace: str, stream: str = "app", tag: str = "latest", image: str | None = None
) -> simulate.Imported:
    return simulate.import_image(kube, namespace, stream, tag, image=image)


def trigger_annotation(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


def by_name(
    container: str,
    *,
    tag: str = "app:latest",
    init: bool = False,
    kind: str = "Deployment",
    **extra: Any,
) -> dict[str, Any]:
    base = ".".join(POD_SPEC[kind]) + "."
    field = "initContainers" if init else "containers"
    return {
        "from": {"kind": "ImageStreamTag", "name": tag},
        "fieldPath": f'{base}{field}[?(@.name=="{container}")].image',
        **extra,
    }


def workload(
    kind: str,
    name: str,
    containers: dict[str, str],
    *,
    annotation: str | None = None,
    init: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": n, "image": i} for n, i in containers.items()]}
    if init:
        pod["initContainers"] = [{"name": n, "image": i} for n, i in init.items()]
    if kind == "CronJob":
        pod["restartPolicy"] = "OnFailure"
    template = {"metadata": {"labels": {"app": name}}, "spec": pod}
    if kind == "CronJob":
        spec: dict[str, Any] = {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": template}},
        }
    else:
        spec = {"selector": {"matchLabels": {"app": name}}, "template": template}
        if kind == "StatefulSet":
            spec["serviceName"] = name
    meta: dict[str, Any] = {"name": name, "labels": labels or {"app": name}}
    if annotation is not None:
        meta["annotations"] = {"image.openshift.io/triggers": annotation}
    return {"apiVersion": API[kind], "kind": kind, "metadata": meta, "spec": spec}


def create(kube: Kube, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    plural = (
        PLURAL.get(obj["kind"])
        or {
            "ImageTrigger": "imagetriggers",
            "BuildConfig": "buildconfigs",
            "ImageStream": "imagestreams",
        }[obj["kind"]]
    )
    created: dict[str, Any] = kube.create(path_for(obj["apiVersion"], plural, namespace), obj)
    return created


def images_of(obj: dict[str, Any], *, init: bool = False) -> dict[str, str]:
    spec: Any = obj
    for key in POD_SPEC[obj["kind"]]:
        spec = spec[key]
    return {c["name"]: c["image"] for c in spec.get("initContainers" if init else "containers", [])}


def workload_path(kind: str, namespace: str, name: str) -> str:
    return path_for(API[kind], PLURAL[kind], namespace, name)


def image_trigger(
    name: str, source: str, targets: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": TRIGGERS,
        "kind": "ImageTrigger",
        "metadata": {"name": name},
        "spec": {"source": {"imageStreamTag": source}, "targets": targets, **spec},
    }


def buildconfig(name: str, tag: str = "app:latest", *, own_trigger: bool = True) -> dict[str, Any]:
    """A Docker-strategy BuildConfig from ``tag``.

    ``own_trigger=False``: without an imageChange trigger of its own (the shipped
    sample's pattern), so the server has nothing to refuse a second build of one
    image with: only the operator's own bookkeeping keeps it to one.
    """
    source = {"kind": "ImageStreamTag", "name": tag}
    triggers = [{"type": "ImageChange", "imageChange": {"from": source}}] if own_trigger else []
    return {
        "apiVersion": BUILD,
        "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {
            "triggers": triggers,
            "source": {"type": "Git", "git": {"uri": "https://example.invalid/app.git"}},
            "strategy": {"type": "Docker", "dockerStrategy": {"from": source}},
            "output": {"to": {"kind": "ImageStreamTag", "name": f"{name}:latest"}},
        },
    }


def events_for(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    events = kube.get(path_for("v1", "events", namespace))["items"]
    return [e for e in events if e["involvedObject"]["name"] == name]


def annotated_web(kube: Kube, namespace: str, *, annotation: str | None = None) -> str:
    """The common case: ImageStream app and Deployment web following app:latest by annotation.

    Returns the Deployment's path; ``annotation`` replaces the default (valid) one.
    """
    image_stream(kube, namespace)
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "web",
            {"web": f"{REPO}:latest"},
            annotation=annotation if annotation is not None else trigger_annotation(by_name("web")),
        ),
    )
    return workload_path("Deployment", namespace, "web")


def web_image(kube: Kube, namespace: str) -> str:
    image: str = images_of(kube.get(workload_path("Deployment", namespace, "web")))["web"]
    return image


def built_by_trigger(kube: Kube, namespace: str) -> None:
    """ImageStream app, BuildConfig app-build, and ImageTrigger "follow" building it on moves."""
    image_stream(kube, namespace)
    create(kube, namespace, buildconfig("app-build"))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "BuildConfig", "name": "app-build"}]),
    )


def trigger_path(namespace: str, name: str = "follow") -> str:
    return path_for(TRIGGERS, "imagetriggers", namespace, name)


def ready(trigger: dict[str, Any]) -> dict[str, Any]:
    """The Ready condition of an ImageTrigger ({} until it has one)."""
    conditions = trigger.get("status", {}).get("conditions", [])
    return dict(next((c for c in conditions if c.get("type") == "Ready"), {}))


def quarantined(trigger: dict[str, Any]) -> list[str]:
    """The images an ImageTrigger's status quarantines (spec.rollout), newest first."""
    return [q["image"] for q in trigger.get("status", {}).get("quarantine") or []]


def wait_reason(
    kube: Kube, namespace: str, reason: str, name: str = "follow", timeout: float = 20
) -> dict[str, Any]:
    found: dict[str, Any] = kube.wait_for(
        trigger_path(namespace, name), lambda t: ready(t).get("reason") == reason, timeout=timeout
    )
    return found


def builds(kube: Kube, namespace: str) -> list[str]:
    return sorted(
        b["metadata"]["name"] for b in kube.get(path_for(BUILD, "builds", namespace))["items"]
    )


def api_for(plane: ControlPlane) -> Api:
    """The operator's own API client, as the cluster's admin."""
    configuration = k8s.Configuration(host=plane.url)
    configuration.ssl_ca_cert = str(plane.ca_file)
    configuration.api_key = {"authorization": f"Bearer {plane.admin_token}"}
    return Api(configuration)
