"""Bodies as the API server returns them, and a scripted stand-in for ``act.client.Api``.

Shared by the unit tests of the work-queue core (intake, writer, reconcile). The
bodies are small but realistic: every field the projections read is where the API
server puts it, and nothing else matters to them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagestream_trigger.api import (
    ALLOWED_NAMESPACES_ANNOTATION,
    LAST_APPLIED_ANNOTATION,
    TRIGGERS_ANNOTATION,
    TargetKind,
)
from imagestream_trigger.errors import ApiError
from imagestream_trigger.identity import ServiceAccount
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.resolve import TagRef

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
NOW = "2025-01-10T10:20:00Z"

WORKLOAD_KINDS = (
    TargetKind.Deployment,
    TargetKind.StatefulSet,
    TargetKind.DaemonSet,
    TargetKind.CronJob,
)


def imagestream(
    *,
    namespace: str = "demo",
    name: str = "app",
    tags: Mapping[str, str] | None = None,
    allowed: str | None = None,
    generation: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``tags``: tag -> dockerImageReference of its newest item (default latest=NEW)."""
    tags = {"latest": NEW} if tags is None else tags
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-is-{name}",
        "generation": generation,
    }
    if allowed is not None:
        metadata["annotations"] = {ALLOWED_NAMESPACES_ANNOTATION: allowed}
    status_tags: list[dict[str, Any]] = []
    for tag, reference in tags.items():
        entry: dict[str, Any] = {
            "tag": tag,
            "items": [
                {
                    "created": "2025-01-10T10:15:02Z",
                    "dockerImageReference": reference,
                    "image": reference.rpartition("@")[2],
                    "generation": generation,
                }
            ],
        }
        if conditions is not None:
            entry["conditions"] = conditions
        status_tags.append(entry)
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": metadata,
        "spec": {
            "tags": [
                {"name": tag, "from": {"kind": "DockerImage", "name": f"quay.io/acme/app:{tag}"}}
                for tag in tags
            ]
        },
        "status": {"dockerImageRepository": f"{REGISTRY}/{namespace}/{name}", "tags": status_tags},
    }


def annotation(
    kind: str, *entries: tuple[str, str], namespace: str | None = None, paused: bool = False
) -> str:
    """The OpenShift trigger annotation; ``entries``: (stream:tag, container name)."""
    base = ".".join(KINDS[TargetKind(kind)].pod_spec)
    triggers = []
    for stream_tag, container in entries:
        source: dict[str, Any] = {"kind": "ImageStreamTag", "name": stream_tag}
        if namespace is not None:
            source["namespace"] = namespace
        triggers.append(
            {
                "from": source,
                "fieldPath": f'{base}.containers[?(@.name=="{container}")].image',
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
    last_applied: str | None = None,
    replicas: int | None = None,
    resource_version: str = "1",
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{kind}-{name}",
        "resourceVersion": resource_version,
        "labels": labels if labels is not None else {"app": name},
    }
    if triggers is not None or last_applied is not None:
        metadata["annotations"] = {}
        if triggers is not None:
            metadata["annotations"][TRIGGERS_ANNOTATION] = triggers
        if last_applied is not None:
            metadata["annotations"][LAST_APPLIED_ANNOTATION] = last_applied
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
    body: dict[str, Any] = {
        "apiVersion": "batch/v1" if kind == TargetKind.CronJob else "apps/v1",
        "kind": str(kind),
        "metadata": metadata,
        "spec": spec,
    }
    if replicas is not None:
        body["status"] = {"replicas": replicas, "readyReplicas": replicas}
    return body


def buildconfig(
    *,
    name: str = "web",
    namespace: str = "demo",
    labels: dict[str, str] | None = None,
    built: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """``built``: (ImageStreamTag name, lastTriggeredImageID) in status.imageChangeTriggers."""
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-bc-{name}",
            "labels": labels if labels is not None else {"app": name},
        },
        "spec": {"strategy": {"type": "Docker", "dockerStrategy": {}}},
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
    name: str = "follow-app",
    namespace: str = "demo",
    source: str = "app:latest",
    source_namespace: str | None = None,
    suspend: bool | None = None,
    dry_run: bool | None = None,
    service_account: str | None = None,
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    src: dict[str, Any] = {"imageStreamTag": source}
    if source_namespace is not None:
        src["namespace"] = source_namespace
    spec: dict[str, Any] = {"source": src, "targets": targets}
    if suspend is not None:
        spec["suspend"] = suspend
    if dry_run is not None:
        spec["dryRun"] = dry_run
    if service_account is not None:
        spec["serviceAccountName"] = service_account
    body: dict[str, Any] = {
        "apiVersion": "imagestream-trigger.dev/v1alpha1",
        "kind": "ImageTrigger",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-it-{name}",
            "generation": generation,
        },
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def build(name: str, reference: str, *, bc: str = "web") -> dict[str, Any]:
    """A Build as listed from the API, started by an image change to ``reference``."""
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "Build",
        "metadata": {"name": name, "labels": {"openshift.io/build-config.name": bc}},
        "spec": {
            "triggeredBy": [
                {"message": "Image change", "imageChangeBuild": {"imageID": reference}},
            ]
        },
    }


# -- a scripted Api ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    via: str  # "request" or "with_retries"
    method: str
    path: str
    params: Mapping[str, str] | None
    body: Any
    content_type: str | None
    # The impersonated user ("system:serviceaccount:ns:name"), None for the operator itself.
    acting_as: str | None = None


Answer = Any  # a value to return, an exception to raise, or a callable taking the Call


def api_error(status: int | None, message: str = "refused") -> ApiError:
    """An error as ``act.client`` raises it (the classes come from ``client._error``)."""
    from imagestream_trigger.act.client import _error

    if status is None:
        return ApiError(f"connection dropped: {message}", status=None)
    return _error(status, {"kind": "Status", "message": message}, "X", "/path")


@dataclass
class FakeApi:
    """Records every request; answers from rules (method, path suffix) in the order given.

    A rule's answers are used one per matching call; its last answer stays for any
    further call. Without a matching rule a call returns ``{}``. ``with_retries`` with a
    POST fails the test, as the real one refuses it: a POST must never be retried.
    """

    calls: list[Call] = field(default_factory=list)
    rules: list[tuple[str, str, list[Answer]]] = field(default_factory=list)
    # Shared with other recorders (a ledger, say) to check the order of effects.
    log: list[tuple[str, ...]] = field(default_factory=list)
    # The Accept header of each call, in order (a metadata-only LIST asks for less).
    accepts: list[str] = field(default_factory=list)

    def on(self, method: str, path_suffix: str, *answers: Answer) -> FakeApi:
        self.rules.append((method, path_suffix, list(answers)))
        return self

    def writes(self) -> list[Call]:
        """Every call that is not a read."""
        return [c for c in self.calls if c.method != "GET"]

    def to(self, suffix: str, method: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.path.endswith(suffix) and (method is None or c.method == method)
        ]

    async def _answer(self, call: Call) -> Any:
        self.calls.append(call)
        self.log.append((call.method, call.path))
        for method, suffix, answers in self.rules:
            if method == call.method and call.path.endswith(suffix):
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, BaseException):
                    raise answer
                if callable(answer):
                    result = answer(call)
                    if hasattr(result, "__await__"):
                        result = await result
                    return result
                return answer
        return {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        resource: str,
        request_timeout: float = 30.0,
        gated: bool = True,
        impersonate: ServiceAccount | None = None,
        accept: str = "application/json",
    ) -> Any:
        assert resource, "every request names its resource, for the metrics"
        self.accepts.append(accept)
        return await self._answer(
            Call(
                "request",
                method,
                path,
                params,
                body,
                content_type if body is not None else None,
                impersonate.username if impersonate is not None else None,
            )
        )

    async def with_retries(
        self,
        method: str,
        path: str,
        *,
        attempts: int = 3,
        first_delay: float = 0.2,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        resource: str,
        impersonate: ServiceAccount | None = None,
        accept: str = "application/json",
    ) -> Any:
        assert method != "POST", "a POST is not idempotent: never retry it blindly"
        assert resource
        self.accepts.append(accept)
        return await self._answer(
            Call(
                "with_retries",
                method,
                path,
                params,
                body,
                content_type if body is not None else None,
                impersonate.username if impersonate is not None else None,
            )
        )
