"""What the plugin says, taken from the operator's own planner. Pure.

Nothing here decides what should be written: ``plan_trigger`` and
``plan_annotated``, the very functions the operator's reconcile pass calls,
decide on indexes filled by the same ``Intake.load`` as the operator's start-up
listing. This module sorts their answers into rows (``list``), explanations
(``why``) and history, and words them, so the plugin cannot tell a story the
operator would not act out. What the planner leaves to the reconcile pass is
applied here by the same rules: ``spec.suspend`` (wins) and ``spec.dryRun``
turn a planned write into none, and an ImageTrigger's build records are read
from its status through the status model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from imagestream_trigger import canary, timing
from imagestream_trigger.api import Reason, TargetKind
from imagestream_trigger.decide import ImageChange
from imagestream_trigger.index import Indexes, TriggerInfo, WorkloadInfo, trigger_info
from imagestream_trigger.kinds import Container, workload_kind
from imagestream_trigger.models import ImageTriggerSpec, selector_matches
from imagestream_trigger.plan import (
    Action,
    AnnotationPlan,
    TargetPlan,
    TriggerPlan,
    describe_changes,
    plan_annotated,
    plan_trigger,
    resolver,
)
from imagestream_trigger.report import status as status_model
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.triggers import AnnotationTrigger, describe_containers, select_container

ANNOTATION: Final = "annotation"
IMAGETRIGGER: Final = "ImageTrigger"


class Verdict(StrEnum):
    """What becomes of one follower, besides the planner's blocking ``Reason``s."""

    Update = "Update"  # the operator would write the image now
    Build = "Build"  # the operator would start a build now
    Recover = "Recover"  # a build was asked for: the operator looks for it, then asks again
    InSync = "InSync"  # nothing to write: the target already follows the source
    Suspended = "Suspended"  # would write, but the ImageTrigger's spec.suspend is true
    DryRun = "DryRun"  # would write, but the ImageTrigger's spec.dryRun is true
    Paused = "Paused"  # an annotation entry with "paused": true
    Overridden = "Overridden"  # a later annotation entry writes the same container
    Voided = "Voided"  # another entry selects no container: OpenShift applies none
    SourceUnreadable = "SourceUnreadable"  # you may not read the source ImageStream
    InvalidAnnotation = "InvalidAnnotation"  # no entry of the annotation can be honoured


PENDING: Final = frozenset(
    {
        Verdict.Update,
        Verdict.Build,
        Verdict.Recover,
        Verdict.Suspended,
        Verdict.DryRun,
        # In canary order (canary.py): written once the canaries or the batch before are done.
        Reason.WaitingForCanary,
        Reason.WaitingForBatch,
        # Held back by a timing rule or until approved (timing.py).
        Reason.Waiting,
        Reason.PendingApproval,
    }
)
# Verdicts that say nothing about a target's state (not counted in ``list``).
UNCOUNTED: Final = frozenset(
    {
        Verdict.Paused,
        Verdict.Overridden,
        Verdict.SourceUnreadable,
        Verdict.InvalidAnnotation,
        Reason.SourceNotFound,
        Reason.TagNotResolved,
        Reason.CrossNamespaceDenied,
        Reason.InvalidSpec,
    }
)
# What the operator reports after a write it could not make: it will not heal by itself.
REPORTED_FAILURES: Final = frozenset({Reason.Forbidden, Reason.Failed})


@dataclass
class Snapshot:
    """What the user may read of the cluster, indexed as the operator indexes it."""

    indexes: Indexes
    # (namespace, stream) -> why the user may not read that source ImageStream
    unreadable: dict[tuple[str, str], str] = field(default_factory=dict)
    # (namespace, name) of an ImageTrigger -> its raw spec.targets, for an invalid spec
    raw_targets: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be listed, and why
    # The moment the timing rules are asked at (maintenance windows, debounce, image age).
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True, slots=True)
class Follower:
    """One trigger following an object: an annotation entry or an ImageTrigger."""

    via: str  # ANNOTATION or IMAGETRIGGER
    name: str  # the entry's fieldPath, or the ImageTrigger's name
    source: str  # "ns/stream:tag"; "" when the spec cannot be read
    verdict: str  # a Verdict, or the planner's Reason when it is blocked
    message: str
    writes: tuple[str, ...] = ()  # what the operator would write for it now
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Why:
    kind: str
    namespace: str
    name: str
    exists: bool
    annotated: bool  # carries image.openshift.io/triggers
    followers: tuple[Follower, ...]
    problems: tuple[str, ...]  # everything wrong with the annotation, "Code: message"

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(w for f in self.followers for w in f.writes)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of ``list``: an ImageTrigger or an annotated workload."""

    namespace: str
    kind: str
    name: str
    sources: tuple[str, ...]
    image: str  # what the (first) source resolves to now; "" if it does not
    up_to_date: int
    pending: int
    failed: int
    status: str
    last_change: str  # RFC 3339; "" if never


@dataclass(frozen=True, slots=True)
class History:
    namespace: str
    name: str
    source: str
    entries: tuple[Mapping[str, Any], ...]  # status.history, newest first
    builds: Mapping[str, Mapping[str, Any]]  # status.builds: BuildConfig -> record


def category(verdict: str) -> str | None:
    """ "upToDate", "pending" or "failed" for ``list``; None for a verdict it does not count."""
    if verdict == Verdict.InSync:
        return "upToDate"
    if verdict in PENDING:
        return "pending"
    if verdict in UNCOUNTED:
        return None
    return "failed"


# -- ImageTriggers -------------------------------------------------------------------


def plan_of(snapshot: Snapshot, info: TriggerInfo) -> TriggerPlan:
    """The operator's plan, with the status read through the status model as it reads it."""
    trigger = dataclasses.replace(info, status=status_model.read(info.status))
    plan = plan_trigger(snapshot.indexes, trigger)
    spec = info.spec
    rollout = timing.holdable(plan)
    if rollout is not None and plan.image is not None and spec is not None:
        # Timing rules and approval, as the reconcile pass asks them. The image's created
        # time (minImageAge) is the one the operator counted from, as its status says.
        held = timing.hold(
            rollout,
            image=plan.image,
            image_created=timing.created_from_status(trigger.status, rollout, plan.image.reference),
            approved_image=spec.approved_image,
            approve_hint=timing.approve_hint(plan),
            now=snapshot.now,
        )
        if held is not None:
            return timing.held_back(plan, held)
    if spec is not None and not (spec.suspend or spec.dry_run):
        # Writes held back in canary order, as the reconcile pass holds them (canary.py).
        ordered = canary.in_order(plan, trigger.status)
        plan = ordered.plan if ordered is not None else plan
    return plan


def _blocked(snapshot: Snapshot, plan: TriggerPlan) -> tuple[str, str]:
    source = plan.source
    if plan.blocked is Reason.SourceNotFound and source is not None:
        why = snapshot.unreadable.get((source.namespace, source.stream))
        if why is not None:
            return Verdict.SourceUnreadable, _unreadable(source, why)
    return str(plan.blocked), plan.message


def _unreadable(source: TagRef, why: str) -> str:
    return (
        f"you may not read ImageStream {source.namespace}/{source.stream} ({why}), so what "
        "the operator, with its own rights, sees of it is unknown here"
    )


def _target_verdict(
    spec: ImageTriggerSpec, target: TargetPlan, reference: str
) -> tuple[str, str, tuple[str, ...]]:
    """(verdict, message, writes) of one planned target, as the reconcile pass acts on it:
    suspended (which wins) or dry run, the writer is never called to write or build."""
    if target.action is Action.InSync:
        return Verdict.InSync, target.message, ()
    if target.action is Action.Blocked:
        return str(target.reason or Reason.Failed), target.message, ()
    if target.action is Action.Update:
        verdict, what = Verdict.Update, describe_changes(target.changes)
        planned = f"would set {what}"
    elif target.action is Action.Build:
        verdict, what = Verdict.Build, f"start a build for {reference}"
        planned = f"would {what}"
    else:  # Recover: the writer asks the cluster before it sends anything
        verdict = Verdict.Recover
        what = f"start a build for {reference} unless the one requested earlier exists"
        planned = (
            f"would look for the Build requested earlier for {reference}, and start one if "
            "there is none"
        )
    if spec.suspend:
        return (
            Verdict.Suspended,
            f"spec.suspend is true, nothing is written; once resumed it {planned}",
            (),
        )
    if spec.dry_run:
        return Verdict.DryRun, f"spec.dryRun is true, nothing is written; it {planned}", ()
    return verdict, planned, (f"{target.key}: {what}",)


def _reported(info: TriggerInfo) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, name) -> (result, message) of the targets whose last write the operator
    reported as failed."""
    status = status_model.read(info.status)
    return {
        (entry["kind"], entry["name"]): (entry["result"], entry.get("message", ""))
        for entry in status.get("targets", [])
        if entry.get("result") in REPORTED_FAILURES
    }


def _targets_object(
    spec: ImageTriggerSpec, kind: TargetKind, name: str, labels: Mapping[str, str] | None
) -> bool:
    """Whether a target of ``spec`` names the object or selects it (as intake wakes it)."""
    return any(
        target.kind == kind
        and (
            target.name == name
            or (
                target.selector is not None
                and labels is not None
                and selector_matches(target.selector, labels)
            )
        )
        for target in spec.targets
    )


def trigger_follower(
    snapshot: Snapshot,
    info: TriggerInfo,
    kind: TargetKind,
    name: str,
    labels: Mapping[str, str] | None,
) -> Follower | None:
    """What ``info`` does to the object, or None if it does not target it."""
    trigger = info.ref.name
    spec = info.spec
    if spec is None:
        raw = snapshot.raw_targets.get((info.ref.namespace, trigger), [])
        if not any(
            isinstance(t, Mapping)
            and t.get("kind") == kind
            and (t.get("name") == name or "selector" in t)
            for t in raw
        ):
            return None
        message = f"the spec is invalid, so the trigger does nothing: {info.error}"
        return Follower(IMAGETRIGGER, trigger, "", Reason.InvalidSpec, message)
    if not _targets_object(spec, kind, name, labels):
        return None
    plan = plan_of(snapshot, info)
    # The tag followed in this pass (with a tag policy: the one it picked).
    source = str(plan.source) if plan.source is not None else ""
    if plan.blocked is not None:
        verdict, message = _blocked(snapshot, plan)
        also = ("spec.suspend is true as well",) if spec.suspend else ()
        return Follower(IMAGETRIGGER, trigger, source, verdict, message, notes=also)
    planned = next((t for t in plan.targets if t.kind == kind and t.name == name), None)
    if planned is None:  # the same labels decide both; kept total all the same
        return None
    assert plan.image is not None  # not blocked: the tag resolved
    verdict, message, writes = _target_verdict(spec, planned, plan.image.reference)
    notes: list[str] = []
    account = info.service_account_name
    if account is not None and writes:
        notes.append(
            f"written as ServiceAccount {info.ref.namespace}/{account} "
            "(spec.serviceAccountName): its rights decide"
        )
    failure = _reported(info).get((kind, name))
    if failure is not None and verdict in PENDING:
        notes.append(f"the operator's last attempt: {failure[0]}: {failure[1]}")
    return Follower(IMAGETRIGGER, trigger, source, verdict, message, writes, tuple(notes))


def trigger_row(snapshot: Snapshot, info: TriggerInfo) -> Row:
    spec = info.spec
    status = status_model.read(info.status)
    base = Row(
        namespace=info.ref.namespace,
        kind=IMAGETRIGGER,
        name=info.ref.name,
        sources=(str(info.source),) if info.source is not None else (),
        image="",
        up_to_date=0,
        pending=0,
        failed=0,
        status=str(Reason.InvalidSpec),
        last_change=status.get("lastTriggerTime", ""),
    )
    if spec is None:
        return base
    plan = plan_of(snapshot, info)
    if plan.picked is not None:  # with a tag policy: the tag it picked
        base = dataclasses.replace(base, sources=(str(plan.picked),))
    image = plan.image.reference if plan.image is not None else ""
    held = plan.blocked in (Reason.Waiting, Reason.PendingApproval)
    if plan.blocked is not None and not held:
        return dataclasses.replace(base, image=image, status=_blocked(snapshot, plan)[0])
    reported = _reported(info)
    counts = {"upToDate": 0, "pending": 0, "failed": 0}
    failing: list[str] = []
    for target in plan.targets:
        verdict = _target_verdict(spec, target, image)[0]
        failure = reported.get((target.kind, target.name))
        if failure is not None and verdict in PENDING and not spec.suspend:
            verdict = failure[0]  # tried and refused: it will not heal by itself
        counted = category(verdict)
        if counted is not None:
            counts[counted] += 1
        if counted == "failed":
            failing.append(verdict)
    if spec.suspend:
        verdict = Verdict.Suspended
    elif held:  # a timing rule or an approval holds the image: its targets wait (pending)
        verdict = str(plan.blocked)
    elif failing:
        verdict = failing[0]
    elif counts["pending"]:
        verdict = Verdict.DryRun if spec.dry_run else "Pending"
    else:
        verdict = Verdict.InSync
    return dataclasses.replace(
        base,
        image=image,
        up_to_date=counts["upToDate"],
        pending=counts["pending"],
        failed=counts["failed"],
        status=str(verdict),
    )


# -- the OpenShift annotation --------------------------------------------------------


def annotation_followers(
    snapshot: Snapshot, workload: WorkloadInfo
) -> tuple[tuple[Follower, ...], AnnotationPlan]:
    """One follower per honoured entry of the annotation, and the operator's plan.

    The plan decides what is written; each entry's verdict says which part of that
    (or which reason for nothing) is its own, by OpenShift's rules as
    ``decide.plan_annotation`` applies them: paused entries are skipped, an unresolved
    tag is skipped, the first resolved entry without its container voids every change,
    and of two entries on one container the later one wins.
    """
    world = snapshot.indexes
    plan = plan_annotated(world, workload)
    resolve = resolver(world)
    containers = workload.containers
    winner: dict[tuple[bool, int], AnnotationTrigger] = {}
    voided = False
    for trigger in workload.triggers:
        if trigger.paused or resolve(trigger.source) is None:
            continue
        container = select_container(trigger.container, containers)
        if container is None:
            voided = True
            break
        winner[(container.init, container.index)] = trigger
    changes = {(c.container.init, c.container.index): c for c in plan.changes}
    followers: list[Follower] = []
    for trigger in workload.triggers:
        verdict, message, writes = _entry_verdict(
            snapshot, trigger, containers, voided, winner, changes
        )
        followers.append(
            Follower(ANNOTATION, trigger.field_path, str(trigger.source), verdict, message, writes)
        )
    if not workload.triggers and plan.problems:
        followers.append(
            Follower(
                ANNOTATION,
                "",
                "",
                Verdict.InvalidAnnotation,
                "no entry of the annotation can be honoured; see its problems",
            )
        )
    return tuple(followers), plan


def _entry_verdict(
    snapshot: Snapshot,
    trigger: AnnotationTrigger,
    containers: Sequence[Container],
    voided: bool,
    winner: Mapping[tuple[bool, int], AnnotationTrigger],
    changes: Mapping[tuple[bool, int], ImageChange],
) -> tuple[str, str, tuple[str, ...]]:
    """(verdict, message, writes) of one annotation entry, within its object's plan."""
    if trigger.paused:
        return (
            Verdict.Paused,
            '"paused": true, so OpenShift and the operator skip it until it is unpaused',
            (),
        )
    image = resolver(snapshot.indexes)(trigger.source)
    if image is None:
        return (*_unresolved(snapshot, trigger.source), ())
    container = select_container(trigger.container, containers)
    if container is None:
        return (
            Reason.ContainerNotFound,
            f"selects no container (the object has {describe_containers(containers)}), "
            "so no entry of this annotation is applied, as in OpenShift",
            (),
        )
    if voided:
        return (
            Verdict.Voided,
            "another entry selects no container, so no entry of this annotation is applied, "
            "as in OpenShift",
            (),
        )
    where = (container.init, container.index)
    if winner.get(where) is not trigger:
        later = winner[where]
        return (
            Verdict.Overridden,
            f"{later.field_path} also sets {container.key} and comes later in the annotation, "
            "so it wins",
            (),
        )
    change = changes.get(where)
    if change is not None:
        what = describe_changes([change])
        return Verdict.Update, f"would set {what}", (what,)
    return Verdict.InSync, f"{container.key} already runs {image.reference}", ()


def _unresolved(snapshot: Snapshot, source: TagRef) -> tuple[str, str]:
    stream = snapshot.indexes.stream(source.namespace, source.stream)
    if stream is not None:
        return Reason.TagNotResolved, (
            f"tag {source.tag!r} of ImageStream {source.namespace}/{source.stream} has no "
            "image yet; waiting for an import or a push"
        )
    why = snapshot.unreadable.get((source.namespace, source.stream))
    if why is not None:
        return Verdict.SourceUnreadable, _unreadable(source, why)
    return Reason.SourceNotFound, (
        f"ImageStream {source.namespace}/{source.stream} does not exist; the entry waits for it"
    )


def annotated_row(snapshot: Snapshot, workload: WorkloadInfo) -> Row:
    followers, _ = annotation_followers(snapshot, workload)
    counts = {"upToDate": 0, "pending": 0, "failed": 0}
    for f in followers:
        counted = category(f.verdict)
        if counted is not None:
            counts[counted] += 1
    verdicts = [f.verdict for f in followers]
    failed = [v for v in verdicts if category(v) == "failed"]
    waiting = [
        v
        for v in verdicts
        if v in (Reason.SourceNotFound, Reason.TagNotResolved, Verdict.SourceUnreadable)
    ]
    if Verdict.InvalidAnnotation in verdicts:
        status = str(Verdict.InvalidAnnotation)
    elif failed:
        status = str(Reason.ContainerNotFound)
    elif counts["pending"]:
        status = "Pending"
    elif waiting:
        status = str(waiting[0])
    elif Verdict.InSync in verdicts:
        status = str(Verdict.InSync)
    elif verdicts:
        status = str(Verdict.Paused)
    else:
        status = "NoTriggers"
    sources = tuple(dict.fromkeys(str(t.source) for t in workload.triggers))
    first = (
        snapshot.indexes.stream(
            workload.triggers[0].source.namespace, workload.triggers[0].source.stream
        )
        if workload.triggers
        else None
    )
    resolved = first.tags.get(workload.triggers[0].source.tag) if first is not None else None
    return Row(
        namespace=workload.ref.namespace,
        kind=workload.ref.kind,
        name=workload.ref.name,
        sources=sources,
        image=resolved.reference if resolved is not None else "",
        up_to_date=counts["upToDate"],
        pending=counts["pending"],
        failed=counts["failed"],
        status=status,
        last_change=last_applied_time(workload.last_applied),
    )


def last_applied_time(record: str | None) -> str:
    """The newest time in our imagestream-trigger.dev/last-applied record ("" if none)."""
    try:
        entries = json.loads(record) if record else {}
    except ValueError:
        return ""
    times = [
        entry["time"]
        for entry in (entries.values() if isinstance(entries, dict) else ())
        if isinstance(entry, dict) and isinstance(entry.get("time"), str)
    ]
    return max(times, default="")


# -- the commands ----------------------------------------------------------------------


def rows(snapshot: Snapshot) -> list[Row]:
    """Every ImageTrigger and every annotated workload, by namespace, kind and name."""
    found = [trigger_row(snapshot, t) for t in snapshot.indexes.triggers]
    found += [annotated_row(snapshot, w) for w in snapshot.indexes.workloads.annotated()]
    return sorted(found, key=lambda r: (r.namespace, r.kind != IMAGETRIGGER, r.kind, r.name))


def explain(snapshot: Snapshot, kind: TargetKind, namespace: str, name: str) -> Why:
    """Every trigger following the object, and what each would write now, and why not."""
    world = snapshot.indexes
    followers: list[Follower] = []
    problems: tuple[str, ...] = ()
    labels: Mapping[str, str] | None = None
    annotated = False
    if kind is TargetKind.BuildConfig:
        bc = world.buildconfig(namespace, name)
        labels = bc.labels if bc is not None else None
    else:
        workload = world.workload(kind, namespace, name)
        if workload is not None:
            labels = workload.labels
            annotated = workload.annotated
            if annotated:
                entries, plan = annotation_followers(snapshot, workload)
                followers += entries
                problems = tuple(f"{p.reason}: {p.message}" for p in plan.problems)
    for info in sorted(world.triggers.in_namespace(namespace), key=lambda t: t.ref.name):
        found = trigger_follower(snapshot, info, kind, name, labels)
        if found is not None:
            followers.append(found)
    return Why(kind, namespace, name, labels is not None, annotated, tuple(followers), problems)


def entry_label(kind: str, field_path: str) -> str:
    """An annotation entry's fieldPath without the kind's pod-spec base, for people."""
    try:
        return field_path.removeprefix(workload_kind(kind).field_path_base)
    except ValueError:
        return field_path


def history(body: Mapping[str, Any]) -> History:
    info = trigger_info(body)
    status = status_model.read(body.get("status"))
    return History(
        namespace=info.ref.namespace,
        name=info.ref.name,
        source=str(info.source) if info.source is not None else "",
        entries=tuple(status.get("history", ())),
        builds=dict(sorted(status.get("builds", {}).items())),
    )


def summary(why: Why) -> str:
    """The last line of ``why``: what the operator would write now, or why nothing."""
    where = f"{why.kind} {why.namespace}/{why.name}"
    if not why.followers:
        if why.annotated:
            return f"nothing follows {where}: its annotation declares no trigger"
        return (
            f"nothing follows {where}: it has no image.openshift.io/triggers annotation "
            "and no ImageTrigger targets it"
        )
    verdicts = _distinct(f.verdict for f in why.followers)
    if why.writes:
        due = _distinct(f.verdict for f in why.followers if f.writes)
        return f"would write now ({', '.join(due)} above)"
    if all(v in (Verdict.InSync, Verdict.Overridden, Verdict.Paused) for v in verdicts) and (
        Verdict.InSync in verdicts
    ):
        return "in sync, nothing to write"
    return f"nothing would be written now ({', '.join(verdicts)})"


def _distinct(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
