"""Say what a reconcile pass decided and did: status, Events, metrics, logs.

Once per pass and on transitions only: an ImageTrigger's status is written
when it differs from the one we last wrote; a Warning is posted when a
problem appears or changes, not at every pass; a Normal Event marks each
change made. Everything kept per object here is dropped with the object.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from imagestream_trigger.act.client import JSON_PATCH, MERGE_PATCH, Api, api_path
from imagestream_trigger.act.writer import Outcome, WriteResult, utcnow
from imagestream_trigger.api import (
    GROUP,
    PLURAL,
    RETRY_IMAGE_ANNOTATION,
    VERSION,
    Reason,
    TargetKind,
    annotation_path,
)
from imagestream_trigger.errors import ApiError
from imagestream_trigger.frozen import FrozenJson
from imagestream_trigger.gate import Event, RolloutPass
from imagestream_trigger.index import ObjectRef, StreamInfo, TriggerInfo, WorkloadInfo
from imagestream_trigger.plan import TriggerPlan
from imagestream_trigger.report.conditions import WAITING
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.notification import Notification, NotifyEvent, pass_notifications
from imagestream_trigger.report.notifier import Notifier
from imagestream_trigger.report.status import check
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.triggers import Problem

log = logging.getLogger(__name__)

ANNOTATION = "annotation"
IMAGETRIGGER = "imagetrigger"
# Ready=False reasons that are no fault: a Normal Event of their own says so (or none);
# WAITING: a rollout in canary order.
_NOT_WARNINGS = frozenset({Reason.Suspended, Reason.Waiting, Reason.PendingApproval}) | WAITING


def _age_seconds(created: str | None) -> float | None:
    if not created:
        return None
    try:
        moment = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - moment).total_seconds())


class Reporter:
    def __init__(
        self, api: Api, events: Events, metrics: Metrics, notifier: Notifier | None = None
    ) -> None:
        self.api = api
        self.events = events
        self.metrics = metrics
        # spec.rollout.notify: queues and sends, never waits (report/notifier.py).
        self.notifier = notifier if notifier is not None else Notifier(api, events, metrics)
        # The status we last wrote per ImageTrigger: only we write it, so it is the
        # newest, even before the watch brings it back. As compact text (frozen.py):
        # one per ImageTrigger, each with its history, kept as long as the operator runs.
        self.statuses: dict[tuple[str, str], FrozenJson] = {}
        # Warnings already posted per object, so a Warning is an edge, not a drumbeat.
        self.warned: dict[tuple[str, ...], object] = {}

    # -- the OpenShift annotation ----------------------------------------------------

    def annotation_problems(self, workload: WorkloadInfo, problems: tuple[Problem, ...]) -> None:
        ref = workload.ref
        key = (ANNOTATION, ref.kind, ref.namespace, ref.name)
        current = frozenset(problems)
        if self.warned.get(key, frozenset()) == current:
            return
        self.warned[key] = current
        for problem in problems:
            self.metrics.invalid_triggers.labels(ANNOTATION, problem.reason).inc()
            log.warning("%s: image.openshift.io/triggers: %s", ref, problem.message)
            self.events.warning(ref, "InvalidImageTrigger", problem.message)

    def forget_workload(self, kind: str, namespace: str, name: str) -> None:
        for key in [k for k in self.warned if k[1:4] == (kind, namespace, name)]:
            del self.warned[key]

    def warn_once(self, ref: ObjectRef, reason: str, message: str) -> None:
        key = ("warning", ref.kind, ref.namespace, ref.name, reason)
        if self.warned.get(key) == message:
            return
        self.warned[key] = message
        log.warning("%s", message)
        self.events.warning(ref, reason, message)

    def clear_warning(self, ref: ObjectRef, reason: str) -> None:
        self.warned.pop(("warning", ref.kind, ref.namespace, ref.name, reason), None)

    # -- per target ------------------------------------------------------------------

    def workload_result(
        self,
        workload: WorkloadInfo,
        what: str,
        source_label: str,
        result: WriteResult,
        *,
        caused: bool,
        stream: StreamInfo | None,
        source: TagRef | None,
    ) -> None:
        kind, ref = workload.kind, workload.ref
        counter = self.metrics.target_updates
        match result.outcome:
            case Outcome.Written:
                counter.labels(kind, source_label, "updated").inc()
                self.observe(kind, stream, source, result.image)
                log.info("updated %s: %s", ref, what)
                self.events.normal(ref, "ImageUpdated", f"{what} (following {source})")
                self.clear_warning(ref, "Forbidden")
            case Outcome.DryRun:
                if caused:
                    counter.labels(kind, source_label, "dry_run").inc()
                    log.info("dry run: would update %s: %s", ref, what)
            case Outcome.Forbidden:
                counter.labels(kind, source_label, "failed").inc()
                if source_label == ANNOTATION:  # an ImageTrigger says it in its status
                    self.warn_once(ref, "Forbidden", f"cannot update {ref}: {result.message}")
            case Outcome.Failed:
                counter.labels(kind, source_label, "failed").inc()
                log.warning("failed to update %s: %s", ref, result.message)
            case Outcome.Conflict:
                log.info("%s changed while being updated; will re-plan", ref)
            case _:
                pass

    def unchanged(self, kind: TargetKind, source_label: str) -> None:
        self.metrics.target_updates.labels(kind, source_label, "unchanged").inc()

    def observed(self, kind: TargetKind) -> None:
        """An annotated workload needs a new image that OpenShift's controller writes."""
        self.metrics.target_updates.labels(kind, ANNOTATION, "observed").inc()

    def build_result(
        self,
        bc: ObjectRef,
        result: WriteResult,
        *,
        caused: bool,
        stream: StreamInfo | None,
        source: TagRef,
    ) -> None:
        builds = self.metrics.builds
        match result.outcome:
            case Outcome.Written:
                builds.labels("started").inc()
                self.observe(TargetKind.BuildConfig, stream, source, result.image)
                message = f"started Build {result.build} for {result.image}"
                log.info("%s: %s", bc, message)
                self.events.normal(bc, "BuildStarted", f"{message} (following {source})")
            case Outcome.AlreadyBuilt:
                builds.labels("already_built").inc()
            case Outcome.DryRun:
                if caused:
                    builds.labels("dry_run").inc()
            case Outcome.Forbidden | Outcome.Failed:
                builds.labels("failed").inc()
                log.warning("failed to start a build of %s: %s", bc, result.message)
            case Outcome.Unknown:
                log.warning("%s: %s", bc, result.message)
            case _:
                pass

    def observe(
        self, kind: str, stream: StreamInfo | None, source: TagRef | None, reference: str
    ) -> None:
        """Latency since the tag's move was seen, and the image's age, at a completed write."""
        if stream is None or source is None:
            return
        image = stream.tags.get(source.tag)
        if image is None or image.reference != reference:
            return
        moved_at = stream.moved_at.get(source.tag)
        if moved_at is not None:
            self.metrics.trigger_latency.labels(kind).observe(time.monotonic() - moved_at)
        age = _age_seconds(image.created)
        if age is not None:
            self.metrics.image_age.labels(kind).observe(age)

    # -- rollouts (spec.rollout) -----------------------------------------------------

    def rollout_events(self, events: tuple[Event, ...], results: tuple[str, ...]) -> None:
        """What a pass of the health gate found: its Events (on the workloads) and counts."""
        for event in events:
            log.log(
                logging.WARNING if event.type == "Warning" else logging.INFO,
                "%s: %s",
                event.on,
                event.message,
            )
            self.events.post(event.on, event.type, event.reason, event.message)
        for result in results:
            self.metrics.rollouts.labels(result).inc()

    def reverted(self, event: Event, plan: TriggerPlan | None = None) -> None:
        """A revert was written (``plan``: the pass's, to notify of it)."""
        log.info("%s: %s", event.on, event.message)
        self.events.post(event.on, event.type, event.reason, event.message)
        self.metrics.rollouts.labels("reverted").inc()
        if plan is not None and _notifies(plan.trigger):
            self._notify(plan, NotifyEvent.Reverted, (_key(event.on),), event.message)

    # -- notifications (spec.rollout.notify) -----------------------------------------

    def notify_pass(
        self, plan: TriggerPlan, previous: Mapping[str, Any], done: Sequence[WriteResult | None]
    ) -> None:
        """Applied (targets written by this pass) and Failed (writes refused or failed
        for good, newly): see notification.pass_notifications."""
        trigger = plan.trigger
        if not _notifies(trigger) or plan.image is None:
            return
        for notification in pass_notifications(
            namespace=trigger.ref.namespace,
            trigger=trigger.ref.name,
            source=plan.source,
            image=plan.image.reference,
            previous=previous,
            keys=[t.key for t in plan.targets],
            done=done,
            now=utcnow(),
        ):
            self.notifier.send(trigger, notification)

    def notify_rollouts(self, plan: TriggerPlan, gate: RolloutPass) -> None:
        """Failed: rollouts the gate newly found failed and does not revert (those it
        reverts are notified as Reverted once the revert is written)."""
        if not _notifies(plan.trigger):
            return
        reverting = {_key(r.workload.ref) for r in gate.reverts}
        failed = [
            e
            for e in gate.events
            if e.reason is Reason.RolloutFailed and _key(e.on) not in reverting
        ]
        if failed:
            self._notify(
                plan,
                NotifyEvent.Failed,
                tuple(_key(e.on) for e in failed),
                "; ".join(f"{_key(e.on)}: {e.message}" for e in failed),
            )

    def _notify(
        self, plan: TriggerPlan, event: NotifyEvent, targets: tuple[str, ...], message: str
    ) -> None:
        ref = plan.trigger.ref
        image = plan.image.reference if plan.image is not None else ""
        self.notifier.send(
            plan.trigger,
            Notification(
                event, ref.namespace, ref.name, image, plan.source, targets, message, utcnow()
            ),
        )

    def promoted(self, trigger: ObjectRef, message: str) -> None:
        """A promotion (spec.rollout.promoteTo) was written."""
        log.info("%s: %s", trigger, message)
        self.events.post(trigger, "Normal", Reason.Promoted, message)
        self.clear_warning(trigger, Reason.PromotionFailed)
        self.metrics.promotions.labels("promoted").inc()

    def promotion_failed(self, trigger: ObjectRef, message: str, *, refused: bool) -> None:
        """A due promotion was refused (403, no consent) or failed; it is tried again (one
        Warning per distinct message, not one per retry)."""
        self.warn_once(trigger, Reason.PromotionFailed, message)
        self.metrics.promotions.labels("refused" if refused else "failed").inc()

    async def retry_used(self, trigger: TriggerInfo) -> None:
        """Remove the one-shot retry-image annotation once honoured. Guarded by a ``test`` of
        its value: one changed meanwhile is someone's new request and stays. Best effort: a
        refusal is logged, and the annotation is honoured again (harmlessly) next pass."""
        ref, value = trigger.ref, trigger.retry_image
        if value is None:
            return
        at = annotation_path(RETRY_IMAGE_ANNOTATION)
        path = api_path(GROUP, VERSION, PLURAL, ref.namespace, ref.name)
        try:
            await self.api.with_retries(
                "PATCH",
                path,
                body=[
                    {"op": "test", "path": at, "value": value},
                    {"op": "remove", "path": at},
                ],
                content_type=JSON_PATCH,
                resource=PLURAL,
            )
        except ApiError as error:
            log.warning("could not remove %s from %s: %s", RETRY_IMAGE_ANNOTATION, ref, error)

    # -- timing rules and approval (timing.py) ------------------------------------------

    def pending_approval(
        self,
        trigger: TriggerInfo,
        image: str,
        since: str,
        message: str,
        source: TagRef | None = None,
    ) -> None:
        """A new image (of ``source``, the tag followed) waits for approval since ``since``:
        said once per image (a newer one supersedes it), in an Event and to receivers."""
        log.info("%s: %s", trigger.ref, message)
        self.events.normal(trigger.ref, Reason.PendingApproval, message)
        if _notifies(trigger):
            self.notifier.pending(trigger, image, since, source)

    def waiting(self, trigger: ObjectRef, image: str, message: str) -> None:
        """A timing rule started holding an image (once per image and rule)."""
        log.info("%s: %s", trigger, message)
        self.events.normal(trigger, Reason.Waiting, message)

    # -- ImageTriggers ---------------------------------------------------------------

    def last_status(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The status we last wrote, decoded afresh (the caller may change it)."""
        found = self.statuses.get((namespace, name))
        return found.thaw() if found is not None else None

    def count_invalid_spec(self, trigger: TriggerInfo, message: str) -> None:
        # The Warning Event comes with the Ready condition's transition (write_status).
        key = (IMAGETRIGGER, trigger.ref.namespace, trigger.ref.name)
        if self.warned.get(key) != message:
            self.warned[key] = message
            self.metrics.invalid_triggers.labels(IMAGETRIGGER, Reason.InvalidSpec).inc()

    async def write_status(
        self,
        trigger: TriggerInfo,
        previous: Mapping[str, Any],
        status: dict[str, Any],
        *,
        changed: list[str],
    ) -> None:
        """Write ``status`` if it differs from ``previous``; Events on transitions.

        ``changed``: the targets this pass wrote to, named in one Normal Event.
        Raises ApiError when the write failed (the caller retries the pass).
        """
        ref = trigger.ref
        check(status)  # what we write fits the model (and so the CRD's schema)
        if changed:
            self.events.normal(
                ref,
                "ImageUpdated",
                f"{', '.join(changed)} now {'follows' if len(changed) == 1 else 'follow'} "
                f"{status.get('image', '')}",
            )
        if status == dict(previous):
            return
        ready = status["conditions"][0]
        old_ready: Mapping[str, Any] = next(
            (
                c
                for c in previous.get("conditions") or []
                if isinstance(c, Mapping) and c.get("type") == "Ready"
            ),
            {},
        )
        # A merge patch keeps keys it does not mention: clear the ones we no longer set.
        body = {**{key: None for key in previous if key not in status}, **status}
        if isinstance(previous.get("builds"), Mapping) and "builds" in status:
            gone = {bc: None for bc in previous["builds"] if bc not in status["builds"]}
            body["builds"] = {**gone, **status["builds"]}
        await self._patch_status(ref, body)
        self.statuses[(ref.namespace, ref.name)] = FrozenJson(status)
        # The transition's Event, once the status that shows it is written.
        if (
            ready["status"] == "False"
            and (old_ready.get("reason") != ready["reason"] or old_ready.get("status") != "False")
            and ready["reason"] not in _NOT_WARNINGS
        ):
            self.events.warning(ref, ready["reason"], ready["message"])
        elif ready["status"] == "True" and old_ready.get("status") == "False":
            self.events.normal(ref, "Ready", ready["message"])

    async def record_intent(
        self, trigger: TriggerInfo, base: Mapping[str, Any], bc: str, image: str, at: str
    ) -> None:
        """Record, before ``instantiate`` is sent, that a build of ``image`` is wanted.

        ``base`` is the status the pass started from; the intent is added to it.
        """
        ref = trigger.ref
        entry = {"image": image, "requestedAt": at}
        await self._patch_status(ref, {"builds": {bc: {**entry, "build": None}}})
        mine = self.last_status(ref.namespace, ref.name) or dict(base)
        builds = mine.get("builds")
        mine["builds"] = {**(builds if isinstance(builds, Mapping) else {}), bc: entry}
        self.statuses[(ref.namespace, ref.name)] = FrozenJson(mine)

    async def _patch_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> None:
        path = api_path(GROUP, VERSION, PLURAL, ref.namespace, ref.name) + "/status"
        try:
            await self.api.with_retries(
                "PATCH",
                path,
                body={"status": status},
                content_type=MERGE_PATCH,
                resource="imagetriggers/status",
            )
        except Exception:
            # What we wrote last is no longer known: re-read it from the index.
            self.statuses.pop((ref.namespace, ref.name), None)
            raise

    def forget_trigger(self, namespace: str, name: str) -> None:
        self.notifier.forget(namespace, name)
        self.statuses.pop((namespace, name), None)
        self.warned.pop((IMAGETRIGGER, namespace, name), None)
        self.forget_workload("ImageTrigger", namespace, name)

    def tracked(self) -> int:
        """Entries kept per object: a leak check for tests."""
        return len(self.statuses) + len(self.warned) + self.notifier.tracked()


def _notifies(trigger: TriggerInfo) -> bool:
    """Whether the trigger has receivers: one attribute read for those without."""
    spec = trigger.spec
    return spec is not None and spec.rollout is not None and bool(spec.rollout.notify)


def _key(ref: ObjectRef) -> str:
    return f"{ref.kind}/{ref.name}"
