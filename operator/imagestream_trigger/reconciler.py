"""Converge every follower of an ImageStream tag: plan from memory, write, report.

Level-triggered: each event re-plans, from the in-memory world, only the
objects it concerns, and writes only where a target differs from what its
source says. During the initial listing every follower is planned once, by
its own listing event (kopf completes the indexes first), so a change made
while the operator was down is applied at start-up without planning anything
twice.

Writes to one target are serialised (a lock per target) and bounded overall
(a semaphore), and every write we make is remembered until the watch shows
it (``plan.Overlay``), so two events in quick succession never write twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Iterable
from typing import Any

from imagestream_trigger.act import targets
from imagestream_trigger.act.client import Api
from imagestream_trigger.api import WORKLOAD_KINDS, Reason, TargetKind
from imagestream_trigger.decide import ImageChange, build_request, workload_patch
from imagestream_trigger.errors import ApiError, ForbiddenError, InvalidPatchError
from imagestream_trigger.index import ObjectRef, StreamInfo, TriggerInfo, WorkloadInfo
from imagestream_trigger.models import selector_matches
from imagestream_trigger.plan import (
    Overlay,
    TargetPlan,
    TriggerPlan,
    World,
    describe_changes,
    plan_annotated,
    plan_trigger,
)
from imagestream_trigger.report.conditions import TargetResult, trigger_status
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.resolve import ResolvedImage, TagRef
from imagestream_trigger.settings import Settings
from imagestream_trigger.triggers import Problem

log = logging.getLogger(__name__)

ANNOTATION = "annotation"
IMAGETRIGGER = "imagetrigger"
# (namespace, stream, tag) of tags that moved in the event being handled.
Moved = frozenset[tuple[str, str, str]]
NOTHING_MOVED: Moved = frozenset()
# A target's labels and (container key, image) pairs.
Shape = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age_seconds(created: str | None) -> float | None:
    if not created:
        return None
    try:
        moment = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - moment).total_seconds())


def _moved(source: TagRef, moved: Moved) -> bool:
    return (source.namespace, source.stream, source.tag) in moved


class Reconciler:
    def __init__(self, settings: Settings, api: Api, metrics: Metrics, events: Events) -> None:
        self.settings = settings
        self.api = api
        self.metrics = metrics
        self.events = events
        self.world: World | None = None
        self.overlay = Overlay()
        self.locks: defaultdict[tuple[str, ...], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.writes = asyncio.Semaphore(settings.max_concurrent_writes)
        # Last resolved tags per stream: a tag "moved" when its resolved reference did.
        self.seen: dict[tuple[str, str], dict[str, ResolvedImage]] = {}
        # When each tag's current image was first observed (monotonic), for latency.
        self.observed: dict[tuple[str, str, str], tuple[str, float]] = {}
        # Warnings already posted per object, so a Warning is an edge, not a drumbeat.
        self.warned: dict[tuple[str, ...], object] = {}
        # What the tracked-objects gauges count.
        self.annotated: dict[str, set[tuple[str, str, str]]] = {}
        self.triggers: set[tuple[str, str]] = set()
        # Labels and container images per target, to tell a relevant change from an echo.
        self.shapes: dict[tuple[str, str, str], Shape] = {}
        # The status this operator last wrote per ImageTrigger (see reconcile_trigger).
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}

    # -- events ------------------------------------------------------------------------

    async def on_stream(
        self, event_type: str | None, info: StreamInfo | None, key: tuple[str, str]
    ) -> None:
        """An ImageStream was listed, changed or deleted."""
        self.metrics.imagestream_events.labels(event_type or "LISTED").inc()
        now = time.monotonic()
        before = self.seen.get(key, {})
        after = dict(info.tags) if info is not None else {}
        moved: set[tuple[str, str, str]] = set()
        for tag, image in after.items():
            if before.get(tag) != image:
                moved.add((*key, tag))
                self.observed[(*key, tag)] = (image.reference, now)
        if info is None:
            self.seen.pop(key, None)
        else:
            self.seen[key] = after
        self.metrics.imagestreams.set(len(self.seen))
        if event_type is None:
            # The initial listing shows state, not change; each follower is planned
            # by its own listing event, so waking them here would plan them twice.
            return
        for namespace, stream, tag in sorted(moved):
            self.metrics.tag_changes.inc()
            log.info("tag %s/%s:%s moved to %s", namespace, stream, tag, after[tag].reference)
        await self.wake_followers(*key, moved=frozenset(moved))

    async def wake_followers(self, namespace: str, stream: str, *, moved: Moved) -> None:
        world = self.world
        if world is None:
            return
        work: list[Awaitable[None]] = []
        if self.settings.native_annotations:
            work += [
                self.reconcile_workload(kind, ns, name, moved=moved)
                for kind, ns, name in set(world.annotation_followers(namespace, stream))
            ]
        work += [
            self.reconcile_trigger(ns, name, moved=moved)
            for ns, name in set(world.triggers_following(namespace, stream))
        ]
        await asyncio.gather(*work)

    async def on_target(
        self, kind: TargetKind, namespace: str, name: str, event_type: str | None
    ) -> None:
        """A workload or BuildConfig was listed or changed."""
        world = self.world
        if world is None:
            return
        # Before anything runs: compares with what was seen, and our writes in flight.
        reshaped = self._reshaped(kind, namespace, name)
        work: list[Awaitable[None]] = []
        if kind in WORKLOAD_KINDS and self.settings.native_annotations:
            work.append(self.reconcile_workload(kind, namespace, name))
        # Listed: the triggers' own listing plans them. Changed: only a change that can
        # matter to a trigger (not the echo of our own write) wakes those selecting it.
        if event_type is not None and reshaped:
            work += [
                self.reconcile_trigger(namespace, t) for t in self._selecting(kind, namespace, name)
            ]
        await asyncio.gather(*work)

    def _reshaped(self, kind: TargetKind, namespace: str, name: str) -> bool:
        """Whether a target changed in a way an ImageTrigger must look at.

        Its labels (selector membership) or a container image someone else set. The
        echo of our own write, or a status update, changes neither, and waking every
        selecting trigger for it would cost most of the operator's CPU in a burst.
        """
        assert self.world is not None
        obj = self.world.object(kind, namespace, name)
        key = (kind, namespace, name)
        if obj is None:
            self.shapes.pop(key, None)
            return True
        images: tuple[tuple[str, str], ...] = ()
        if isinstance(obj, WorkloadInfo):
            images = tuple((c.key, c.image) for c in obj.containers)
        labels = tuple(sorted(obj.labels.items()))
        before = self.shapes.get(key)
        self.shapes[key] = (labels, images)
        if before is None or before[0] != labels or len(before[1]) != len(images):
            return True
        ours = self.overlay.written(kind, namespace, name)
        return any(
            image != seen and ours.get(container) != image
            for (container, image), (_, seen) in zip(images, before[1], strict=True)
        )

    def _selecting(self, kind: TargetKind, namespace: str, name: str) -> set[str]:
        """ImageTriggers in ``namespace`` with a target that names or selects this object."""
        assert self.world is not None
        obj = self.world.object(kind, namespace, name)
        labels = obj.labels if obj is not None else None
        found = set()
        for trigger_name in set(self.world.triggers_in(namespace)):
            trigger = self.world.trigger(namespace, trigger_name)
            if trigger is None or trigger.spec is None:
                continue
            for target in trigger.spec.targets:
                if target.kind != kind:
                    continue
                if target.name == name or (
                    target.selector is not None
                    # Deleted (labels unknown): any selector of that kind may have lost it.
                    and (labels is None or selector_matches(target.selector, labels))
                ):
                    found.add(trigger_name)
        return found

    async def on_target_deleted(self, kind: TargetKind, namespace: str, name: str) -> None:
        self.forget_workload(kind, namespace, name)
        self.shapes.pop((kind, namespace, name), None)
        await asyncio.gather(
            *(self.reconcile_trigger(namespace, t) for t in self._selecting(kind, namespace, name))
        )

    # -- the OpenShift annotation -----------------------------------------------------

    async def reconcile_workload(
        self, kind: TargetKind, namespace: str, name: str, *, moved: Moved = NOTHING_MOVED
    ) -> None:
        world = self.world
        assert world is not None
        async with self.locks[(kind, namespace, name)]:
            found = world.object(kind, namespace, name)
            if not isinstance(found, WorkloadInfo) or found.annotation is None:
                self.forget_workload(kind, namespace, name)
                return
            self._count_annotated(kind, (kind, namespace, name), present=True)
            workload = self.overlay.apply(found)
            plan = plan_annotated(world, workload)
            await self._report_annotation_problems(workload, plan.problems)
            caused = any(_moved(t.source, moved) for t in workload.triggers)
            if not plan.changes:
                if caused and not plan.problems:
                    self.metrics.target_updates.labels(kind, ANNOTATION, "unchanged").inc()
                return
            await self._write_workload(workload, plan.changes, ANNOTATION, caused=caused)

    async def _report_annotation_problems(
        self, workload: WorkloadInfo, problems: tuple[Problem, ...]
    ) -> None:
        ref = workload.ref
        key = (ANNOTATION, ref.kind, ref.namespace, ref.name)
        current = frozenset(problems)
        if self.warned.get(key, frozenset()) == current:
            return
        self.warned[key] = current
        for problem in problems:
            self.metrics.invalid_triggers.labels(ANNOTATION, problem.reason).inc()
            log.warning("%s: image.openshift.io/triggers: %s", ref, problem.message)
            await self.events.warning(ref, "InvalidImageTrigger", problem.message)

    async def _write_workload(
        self,
        workload: WorkloadInfo,
        changes: tuple[ImageChange, ...],
        source: str,
        *,
        dry_run: bool = False,
        caused: bool = True,
    ) -> TargetResult:
        """Write ``changes`` to one workload (the caller holds its lock); never raises.

        ``caused``: a tag move in the event being handled asked for this; only such
        decisions are counted as dry runs and timed (a write at start-up or after a
        workload changed is not a reaction to a move the operator saw happen).
        """
        ref, kind = workload.ref, workload.kind
        what = describe_changes(changes)
        image = changes[0].new_image
        containers = tuple(c.container.key for c in changes)
        if dry_run or self.settings.dry_run:
            if caused:
                self.metrics.target_updates.labels(kind, source, "dry_run").inc()
                log.info("dry run: would update %s: %s", ref, what)
            return TargetResult(
                kind,
                ref.name,
                Reason.DryRun,
                f"would set {what}",
                image=image,
                containers=containers,
            )
        ops = workload_patch(kind, changes, annotations=workload.annotations, now=utcnow())
        try:
            async with self.writes:
                await targets.patch_workload(self.api, workload, ops)
        except InvalidPatchError:
            # It changed under us; its watch event will re-plan from the new state.
            log.info("%s changed while being updated; will re-plan", ref)
            return TargetResult(kind, ref.name, Reason.Applied, "changed meanwhile; re-planning")
        except ForbiddenError as error:
            self.metrics.target_updates.labels(kind, source, "failed").inc()
            if source == ANNOTATION:  # an ImageTrigger says it in its status instead
                await self._warn_once(
                    ref, "Forbidden", f"cannot update {ref}: {error.server_message}"
                )
            return TargetResult(kind, ref.name, Reason.Forbidden, error.server_message)
        except ApiError as error:
            self.metrics.target_updates.labels(kind, source, "failed").inc()
            log.warning("failed to update %s: %s", ref, error)
            return TargetResult(kind, ref.name, Reason.Failed, error.server_message)
        self.overlay.record(workload, changes)
        self.metrics.target_updates.labels(kind, source, "updated").inc()
        if caused:
            for change in changes:
                self._observe(kind, change.source, change.new_image)
        log.info("updated %s: %s", ref, what)
        await self.events.normal(ref, "ImageUpdated", f"{what} (following {changes[0].source})")
        return TargetResult(
            kind,
            ref.name,
            Reason.Applied,
            f"runs {image}",
            image=image,
            containers=containers,
            changed=True,
        )

    def _observe(self, kind: str, source: TagRef, reference: str) -> None:
        """Latency since the tag's move was observed, and the image's age, at a completed write."""
        seen = self.observed.get((source.namespace, source.stream, source.tag))
        if seen is not None and seen[0] == reference:
            self.metrics.trigger_latency.labels(kind).observe(time.monotonic() - seen[1])
        stream = self.world.stream(source.namespace, source.stream) if self.world else None
        image = stream.tags.get(source.tag) if stream else None
        age = _age_seconds(image.created if image else None)
        if age is not None:
            self.metrics.image_age.labels(kind).observe(age)

    async def _warn_once(self, ref: ObjectRef, reason: str, message: str) -> None:
        key = ("warning", ref.kind, ref.namespace, ref.name, reason)
        if self.warned.get(key) == message:
            return
        self.warned[key] = message
        log.warning("%s", message)
        await self.events.warning(ref, reason, message)

    # -- ImageTrigger resources ---------------------------------------------------------

    async def reconcile_trigger(
        self, namespace: str, name: str, *, moved: Moved = NOTHING_MOVED
    ) -> None:
        world = self.world
        assert world is not None
        async with self.locks[("ImageTrigger", namespace, name)]:
            trigger = world.trigger(namespace, name)
            if trigger is None:
                return
            if (namespace, name) not in self.triggers:
                self.triggers.add((namespace, name))
                self.metrics.imagetriggers.set(len(self.triggers))
            # Only this operator writes the status, so the last status it wrote is the
            # newest one, even before the watch brings it back into the index.
            written = self.statuses.get((namespace, name))
            if written is not None:
                trigger = dataclasses.replace(trigger, status=written)
            plan = plan_trigger(world, trigger)
            if plan.blocked is Reason.InvalidSpec:
                self._count_invalid_spec(trigger, plan.message)
            spec = trigger.spec
            suspended = bool(spec and spec.suspend)
            # Suspended: still planned and reported (as a dry run), never written.
            dry_run = bool(spec and spec.dry_run) or suspended
            caused = plan.source is not None and _moved(plan.source, moved)
            results = await asyncio.gather(
                *(
                    self._act_on_target(plan, t, dry_run=dry_run, caused=caused)
                    for t in plan.targets
                )
            )
            changed = [r for r in results if r.changed]
            if changed and plan.image is not None:
                # One Event on the trigger per pass, naming every target it moved (each
                # target also gets its own Event).
                await self.events.normal(
                    trigger.ref,
                    "ImageUpdated",
                    f"{', '.join(r.key for r in changed)} now follow {plan.image.reference}",
                )
            await self._write_status(trigger, plan, list(results), suspended=suspended)

    def _count_invalid_spec(self, trigger: TriggerInfo, message: str) -> None:
        # The Warning Event comes with the Ready condition's transition (_write_status).
        key = (IMAGETRIGGER, trigger.ref.namespace, trigger.ref.name)
        if self.warned.get(key) != message:
            self.warned[key] = message
            self.metrics.invalid_triggers.labels(IMAGETRIGGER, Reason.InvalidSpec).inc()

    async def _act_on_target(
        self, plan: TriggerPlan, target: TargetPlan, *, dry_run: bool, caused: bool
    ) -> TargetResult:
        assert plan.image is not None
        reference = plan.image.reference
        if target.reason is Reason.Unchanged:
            if caused and target.workload is not None:
                self.metrics.target_updates.labels(target.kind, IMAGETRIGGER, "unchanged").inc()
            # A target that follows the source reads the same whoever wrote it last, so
            # the status does not change (and is not written again) after our own write.
            verb = "built from" if target.buildconfig is not None else "runs"
            return TargetResult(
                target.kind, target.name, Reason.Applied, f"{verb} {reference}", image=reference
            )
        if target.reason is not Reason.Applied:
            return TargetResult(target.kind, target.name, target.reason, target.message)
        if target.buildconfig is not None:
            return await self._build(plan, target, dry_run=dry_run, caused=caused)
        assert target.workload is not None
        ref = target.workload.ref
        async with self.locks[(ref.kind, ref.namespace, ref.name)]:
            # The plan was made before we held the lock: keep only the changes still
            # valid against the workload as it is now (with our own writes in flight).
            workload = self._current(target.workload)
            changes = still_valid(target.changes, workload)
            if not changes:
                return TargetResult(
                    target.kind, target.name, Reason.Applied, f"runs {reference}", image=reference
                )
            return await self._write_workload(
                workload, changes, IMAGETRIGGER, dry_run=dry_run, caused=caused
            )

    async def _build(
        self, plan: TriggerPlan, target: TargetPlan, *, dry_run: bool, caused: bool
    ) -> TargetResult:
        assert plan.image is not None
        assert plan.source is not None
        assert target.buildconfig is not None
        bc, source, reference = target.buildconfig, plan.source, plan.image.reference
        kind = TargetKind.BuildConfig
        built = TargetResult(
            kind, bc.ref.name, Reason.Applied, f"built from {reference}", image=reference
        )
        async with self.locks[(kind, bc.ref.namespace, bc.ref.name)]:
            if self.overlay.built(bc, source, reference):
                return built
            if dry_run or self.settings.dry_run:
                if caused:
                    self.metrics.builds.labels("dry_run").inc()
                return TargetResult(
                    kind,
                    bc.ref.name,
                    Reason.DryRun,
                    f"would start a build for {reference}",
                    image=reference,
                )
            try:
                async with self.writes:
                    build = await targets.instantiate(
                        self.api,
                        bc,
                        build_request(bc.ref.name, bc.ref.namespace, source, reference),
                    )
            except ForbiddenError as error:
                # Reported by the ImageTrigger's status (and its Warning on the transition).
                self.metrics.builds.labels("failed").inc()
                return TargetResult(kind, bc.ref.name, Reason.Forbidden, error.server_message)
            except ApiError as error:
                self.metrics.builds.labels("failed").inc()
                log.warning("failed to start a build of %s: %s", bc.ref, error)
                return TargetResult(kind, bc.ref.name, Reason.Failed, error.server_message)
            self.overlay.record_build(bc, source, reference)
        if build is None:
            self.metrics.builds.labels("already_built").inc()
            return built
        self.metrics.builds.labels("started").inc()
        if caused:
            self._observe(kind, source, reference)
        message = f"started Build {build} for {reference}"
        log.info("%s: %s", bc.ref, message)
        await self.events.normal(bc.ref, "BuildStarted", f"{message} (following {source})")
        return dataclasses.replace(built, changed=True)

    async def _write_status(
        self,
        trigger: TriggerInfo,
        plan: TriggerPlan,
        results: list[TargetResult],
        *,
        suspended: bool,
    ) -> None:
        status = trigger_status(
            previous=trigger.status,
            generation=trigger.generation,
            now=utcnow(),
            blocked=plan.blocked,
            blocked_message=plan.message,
            image=plan.image.reference if plan.image else "",
            results=results,
            suspended=suspended,
        )
        if status == dict(trigger.status):
            return
        self.statuses[(trigger.ref.namespace, trigger.ref.name)] = status
        ready = status["conditions"][0]
        old_ready: dict[str, Any] = next(
            (c for c in trigger.status.get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        if (
            ready["status"] == "False"
            and (old_ready.get("reason") != ready["reason"] or old_ready.get("status") != "False")
            and ready["reason"] != Reason.Suspended
        ):
            await self.events.warning(trigger.ref, ready["reason"], ready["message"])
        # A merge patch keeps keys it does not mention: clear the ones we no longer set.
        body = {**{key: None for key in trigger.status if key not in status}, **status}
        try:
            await targets.patch_trigger_status(
                self.api, trigger.ref.namespace, trigger.ref.name, body
            )
        except ApiError as error:
            self.statuses.pop((trigger.ref.namespace, trigger.ref.name), None)
            log.warning("could not write the status of %s: %s", trigger.ref, error)

    # -- bookkeeping --------------------------------------------------------------------

    def _current(self, workload: WorkloadInfo) -> WorkloadInfo:
        """The workload as the index has it now, with our writes in flight applied."""
        ref = workload.ref
        current = self.world.object(workload.kind, ref.namespace, ref.name) if self.world else None
        return self.overlay.apply(current if isinstance(current, WorkloadInfo) else workload)

    def _count_annotated(self, kind: str, key: tuple[str, str, str], *, present: bool) -> None:
        known = self.annotated.setdefault(kind, set())
        size = len(known)
        if present:
            known.add(key)
        else:
            known.discard(key)
        if len(known) != size or not size:
            self.metrics.annotated_workloads.labels(kind).set(len(known))

    def forget_workload(self, kind: TargetKind, namespace: str, name: str) -> None:
        self.warned.pop((ANNOTATION, kind, namespace, name), None)
        self._count_annotated(kind, (kind, namespace, name), present=False)

    def forget_trigger(self, namespace: str, name: str) -> None:
        self.triggers.discard((namespace, name))
        self.metrics.imagetriggers.set(len(self.triggers))
        self.statuses.pop((namespace, name), None)
        self.warned.pop((IMAGETRIGGER, namespace, name), None)
        self.locks.pop(("ImageTrigger", namespace, name), None)

    async def resync(self) -> None:
        """Re-plan every follower of every known stream from memory (no API reads)."""
        for namespace, stream in list(self.seen):
            await self.wake_followers(namespace, stream, moved=NOTHING_MOVED)


def still_valid(changes: Iterable[ImageChange], workload: WorkloadInfo) -> tuple[ImageChange, ...]:
    """The planned changes whose container is still where, and what, the plan saw."""
    now = {(c.key, c.index): c.image for c in workload.containers}
    return tuple(
        c for c in changes if now.get((c.container.key, c.container.index)) == c.container.image
    )
