"""Decide, from memory alone, what every follower of an ImageStream tag should run.

Pure: reads the ``World`` (the in-memory indexes) and returns plans, each target
with an ``Action``; the writer carries them out and the reporter reports. The
vocabularies stay apart: an ``Action`` is what to do, the writer's ``Outcome``
is what happened, and a ``Reason`` is what the status and Events say.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from imagestream_trigger.api import Reason, TargetKind
from imagestream_trigger.decide import ImageChange, applied_record, plan_annotation, plan_target
from imagestream_trigger.gate import (
    quarantine_after,
    quarantine_entries,
    quarantined,
    retry_hint,
    retry_matches,
)
from imagestream_trigger.index import (
    BuildConfigInfo,
    StreamInfo,
    TriggerInfo,
    WorkloadInfo,
)
from imagestream_trigger.models import LabelSelector, Target, selector_matches
from imagestream_trigger.policy import Unmatched
from imagestream_trigger.resolve import ResolvedImage, TagRef
from imagestream_trigger.triggers import Problem, ProblemCode, check_containers


class World(Protocol):
    """What the operator knows right now, from its watches."""

    def stream(self, namespace: str, name: str) -> StreamInfo | None: ...

    def workload(self, kind: str, namespace: str, name: str) -> WorkloadInfo | None: ...

    def buildconfig(self, namespace: str, name: str) -> BuildConfigInfo | None: ...

    def names_in(self, kind: TargetKind, namespace: str) -> Iterable[str]: ...


class Action(StrEnum):
    """What to do about one target."""

    Update = "Update"  # write the planned container images
    Build = "Build"  # start a build of this image
    Recover = "Recover"  # a build was requested and its outcome is unknown: ask first
    InSync = "InSync"  # the target already follows the source: nothing to do
    Blocked = "Blocked"  # cannot act (``reason`` says why) until something changes


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
    action: Action
    message: str
    reason: Reason | None = None  # why it is Blocked
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
    # The tag a policy picked (spec.source.imageStream); None: the spec's own tag.
    picked: TagRef | None = None

    @property
    def source(self) -> TagRef | None:
        """The tag followed in this pass: the spec's, or the one its policy picked."""
        return self.picked or self.trigger.source


def describe_selector(selector: LabelSelector) -> str:
    terms = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        values = ",".join(req.values)
        terms.append(f"{req.key} {req.operator}" + (f" ({values})" if values else ""))
    return ", ".join(terms) or "everything"


def plan_trigger(world: World, trigger: TriggerInfo) -> TriggerPlan:
    if trigger.error is not None or trigger.spec is None or trigger.source is None:
        message = trigger.error or "the spec cannot be read"
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
    picked = _pick(trigger, stream, source)
    if isinstance(picked, Unmatched):
        return TriggerPlan(trigger, Reason.NoTagMatches, picked.message)
    source = picked or source
    image = stream.tags.get(source.tag)
    if image is None:
        return TriggerPlan(
            trigger,
            Reason.TagNotResolved,
            f"tag {source.tag!r} of ImageStream {source.namespace}/{source.stream} has no "
            "image yet; waiting for an import or a push",
        )
    builds = build_ledger(trigger.status)
    hold = _hold(trigger, image.reference, source)
    plans: list[TargetPlan] = []
    for target in trigger.spec.targets:
        found = _plan_targets(world, namespace, target, stream, image, source, builds)
        plans += [hold(p) for p in found] if hold is not None else found
    return TriggerPlan(trigger, None, "", image, tuple(plans), picked)


def _pick(trigger: TriggerInfo, stream: StreamInfo, source: TagRef) -> TagRef | Unmatched | None:
    """With a tag policy (spec.source.imageStream), the tag it picks among the stream's tags
    that have an image, or why none qualifies; None for a trigger following one tag.

    The tag ``spec.rollout.promoteTo`` points at in the same stream is no candidate: the
    trigger's own promotions must not become what it follows.
    """
    assert trigger.spec is not None
    policy = trigger.spec.source.tag_policy()
    if policy is None:
        return None
    tags: Iterable[str] = stream.tags
    promote = trigger.spec.rollout.promote_to if trigger.spec.rollout is not None else None
    if promote is not None:
        to = promote.tag_ref(trigger.ref.namespace)
        if (to.namespace, to.stream) == (source.namespace, source.stream):
            tags = [tag for tag in stream.tags if tag != to.tag]
    chosen = policy.choose(tags, stream=f"{source.namespace}/{source.stream}")
    if isinstance(chosen, Unmatched):
        return chosen
    return dataclasses.replace(source, tag=sys.intern(chosen.tag))


def _hold(
    trigger: TriggerInfo, reference: str, source: TagRef
) -> Callable[[TargetPlan], TargetPlan] | None:
    """With spec.rollout, what keeps a quarantined image from being applied again.

    The image is held back from every target that would get it (a write, a build) when the
    trigger's status quarantines it, or when a workload's record says we reverted it there
    (the status that said so may have been lost in a crash), unless the trigger's
    retry-image annotation names it. Targets already running it are left as they are.
    """
    if trigger.spec is None or trigger.spec.rollout is None:
        return None
    if retry_matches(trigger.retry_image, reference):
        return None
    entries, _ = quarantine_after(quarantine_entries(trigger.status), trigger.retry_image)
    entry = quarantined(entries, reference)
    hint = retry_hint(trigger.ref.name, reference)

    def hold(plan: TargetPlan) -> TargetPlan:
        if plan.action not in (Action.Update, Action.Build):
            return plan
        if entry is not None:
            where = f" on {', '.join(entry.targets)}" if entry.targets else ""
            why = f" ({entry.reason})" if entry.reason else ""
            message = f"{reference} is quarantined: its rollout failed{where}{why}; {hint}"
        elif plan.workload is not None and _reverted_here(plan.workload, reference, source):
            message = f"{reference} was reverted here after its rollout failed; {hint}"
        else:
            return plan
        return dataclasses.replace(
            plan, action=Action.Blocked, reason=Reason.Quarantined, message=message, changes=()
        )

    return hold


def _reverted_here(workload: WorkloadInfo, reference: str, followed: TagRef) -> bool:
    source = str(followed)
    return any(
        e.reverted and e.image == reference and e.source == source
        for e in applied_record(workload.annotations).values()
    )


def _plan_targets(
    world: World,
    namespace: str,
    target: Target,
    stream: StreamInfo,
    image: ResolvedImage,
    source: TagRef,
    builds: Mapping[str, BuildRecord],
) -> list[TargetPlan]:
    kind = target.kind
    if target.name is not None:
        names = [target.name]
        if _labels_of(world, kind, namespace, target.name) is None:
            return [
                TargetPlan(
                    kind,
                    target.name,
                    Action.Blocked,
                    f"{kind} {namespace}/{target.name} does not exist",
                    Reason.TargetNotFound,
                )
            ]
    else:
        selector = target.selector or LabelSelector()
        names = sorted(
            name
            for name in set(world.names_in(kind, namespace))
            if (labels := _labels_of(world, kind, namespace, name)) is not None
            and selector_matches(selector, labels)
        )
        if not names:
            label = describe_selector(selector)
            return [
                TargetPlan(
                    kind,
                    f"selector({label})",
                    Action.Blocked,
                    f"no {kind} in {namespace} matches the selector {label}",
                    Reason.TargetNotFound,
                )
            ]
    plans = []
    for name in names:
        if kind is TargetKind.BuildConfig:
            bc = world.buildconfig(namespace, name)
            if bc is not None:
                plans.append(_plan_build(bc, image, source, builds.get(name)))
            continue
        workload = world.workload(kind, namespace, name)
        if workload is None:
            continue
        changes, reason, message = plan_target(
            workload.containers,
            names=target.containers,
            init_names=target.init_containers,
            repositories=stream.repositories,
            resolved=image,
            source=source,
        )
        if changes:
            action = Action.Update
        elif reason is Reason.Unchanged:
            action = Action.InSync
        else:
            action = Action.Blocked
        blocked = reason if action is Action.Blocked else None
        plans.append(TargetPlan(kind, name, action, message, blocked, workload, changes))
    return plans


def _labels_of(
    world: World, kind: TargetKind, namespace: str, name: str
) -> Mapping[str, str] | None:
    if kind is TargetKind.BuildConfig:
        bc = world.buildconfig(namespace, name)
        return bc.labels if bc is not None else None
    workload = world.workload(kind, namespace, name)
    return workload.labels if workload is not None else None


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """An ImageTrigger's record of one BuildConfig's build: the intent, then its outcome.

    Written to the status before ``instantiate`` is sent (``build`` empty) and again
    once its answer is known, so a crash or a lost response in between leaves an
    intent without outcome, which is resolved by asking the cluster, never by
    sending the request again blindly.
    """

    image: str
    requested_at: str = ""
    build: str = ""  # the Build's name once known

    def as_status(self) -> dict[str, str]:
        entry = {"image": self.image, "requestedAt": self.requested_at}
        if self.build:
            entry["build"] = self.build
        return entry


def build_ledger(status: Mapping[str, Any]) -> dict[str, BuildRecord]:
    """BuildConfig name -> its last build record, from an ImageTrigger's status."""
    ledger: dict[str, BuildRecord] = {}
    # Statuses written before the ledger existed: a BuildConfig reported as built.
    targets = status.get("targets")
    for entry in targets if isinstance(targets, list) else []:
        if (
            isinstance(entry, Mapping)
            and entry.get("kind") == TargetKind.BuildConfig
            and entry.get("result") in (Reason.Applied, Reason.Unchanged)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("image"), str)
        ):
            ledger[entry["name"]] = BuildRecord(entry["image"], build="(earlier)")
    builds = status.get("builds")
    for name, entry in builds.items() if isinstance(builds, Mapping) else ():
        if isinstance(name, str) and isinstance(entry, Mapping):
            image = entry.get("image")
            if isinstance(image, str) and image:
                requested, build = entry.get("requestedAt"), entry.get("build")
                ledger[name] = BuildRecord(
                    image,
                    requested if isinstance(requested, str) else "",
                    build if isinstance(build, str) else "",
                )
    return ledger


def _plan_build(
    bc: BuildConfigInfo, image: ResolvedImage, source: TagRef, record: BuildRecord | None
) -> TargetPlan:
    name, reference = bc.ref.name, image.reference
    if (str(source), reference) in bc.built or (
        record is not None and record.image == reference and record.build
    ):
        return TargetPlan(
            TargetKind.BuildConfig,
            name,
            Action.InSync,
            f"a build for {reference} was already started",
            buildconfig=bc,
        )
    if record is not None and record.image == reference:
        return TargetPlan(
            TargetKind.BuildConfig,
            name,
            Action.Recover,
            f"a build for {reference} was requested; finding out whether it started",
            buildconfig=bc,
        )
    return TargetPlan(
        TargetKind.BuildConfig,
        name,
        Action.Build,
        f"start a build for {reference}",
        buildconfig=bc,
    )


def describe_changes(changes: Iterable[ImageChange]) -> str:
    return "; ".join(f"{c.container.key}: {c.container.image} -> {c.new_image}" for c in changes)
