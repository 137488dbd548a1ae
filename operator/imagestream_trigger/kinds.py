"""The one table of target kinds, and the containers of a pod template. Pure.

Each kind is registered once, here: where it is served, where its pod spec
lives (hence the JSON Patch path of a container image and the base of
OpenShift's trigger fieldPaths), whether it is patched or instantiated, and
how its rollout is read (rollout.py; none for CronJobs and BuildConfigs).
Everything else (the watches, the index, the planner, the writer, the
permissions checked at start-up) reads this table rather than keeping its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from imagestream_trigger.api import ApiResource, TargetKind
from imagestream_trigger.rollout import (
    Health,
    daemonset_health,
    deployment_health,
    statefulset_health,
)


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: TargetKind
    resource: ApiResource
    # Keys from the object's root to its pod spec; () for a kind without one (BuildConfig).
    pod_spec: tuple[str, ...] = ()
    # Reads a body's rollout (rollout.py); None for a kind with no rollout to follow.
    health: Callable[[Mapping[str, Any]], Health] | None = None

    @property
    def is_workload(self) -> bool:
        """Its container images are patched (rather than a build started)."""
        return bool(self.pod_spec)

    @property
    def api_version(self) -> str:
        return f"{self.resource.group}/{self.resource.version}"

    @property
    def field_path_base(self) -> str:
        """How OpenShift's trigger fieldPaths must start for this kind ("spec.template.spec.")."""
        return ".".join(self.pod_spec) + "."

    @property
    def patch_base(self) -> str:
        """The JSON Pointer of the pod spec ("/spec/template/spec")."""
        return "/" + "/".join(self.pod_spec)


_POD: Final = ("spec", "template", "spec")

KINDS: Final[Mapping[TargetKind, KindSpec]] = MappingProxyType(
    {
        TargetKind.Deployment: KindSpec(
            TargetKind.Deployment,
            ApiResource("apps", "v1", "deployments"),
            _POD,
            deployment_health,
        ),
        TargetKind.StatefulSet: KindSpec(
            TargetKind.StatefulSet,
            ApiResource("apps", "v1", "statefulsets"),
            _POD,
            statefulset_health,
        ),
        TargetKind.DaemonSet: KindSpec(
            TargetKind.DaemonSet,
            ApiResource("apps", "v1", "daemonsets"),
            _POD,
            daemonset_health,
        ),
        TargetKind.CronJob: KindSpec(
            TargetKind.CronJob,
            ApiResource("batch", "v1", "cronjobs"),
            ("spec", "jobTemplate", "spec", "template", "spec"),
        ),
        TargetKind.BuildConfig: KindSpec(
            TargetKind.BuildConfig, ApiResource("build.openshift.io", "v1", "buildconfigs")
        ),
    }
)
WORKLOAD_KINDS: Final[tuple[TargetKind, ...]] = tuple(k for k, s in KINDS.items() if s.is_workload)


def workload_kind(kind: str) -> KindSpec:
    """The table entry of a kind with a pod template; ValueError for any other."""
    try:
        spec = KINDS[TargetKind(kind)]
    except ValueError:
        raise ValueError(f"{kind!r} has no pod template") from None
    if not spec.is_workload:
        raise ValueError(f"{kind!r} has no pod template")
    return spec


@dataclass(frozen=True, slots=True)
class Container:
    """A container of a pod template, located so that a patch can address it."""

    name: str
    image: str
    init: bool  # listed in initContainers rather than containers
    index: int  # position in its own list

    @property
    def key(self) -> str:
        """Key in the last-applied annotation: "web", or "init:setup" for init containers."""
        return f"init:{self.name}" if self.init else self.name


def containers_of(kind: str, body: Mapping[str, Any]) -> tuple[Container, ...]:
    """The containers, then the init containers, of a workload body; () if it has none.

    Total: whatever JSON the body holds, this returns (odd entries read as empty).
    """
    spec: Any = body
    for key in workload_kind(kind).pod_spec:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
    if not isinstance(spec, Mapping):
        return ()
    found: list[Container] = []
    for field, init in (("containers", False), ("initContainers", True)):
        entries = spec.get(field)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            entry = entry if isinstance(entry, Mapping) else {}
            name, image = entry.get("name"), entry.get("image")
            # Interned: container names repeat across workloads, and an image is most often
            # the reference of a stream tag (resolve.py interns those too): one copy each.
            found.append(
                Container(
                    name=sys.intern(str(name)) if isinstance(name, str) else "",
                    image=sys.intern(str(image)) if isinstance(image, str) else "",
                    init=init,
                    index=index,
                )
            )
    return tuple(found)
