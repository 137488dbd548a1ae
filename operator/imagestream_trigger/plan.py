"""Decide, from memory alone, what every follower of an ImageStream tag should run.

Pure: reads the ``World`` (a view over the in-memory indexes) and returns plans;
the reconciler executes them and reports. Nothing here does I/O, so it is
unit-tested with a dictionary-backed world.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from imagestream_trigger.api import Reason, TargetKind
from imagestream_trigger.decide import ImageChange, plan_annotation, plan_target
from imagestream_trigger.index import (
    BuildConfigInfo,
    StreamInfo,
    TriggerInfo,
    WorkloadInfo,
)
from imagestream_trigger.models import LabelSelector, Target, selector_matches
from imagestream_trigger.resolve import ResolvedImage, TagRef
from imagestream_trigger.triggers import Problem, ProblemCode, check_containers


class World(Protocol):
    """What the operator knows right now, from its watches."""

    def stream(self, namespace: str, name: str) -> StreamInfo | None: ...

    def object(
        self, kind: TargetKind, namespace: str, name: str
    ) -> WorkloadInfo | BuildConfigInfo | None: ...

    def names_in(self, kind: TargetKind, namespace: str) -> Iterable[str]: ...

    def annotation_followers(
        self, namespace: str, stream: str
    ) -> Iterable[tuple[TargetKind, str, str]]: ...

    def trigger(self, namespace: str, name: str) -> TriggerInfo | None: ...

    def triggers_following(self, namespace: str, stream: str) -> Iterable[tuple[str, str]]: ...

    def triggers_in(self, namespace: str) -> Iterable[str]: ...


def resolver(world: World) -> Callable[[TagRef], ResolvedImage | None]:
    def resolve(ref: TagRef) -> ResolvedImage | None:
        stream = world.stream(ref.namespace, ref.stream)
        return stream.tags.get(ref.tag) if stream else None

    return resolve


# -- the OpenShift annotation -------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnotationPlan:
    workload: WorkloadInfo
    changes: tuple[ImageChange, ...]
    problems: tuple[Problem, ...]  # everything wrong with the annotation, for one Warning


def plan_annotated(world: World, workload: WorkloadInfo) -> AnnotationPlan:
    changes, dynamic = plan_annotation(workload.triggers, workload.containers, resolver(world))
    static = workload.problems + check_containers(workload.triggers, workload.containers)
    # A missing container is found by the static check already (whether or not the tag
    # resolved); planning would say it again in other words once the tag resolves.
    if any(p.reason == ProblemCode.ContainerNotFound for p in static):
        dynamic = tuple(p for p in dynamic if p.reason != ProblemCode.ContainerNotFound)
    unique = tuple(dict.fromkeys(static + dynamic))
    return AnnotationPlan(workload, changes, unique)


# -- ImageTrigger resources -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetPlan:
    kind: TargetKind
    name: str
    reason: Reason  # Applied means: there is something to do (changes or a build)
    message: str
    workload: WorkloadInfo | None = None
    changes: tuple[ImageChange, ...] = ()
    buildconfig: BuildConfigInfo | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class TriggerPlan:
    trigger: TriggerInfo
    # Set when the trigger as a whole cannot act (InvalidSpec, SourceNotFound, ...).
    blocked: Reason | None
    message: str
    image: ResolvedImage | None = None
    targets: tuple[TargetPlan, ...] = ()

    @property
    def source(self) -> TagRef | None:
        return self.trigger.source


def describe_selector(selector: LabelSelector) -> str:
    terms = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        values = ",".join(req.values)
        terms.append(f"{req.key} {req.operator}" + (f" ({values})" if values else ""))
    return ", ".join(terms) or "everything"


def plan_trigger(world: World, trigger: TriggerInfo) -> TriggerPlan:
    if trigger.error is not None or trigger.spec is None or trigger.source is None:
        message = trigger.error.message if trigger.error else "the spec cannot be read"
        return TriggerPlan(trigger, Reason.InvalidSpec, message)
    source, namespace = trigger.source, trigger.ref.namespace
    stream = world.stream(source.namespace, source.stream)
    if stream is None:
        return TriggerPlan(
            trigger,
            Reason.SourceNotFound,
            f"ImageStream {source.namespace}/{source.stream} does not exist (or is not in a "
            "namespace this operator watches)",
        )
    if not stream.allows(namespace):
        return TriggerPlan(
            trigger,
            Reason.CrossNamespaceDenied,
            f"ImageStream {source.namespace}/{source.stream} does not allow ImageTriggers "
            f'from namespace "{namespace}": its owner can add "{namespace}" (or "*") to its '
            "annotation imagestream-trigger.dev/allowed-namespaces",
        )
    image = stream.tags.get(source.tag)
    if image is None:
        return TriggerPlan(
            trigger,
            Reason.TagNotResolved,
            f"tag {source.tag!r} of ImageStream {source.namespace}/{source.stream} has no "
            "image yet; waiting for an import or a push",
        )
    # Builds this trigger started before (from its own status): at most one per image,
    # even across restarts and for BuildConfigs whose own triggers do not record it.
    built = {
        entry.get("name", ""): entry.get("image", "")
        for entry in trigger.status.get("targets") or []
        if entry.get("kind") == TargetKind.BuildConfig
        and entry.get("result") in (Reason.Applied, Reason.Unchanged)
    }
    plans: list[TargetPlan] = []
    for target in trigger.spec.targets:
        plans += _plan_targets(world, namespace, target, stream, image, source, built)
    return TriggerPlan(trigger, None, "", image, tuple(plans))


def _plan_targets(
    world: World,
    namespace: str,
    target: Target,
    stream: StreamInfo,
    image: ResolvedImage,
    source: TagRef,
    built: Mapping[str, str],
) -> list[TargetPlan]:
    kind = target.kind
    if target.name is not None:
        names = [target.name]
        if world.object(kind, namespace, target.name) is None:
            return [
                TargetPlan(
                    kind,
                    target.name,
                    Reason.TargetNotFound,
                    f"{kind} {namespace}/{target.name} does not exist",
                )
            ]
    else:
        selector = target.selector or LabelSelector()
        names = sorted(
            name
            for name in set(world.names_in(kind, namespace))
            if (obj := world.object(kind, namespace, name)) is not None
            and selector_matches(selector, obj.labels)
        )
        if not names:
            label = describe_selector(selector)
            return [
                TargetPlan(
                    kind,
                    f"selector({label})",
                    Reason.TargetNotFound,
                    f"no {kind} in {namespace} matches the selector {label}",
                )
            ]
    plans = []
    for name in names:
        obj = world.object(kind, namespace, name)
        if isinstance(obj, BuildConfigInfo):
            plans.append(_plan_build(obj, image, source, built.get(name) == image.reference))
        elif isinstance(obj, WorkloadInfo):
            changes, reason, message = plan_target(
                obj.containers,
                names=target.containers,
                init_names=target.init_containers,
                repositories=stream.repositories,
                resolved=image,
                source=source,
            )
            plans.append(TargetPlan(kind, name, reason or Reason.Unchanged, message, obj, changes))
    return plans


def _plan_build(
    bc: BuildConfigInfo, image: ResolvedImage, source: TagRef, built_before: bool
) -> TargetPlan:
    name = bc.ref.name
    if built_before or (str(source), image.reference) in bc.built:
        return TargetPlan(
            TargetKind.BuildConfig,
            name,
            Reason.Unchanged,
            f"a build for {image.reference} was already started",
            buildconfig=bc,
        )
    return TargetPlan(
        TargetKind.BuildConfig,
        name,
        Reason.Applied,
        f"start a build for {image.reference}",
        buildconfig=bc,
    )


# -- writes in flight ---------------------------------------------------------------


@dataclass
class Overlay:
    """Writes we made that the watch has not shown us yet.

    Without it, an event arriving between our PATCH and its watch event would
    plan the same change again: a second write (or a failed ``test`` op).
    Entries are dropped as soon as the index shows any newer image.
    """

    # (kind, namespace, name) -> container key -> (image before our write, image we wrote)
    images: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = dataclasses.field(
        default_factory=dict
    )
    builds: set[tuple[str, str, str, str]] = dataclasses.field(default_factory=set)

    def record(self, workload: WorkloadInfo, changes: Iterable[ImageChange]) -> None:
        ref = workload.ref
        pending = self.images.setdefault((ref.kind, ref.namespace, ref.name), {})
        for change in changes:
            pending[change.container.key] = (change.container.image, change.new_image)

    def written(self, kind: str, namespace: str, name: str) -> Mapping[str, str]:
        """Container key -> the image we wrote and the watch has not shown yet."""
        return {key: new for key, (_, new) in self.images.get((kind, namespace, name), {}).items()}

    def apply(self, workload: WorkloadInfo) -> WorkloadInfo:
        """The workload as it will be once our writes show up in the index."""
        ref = workload.ref
        key = (ref.kind, ref.namespace, ref.name)
        pending = self.images.get(key)
        if not pending:
            return workload
        containers = []
        changed = False
        for container in workload.containers:
            entry = pending.get(container.key)
            if entry is not None:
                old, new = entry
                if container.image == old:
                    container = dataclasses.replace(container, image=new)
                    changed = True
                else:  # the index caught up (or someone else wrote): forget ours
                    del pending[container.key]
            containers.append(container)
        for gone in set(pending) - {c.key for c in workload.containers}:
            del pending[gone]  # the container itself went away
        if not pending:
            del self.images[key]
        return dataclasses.replace(workload, containers=tuple(containers)) if changed else workload

    def built(self, bc: BuildConfigInfo, source: TagRef, reference: str) -> bool:
        key = (bc.ref.namespace, bc.ref.name, str(source), reference)
        if (str(source), reference) in bc.built:
            self.builds.discard(key)
            return True
        return key in self.builds

    def record_build(self, bc: BuildConfigInfo, source: TagRef, reference: str) -> None:
        self.builds.add((bc.ref.namespace, bc.ref.name, str(source), reference))


def describe_changes(changes: Iterable[ImageChange]) -> str:
    return "; ".join(f"{c.container.key}: {c.container.image} -> {c.new_image}" for c in changes)
