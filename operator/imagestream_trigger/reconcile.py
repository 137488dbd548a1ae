"""Reconcile one key, level-triggered: read the indexes, plan, write, report once.

It never asks "what changed?", only "what should be true now?": the plan is
made from the indexes (with our writes in flight applied), the writer carries
it out, and the pass is reported once. A pass that could not finish says why
(``Pass.retry``), and the controller sends its key back through the queue's
backoff: a failed write is tried again in seconds, not at the next resync.

``Controller`` runs the workers: intake's wakes go into the queue, N workers
take keys out, one pass each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imagestream_trigger import canary, promote, timing
from imagestream_trigger.act.writer import Outcome, Writer, WriteResult, utcnow
from imagestream_trigger.api import Reason, RolloutState
from imagestream_trigger.errors import ApiError
from imagestream_trigger.gate import (
    RolloutPass,
    TargetRollout,
    digest_of,
    follow_rollouts,
    known_good,
    quarantine_entries,
    running_image,
)
from imagestream_trigger.identity import ServiceAccount, acting_as
from imagestream_trigger.imagemeta import ImageCreatedTimes
from imagestream_trigger.index import Indexes, TriggerInfo, WorkloadInfo
from imagestream_trigger.inflight import Written
from imagestream_trigger.intake import Key, Wake
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.models import ImageTriggerSpec, PromoteTo, Rollout
from imagestream_trigger.plan import (
    Action,
    BuildRecord,
    TargetPlan,
    TriggerPlan,
    build_ledger,
    describe_changes,
    plan_annotated,
    plan_trigger,
)
from imagestream_trigger.queue import ShutDown, WorkQueue
from imagestream_trigger.report import status as status_model
from imagestream_trigger.report.conditions import TargetResult, trigger_status
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.reporter import ANNOTATION, IMAGETRIGGER, Reporter
from imagestream_trigger.resolve import ResolvedImage, TagRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pass:
    retry: str | None = None  # why the key must come back (a retries_total reason)
    gone: bool = False  # the object no longer exists: forget the key
    # Come back in this many seconds even if nothing happens (a rollout's deadline).
    after: float | None = None


DONE = Pass()
GONE = Pass(gone=True)
# How long after the last queued key the controller still counts as busy.
QUIET_S = 0.25
_RETRY_REASONS = {
    Outcome.Conflict: "conflict",
    Outcome.Forbidden: "forbidden",
    Outcome.Failed: "failed",
    Outcome.Unknown: "build_unknown",
}
# Actions that write (or, for Recover, may write) to a target.
_WRITES = frozenset({Action.Update, Action.Build, Action.Recover})


class Reconciler:
    def __init__(
        self,
        indexes: Indexes,
        writer: Writer,
        reporter: Reporter,
        *,
        write_annotations: bool = True,
        default_service_account: str = "",
    ) -> None:
        self.indexes = indexes
        self.writer = writer
        self.reporter = reporter
        # False in observe mode: OpenShift's own controller writes annotated workloads.
        self.write_annotations = write_annotations
        # Lockdown: ImageTriggers naming no ServiceAccount act as this one of their namespace.
        self.default_service_account = default_service_account
        # Images' created times (spec.rollout.minImageAge), made on first use.
        self.images: ImageCreatedTimes | None = None

    async def reconcile(self, key: Key, moved: frozenset[TagRef]) -> Pass:
        if key.is_trigger:
            return await self._trigger(key, moved)
        return await self._annotated(key, moved)

    # -- the OpenShift annotation ----------------------------------------------------

    async def _annotated(self, key: Key, moved: frozenset[TagRef]) -> Pass:
        found = self.indexes.workload(key.kind, key.namespace, key.name)
        if found is None or not found.annotated:
            self.reporter.forget_workload(key.kind, key.namespace, key.name)
            return GONE
        workload = self.writer.current(found)
        plan = plan_annotated(self.indexes, workload)
        self.reporter.annotation_problems(workload, plan.problems)
        caused = any(t.source in moved for t in workload.triggers)
        if not plan.changes:
            if caused and not plan.problems:
                self.reporter.unchanged(workload.kind, ANNOTATION)
            return DONE
        if not self.write_annotations:
            if caused:
                self.reporter.observed(workload.kind)
            log.debug(
                "%s: left to OpenShift's controller (observe mode): %s",
                workload.ref,
                describe_changes(plan.changes),
            )
            return DONE
        result = await self.writer.patch_workload(workload, plan.changes)
        source = plan.changes[0].source
        self.reporter.workload_result(
            workload,
            describe_changes(plan.changes),
            ANNOTATION,
            result,
            caused=caused,
            stream=self.indexes.stream(source.namespace, source.stream),
            source=source,
        )
        return Pass(retry=_RETRY_REASONS.get(result.outcome))

    # -- ImageTriggers ---------------------------------------------------------------

    async def _trigger(self, key: Key, moved: frozenset[TagRef]) -> Pass:
        found = self.indexes.triggers.get(key.namespace, key.name)
        if found is None:
            self.reporter.forget_trigger(key.namespace, key.name)
            return GONE
        # Ours if we wrote it; else what the cluster has, read through the status model.
        previous = self.reporter.last_status(key.namespace, key.name) or status_model.read(
            found.status
        )
        trigger = dataclasses.replace(found, status=previous)
        plan = plan_trigger(self.indexes, trigger)
        plan, held = await self._hold(plan, previous)
        if plan.blocked is Reason.InvalidSpec:
            self.reporter.count_invalid_spec(trigger, plan.message)
        spec = trigger.spec
        suspended = bool(spec and spec.suspend)
        # Suspended: still planned and reported (as a dry run), never written.
        dry_run = bool(spec and spec.dry_run) or suspended
        caused = plan.source is not None and plan.source in moved
        identity = acting_as(
            key.namespace, trigger.service_account_name, self.default_service_account
        )
        order = self._order(plan, previous, dry_run=dry_run)
        plan = order.plan if order is not None else plan
        refused = await self._source_refused(plan, identity, dry_run=dry_run)
        done = await asyncio.gather(
            *(
                self._act(
                    trigger,
                    plan,
                    t,
                    dry_run=dry_run,
                    caused=caused,
                    identity=identity,
                    refused=refused,
                )
                for t in plan.targets
            )
        )
        retries = [_RETRY_REASONS[r.outcome] for r in done if r is not None and r.outcome.retry]
        self.reporter.notify_pass(plan, previous, done)
        if any(r is not None and r.outcome is Outcome.Conflict for r in done):
            # The pass saw a target that has moved on: its report would be stale.
            return Pass(retry="conflict")
        base = self.reporter.last_status(key.namespace, key.name) or previous
        targets = base.get("targets")
        reported = {
            (str(e.get("kind")), str(e.get("name"))): e
            for e in (targets if isinstance(targets, list) else [])
            if isinstance(e, Mapping)
        }
        results = [
            _target_result(plan, target, result, reported)
            for target, result in zip(plan.targets, done, strict=True)
        ]
        # status.promoted and the Promoted condition: kept while the spec cannot be read (as
        # the quarantine is), dropped with spec.rollout.promoteTo.
        keep_promoted = spec is None or (spec.rollout is not None and spec.rollout.promote_to)
        gate: RolloutPass | None = None
        promotion: tuple[bool, Reason, str] | None = None
        before = base.get("promoted")
        promoted = dict(before) if isinstance(before, Mapping) else None
        # Held back, the new image runs nowhere: the rollout followed is its predecessor's.
        followed = self._predecessor(plan) if held is not None else plan
        if (
            spec is not None
            and spec.rollout is not None
            and followed is not None
            and followed.image is not None
        ):
            gate, states, failed = await self._follow(
                trigger, followed, spec.rollout, base, dry_run=dry_run, identity=identity
            )
            retries += failed
            if order is not None and self._released(order, spec.rollout, states):
                gate = dataclasses.replace(gate, recheck_at=dt.datetime.now(dt.UTC))
            results = [_with_rollout(r, states.get(r.key)) for r in results]
            if followed is not plan:
                # A held target says which image its rollout state is about.
                results = [_running(r, followed, states) for r in results]
            if spec.rollout.promote_to is not None and not suspended and followed is plan:
                promotion, now_promoted, failed = await self._promote(
                    trigger,
                    plan,
                    spec.rollout.promote_to,
                    gate,
                    states,
                    base,
                    identity=identity,
                    dry_run=dry_run,
                )
                retries += failed
                promoted = now_promoted or promoted
        status = trigger_status(
            previous=base,
            generation=trigger.generation,
            now=utcnow(),
            blocked=plan.blocked,
            blocked_message=plan.message,
            image=plan.image.reference if plan.image else "",
            results=results,
            suspended=suspended,
            rollout_failed=gate.ready[1] if gate is not None and gate.ready else None,
            promotion=promotion,
            keep_promotion=bool(keep_promoted),
        )
        ledger = _ledger(base, plan, done)
        if ledger:
            status["builds"] = ledger
        quarantine = _quarantine(spec, gate, base)
        if quarantine:
            status["quarantine"] = quarantine
        if keep_promoted and promoted is not None:
            status["promoted"] = promoted
        picked = _picked_tag(spec, plan, base)
        if picked:
            status["tag"] = picked
        self._held_status(trigger, held, previous, status, plan.source)
        try:
            await self.reporter.write_status(
                trigger, base, status, changed=[r.key for r in results if r.changed]
            )
        except ApiError as error:
            log.warning("could not write the status of %s: %s", trigger.ref, error)
            retries.append("status")
        if gate is not None and gate.retry_consumed and not retries:
            # Honoured and written down: the one-shot annotation is used up.
            await self.reporter.retry_used(trigger)
        after = None
        if gate is not None and gate.recheck_at is not None:
            after = max((gate.recheck_at - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
        after = _sooner(after, held)
        return Pass(retry=retries[0] if retries else None, after=after)

    def _predecessor(self, plan: TriggerPlan) -> TriggerPlan | None:
        """The plan with the image its workload targets still run from an earlier write of
        ours (see gate.running_image); None if they run none."""
        if plan.image is None or plan.source is None:
            return None
        image = running_image(self._seen(plan), plan.source, plan.image.reference)
        if not image:
            return None
        return dataclasses.replace(plan, image=ResolvedImage(image, digest_of(image), None))

    async def _hold(
        self, plan: TriggerPlan, status: Mapping[str, Any]
    ) -> tuple[TriggerPlan, tuple[timing.Hold, str] | None]:
        """Timing rules and approval (timing.py): whether the new image may be written now.
        Held: the targets still to be written are Blocked (Waiting, PendingApproval), the
        trigger too, with the rule's message; targets already running it stay. Returns the
        plan and the hold with when it began (status.pending.since). Nothing is asked of
        triggers without these rules, nor when nothing is to be written."""
        rollout = timing.holdable(plan)
        if rollout is None:
            return plan, None
        assert plan.image is not None
        assert plan.source is not None
        assert plan.trigger.spec is not None
        created = None
        if rollout.min_image_age and plan.image.image:
            if self.images is None:
                self.images = ImageCreatedTimes(self.writer.api)
            created = await self.images.created(plan.source, plan.image.image)
        now = dt.datetime.now(dt.UTC)
        held = timing.hold(
            rollout,
            image=plan.image,
            image_created=created,
            approved_image=plan.trigger.spec.approved_image,
            approve_hint=timing.approve_hint(plan),
            now=now,
        )
        if held is None:
            return plan, None
        key = "pending" if held.rule is timing.Rule.Approval else "waiting"
        before = status.get(key)
        since = timing.rfc3339(now)
        if isinstance(before, Mapping) and before.get("image") == plan.image.reference:
            since = str(before.get("since") or since)
        return timing.held_back(plan, held), (held, since)

    def _held_status(
        self,
        trigger: TriggerInfo,
        held: tuple[timing.Hold, str] | None,
        previous: Mapping[str, Any],
        status: dict[str, Any],
        source: TagRef | None,
    ) -> None:
        """status.pending or status.waiting for a held image, and its Event (and, pending,
        its notification) when it is new.
        Neither is set otherwise, so the status write clears them."""
        if held is None:
            return
        hold, since = held
        image = str(status.get("image", ""))
        if hold.rule is timing.Rule.Approval:
            status["pending"] = {"image": image, "since": since}
            before = previous.get("pending")
            if not isinstance(before, Mapping) or before.get("image") != image:
                self.reporter.pending_approval(trigger, image, since, hold.message, source)
            return
        waiting = {"image": image, "reason": str(hold.rule), "message": hold.message}
        if hold.until is not None:
            waiting["until"] = timing.rfc3339(hold.until)
        status["waiting"] = waiting
        before = previous.get("waiting")
        if not isinstance(before, Mapping) or (before.get("image"), before.get("reason")) != (
            image,
            waiting["reason"],
        ):
            self.reporter.waiting(trigger.ref, image, hold.message)

    def _order(
        self, plan: TriggerPlan, status: Mapping[str, Any], *, dry_run: bool
    ) -> canary.Order | None:
        """spec.rollout.canary / maxParallel (canary.py): the plan with the writes that must
        wait held back; None without them (today's path), or in a dry run, which says what
        it would write to every target."""
        spec = plan.trigger.spec
        if spec is None or spec.rollout is None or not spec.rollout.ordered:
            return None  # the hot path: one look at the spec
        if dry_run or self.writer.dry_run:
            return None
        return canary.in_order(plan, status, written=self._in_flight(plan))

    def _released(
        self, order: canary.Order, rollout: Rollout, states: Mapping[str, TargetRollout]
    ) -> bool:
        """Whether, after this pass's writes and the gate's verdicts, a target held at its
        start may be written: then the next pass comes at once (a canary turned healthy)."""
        return canary.releases(
            order,
            rollout,
            states={key: s.state for key, s in states.items()},
            written=self._in_flight(order.original),
        )

    def _seen(self, plan: TriggerPlan) -> list[WorkloadInfo]:
        """The plan's workload targets as the watch last showed them (not with our writes in
        flight applied): the health record and the containers of one body."""
        namespace = plan.trigger.ref.namespace
        return [
            found
            for t in plan.targets
            if t.workload is not None
            and (found := self.indexes.workload(t.kind, namespace, t.name)) is not None
        ]

    def _in_flight(self, plan: TriggerPlan) -> set[str]:
        """Keys of the plan's workload targets with a write of ours the watch has not shown."""
        return {
            t.key
            for t in plan.targets
            if t.workload is not None and self.writer.overlay.written(t.workload.id)
        }

    async def _follow(
        self,
        trigger: TriggerInfo,
        plan: TriggerPlan,
        rollout: Rollout,
        base: Mapping[str, Any],
        *,
        dry_run: bool,
        identity: ServiceAccount | None,
    ) -> tuple[RolloutPass, dict[str, TargetRollout], list[str]]:
        """The health gate (gate.py) after this pass's writes: judge the rollouts we caused,
        send the reverts it asks for, report what it found. Returns the gate's answer, each
        followed target's rollout state (a revert written: Reverted) and retry reasons."""
        assert plan.image is not None
        assert plan.source is not None
        workloads = self._seen(plan)
        gate = follow_rollouts(
            rollout,
            trigger=trigger.ref.name,
            source=plan.source,
            image=plan.image.reference,
            workloads=workloads,
            previous=base,
            now=dt.datetime.now(dt.UTC),
            retry=trigger.retry_image,
            pending={
                f"{w.ref.kind}/{w.ref.name}" for w in workloads if self.writer.overlay.written(w.id)
            },
        )
        self.reporter.rollout_events(gate.events, gate.results)
        self.reporter.notify_rollouts(plan, gate)
        states = dict(gate.targets)
        done = await asyncio.gather(
            *(
                self.writer.revert_workload(
                    r.workload,
                    r.patch,
                    {key: Written(ours, back) for key, ours, back in r.back},
                    dry_run=dry_run,
                    identity=identity,
                )
                for r in gate.reverts
            )
        )
        retries = []
        for revert, result in zip(gate.reverts, done, strict=True):
            key = f"{revert.workload.ref.kind}/{revert.workload.ref.name}"
            if result.outcome is Outcome.Written:
                states[key] = revert.then
                self.reporter.reverted(revert.event, plan)
            elif result.outcome.retry:
                log.warning("could not revert %s: %s", revert.workload.ref, result.message)
                retries.append(_RETRY_REASONS[result.outcome])
        return gate, states, retries

    async def _promote(
        self,
        trigger: TriggerInfo,
        plan: TriggerPlan,
        promote_to: PromoteTo,
        gate: RolloutPass,
        states: Mapping[str, TargetRollout],
        base: Mapping[str, Any],
        *,
        identity: ServiceAccount | None,
        dry_run: bool,
    ) -> tuple[tuple[bool, Reason, str] | None, dict[str, str] | None, list[str]]:
        """spec.rollout.promoteTo after the gate (promote.py decides, the writer tags).
        Returns the Promoted condition (None: nothing happened), the new status.promoted
        (None: unchanged) and retry reasons: a refusal comes back with backoff."""
        assert plan.image is not None
        assert plan.source is not None
        namespace = trigger.ref.namespace
        to = promote_to.tag_ref(namespace)
        decided = promote.decide(
            promote_to,
            namespace=namespace,
            source=plan.source,
            image=plan.image,
            followed=[t.key for t in plan.targets if KINDS[t.kind].health is not None],
            rollouts=states,
            quarantine=gate.quarantine,
            reverting=bool(gate.reverts),
            destination=self.indexes.stream(to.namespace, to.stream),
            previous=base,
        )
        if decided is None:
            return None, None, []
        if isinstance(decided, promote.Refusal):
            message = f"cannot promote {plan.image.reference} to {to}: {decided.message}"
            self.reporter.promotion_failed(trigger.ref, message, refused=True)
            return (False, Reason.CrossNamespaceDenied, message), None, ["forbidden"]
        source = decided.source
        tagged = f"oc tag {source.namespace}/{source.stream}@{decided.image.image} {to}"
        result = await self.writer.promote(decided, dry_run=dry_run, identity=identity)
        match result.outcome:
            case Outcome.Written:
                when = utcnow()
                message = (
                    f"promoted {decided.image.reference} to {to} ({tagged}): every workload "
                    "target ran it healthy"
                )
                self.reporter.promoted(trigger.ref, message)
                entry = {"image": decided.image.reference, "to": str(to), "time": when}
                return (True, Reason.Promoted, message), entry, []
            case Outcome.DryRun:
                message = f"dry run: would promote {decided.image.reference} to {to} ({tagged})"
                return (False, Reason.DryRun, message), None, []
            case Outcome.Forbidden:
                message = f"cannot promote {decided.image.reference} to {to}: {result.message}"
                self.reporter.promotion_failed(trigger.ref, message, refused=True)
                return (False, Reason.Forbidden, message), None, ["forbidden"]
            case _:
                message = f"could not promote {decided.image.reference} to {to}: {result.message}"
                self.reporter.promotion_failed(trigger.ref, message, refused=False)
                return (False, Reason.PromotionFailed, message), None, ["failed"]

    async def _act(
        self,
        trigger: TriggerInfo,
        plan: TriggerPlan,
        target: TargetPlan,
        *,
        dry_run: bool,
        caused: bool,
        identity: ServiceAccount | None = None,
        refused: WriteResult | None = None,
    ) -> WriteResult | None:
        """``identity``: whom the writes impersonate; ``refused``: why nothing may be written
        for this trigger's source (see ``_source_refused``)."""
        assert plan.source is not None
        assert plan.image is not None
        source, reference = plan.source, plan.image.reference
        stream = self.indexes.stream(source.namespace, source.stream)
        if target.action is Action.InSync:
            if caused and target.workload is not None:
                self.reporter.unchanged(target.kind, IMAGETRIGGER)
            return None
        if target.action is Action.Blocked:
            return None
        if target.buildconfig is not None:
            bc = target.buildconfig
            result = refused or await self.writer.build(
                bc,
                source,
                reference,
                ledger=_IntentLog(self.reporter, trigger),
                recover=target.action is Action.Recover,
                dry_run=dry_run,
                identity=identity,
            )
            self.reporter.build_result(bc.ref, result, caused=caused, stream=stream, source=source)
            return result
        assert target.workload is not None
        workload = self.writer.current(target.workload)
        # With spec.rollout, an image of ours whose rollout is unproven is no revert target.
        good = trigger.spec is None or trigger.spec.rollout is None or not target.changes
        good = good or known_good(trigger.status, target.key, target.changes[0].container.image)
        result = refused or await self.writer.patch_workload(
            workload, target.changes, dry_run=dry_run, identity=identity, known_good=good
        )
        self.reporter.workload_result(
            workload,
            describe_changes(target.changes),
            IMAGETRIGGER,
            result,
            caused=caused,
            stream=stream,
            source=source,
        )
        return result

    async def _source_refused(
        self, plan: TriggerPlan, identity: ServiceAccount | None, *, dry_run: bool
    ) -> WriteResult | None:
        """Whether a trigger acting as a ServiceAccount may not follow its source in another
        namespace: asked (one GET, as that account) only when something is to be written,
        so a pass with nothing to do costs no request."""
        source = plan.source
        if (
            identity is None
            or source is None
            or source.namespace == identity.namespace
            or dry_run
            or self.writer.dry_run
            or not any(t.action in _WRITES for t in plan.targets)
        ):
            return None
        return await self.writer.check_source(source, identity)


@dataclass(frozen=True, slots=True)
class _IntentLog:
    """The writer's ``BuildLog`` for one trigger: intents go into its status (the
    reporter prefers the status it last wrote over the one this pass started from)."""

    reporter: Reporter
    trigger: TriggerInfo

    async def intend(self, bc: str, image: str, at: str) -> None:
        await self.reporter.record_intent(self.trigger, self.trigger.status, bc, image, at)


def _target_result(
    plan: TriggerPlan,
    target: TargetPlan,
    result: WriteResult | None,
    previous: Mapping[tuple[str, str], Mapping[str, Any]],
) -> TargetResult:
    """What the status says of one target after this pass."""
    assert plan.image is not None
    reference = plan.image.reference
    kind, name = target.kind, target.name
    build = target.buildconfig is not None
    done = f"built from {reference}" if build else f"runs {reference}"
    if target.action is Action.Blocked:
        return TargetResult(kind, name, target.reason or Reason.Failed, target.message)
    if result is None or result.outcome in (Outcome.NothingToDo, Outcome.AlreadyBuilt):
        # In sync: what the pass that wrote said still holds (its message, its
        # containers), so the status does not change just because nothing was done.
        before = previous.get((kind, name)) or {}
        if before.get("result") == Reason.Applied and before.get("image") == reference:
            containers = before.get("containers")
            return TargetResult(
                kind,
                name,
                Reason.Applied,
                str(before.get("message") or done),
                image=reference,
                containers=tuple(str(c) for c in containers)
                if isinstance(containers, list)
                else (),
            )
        return TargetResult(kind, name, Reason.Applied, done, image=reference)
    match result.outcome:
        case Outcome.Written:
            message = f"started Build {result.build} for {reference}" if build else done
            return TargetResult(
                kind,
                name,
                Reason.Applied,
                done if not build else message,
                image=reference,
                containers=result.containers,
                changed=True,
            )
        case Outcome.DryRun:
            what = (
                f"would start a build for {reference}"
                if build
                else f"would set {describe_changes(target.changes)}"
            )
            return TargetResult(
                kind, name, Reason.DryRun, what, image=reference, containers=result.containers
            )
        case Outcome.Forbidden:
            return TargetResult(kind, name, Reason.Forbidden, result.message)
        case _:
            return TargetResult(kind, name, Reason.Failed, result.message)


def _sooner(after: float | None, held: tuple[timing.Hold, str] | None) -> float | None:
    """The pass's recheck, or sooner when a timing rule holds an image until a time."""
    until = held[0].until if held is not None else None
    if until is None:
        return after
    wait = max((until - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
    return wait if after is None else min(after, wait)


def _running(
    result: TargetResult, followed: TriggerPlan, states: Mapping[str, TargetRollout]
) -> TargetResult:
    """A target held back with the image it runs, whose rollout ``states`` judged: the
    next pass reads it back as that image's (not judged healthy twice)."""
    if result.key not in states or result.image or followed.image is None:
        return result
    return dataclasses.replace(result, image=followed.image.reference)


def _with_rollout(result: TargetResult, state: TargetRollout | None) -> TargetResult:
    """A target's result with its rollout state; one reverted in this pass no longer runs
    the image: it says so at once, as the next pass's plan will (Quarantined)."""
    if state is None:
        return result
    if state.state is RolloutState.Reverted and result.result is Reason.Applied:
        return dataclasses.replace(
            result,
            result=Reason.Quarantined,
            message=state.message,
            image="",
            containers=(),
            rollout=state.state,
            rollout_message=state.message,
        )
    return dataclasses.replace(result, rollout=state.state, rollout_message=state.message)


def _quarantine(
    spec: ImageTriggerSpec | None, gate: RolloutPass | None, base: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """status.quarantine: as the gate left it; kept as it was while the trigger cannot
    follow (blocked as a whole, or a spec that cannot be read); dropped with spec.rollout."""
    if spec is not None and spec.rollout is None:
        return []
    if gate is not None:
        return [q.as_status() for q in gate.quarantine]
    return [q.as_status() for q in quarantine_entries(base)]


def _picked_tag(spec: ImageTriggerSpec | None, plan: TriggerPlan, base: Mapping[str, Any]) -> str:
    """status.tag: the tag spec.source.policy picked in this pass; while none can be
    picked (or the spec cannot be read), the one picked before, as status.image keeps the
    image the targets still run. "" for a trigger following one tag."""
    if spec is not None and spec.source.policy is None:
        return ""
    if plan.picked is not None and plan.image is not None:
        return plan.picked.tag
    before = base.get("tag")
    return before if isinstance(before, str) else ""


def _ledger(
    base: Mapping[str, Any], plan: TriggerPlan, done: Iterable[WriteResult | None]
) -> dict[str, dict[str, str]]:
    """The build records to keep in the status: the earlier ones, updated by this pass."""
    ledger = {
        name: record
        for name, record in build_ledger(base).items()
        if record.build != "(earlier)"  # a pre-ledger status entry: kept in targets
    }
    for target, result in zip(plan.targets, done, strict=True):
        if target.buildconfig is None or result is None:
            continue
        if result.outcome in (Outcome.Written, Outcome.AlreadyBuilt):
            requested = ledger.get(target.name, BuildRecord(result.image)).requested_at
            ledger[target.name] = BuildRecord(
                result.image, requested, result.build or "(already built)"
            )
        elif result.outcome in (Outcome.Forbidden, Outcome.Failed) and (
            target.action is not Action.Recover
        ):
            # Nothing was created: forget the intent, so the next pass sends it again.
            # (Recovering, the refusal may be the LIST that was to find out whether an
            # earlier request made a Build: the intent stays until that is known.)
            record = ledger.get(target.name)
            if record is not None and record.image == result.image and not record.build:
                del ledger[target.name]
    # Only BuildConfigs still targeted are worth remembering.
    wanted = {t.name for t in plan.targets if t.buildconfig is not None}
    return {
        name: r.as_status()
        for name, r in sorted(ledger.items())
        if name in wanted or not plan.targets
    }


class Controller:
    """The work queue and its workers: wakes in, one reconcile pass per key out."""

    def __init__(
        self,
        reconciler: Reconciler,
        metrics: Metrics,
        *,
        workers: int,
        queue: WorkQueue[Key] | None = None,
    ) -> None:
        self.reconciler = reconciler
        self.metrics = metrics
        self.workers = workers
        self.queue: WorkQueue[Key] = queue if queue is not None else WorkQueue()
        # Source tags whose move caused a queued key (merged while it waits).
        self.causes: dict[Key, set[TagRef]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._active = 0.0  # when a key was last queued (monotonic)

    def enqueue(self, wakes: Iterable[Wake], *, background: bool = False) -> None:
        """Queue keys; ``background`` for full passes (start-up, takeover, resync), which
        wait behind the keys events bring."""
        self._active = time.monotonic()
        for key, moved in wakes:
            if moved:
                self.causes.setdefault(key, set()).update(moved)
            self.queue.add(key, background=background)
        self.metrics.queue_depth.set(len(self.queue))

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def pause(self) -> None:
        """Stop the workers now (leadership lost), keeping the queue for a later ``start``.
        A pass cut short is harmless: a new leader queues every key again."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ShutDown):
                await task

    async def stop(self) -> None:
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ShutDown):
                await task
        self._tasks = []

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            moved = frozenset(self.causes.pop(key, ()))
            started = time.monotonic()
            try:
                result = await self.reconciler.reconcile(key, moved)
            except Exception:  # a bug, not an input: keep serving everything else
                log.exception("reconciling %s failed; will try again", key)
                result = Pass(retry="error")
            finally:
                kind = IMAGETRIGGER if key.is_trigger else ANNOTATION
                took = time.monotonic() - started
                self.metrics.reconcile_duration.labels(kind).observe(took)
                self.queue.done(key)
            # Tests wait for this line: the positive end of a pass that wrote nothing.
            log.debug("reconciled %s in %.1f ms", key, took * 1000)
            if result.retry:
                self.metrics.retries.labels(result.retry).inc()
                delay = self.queue.add_rate_limited(key)
                log.info("%s: will try again in %.1fs (%s)", key, delay, result.retry)
            elif result.gone:
                self.queue.discard(key)
            else:
                self.queue.forget(key)
            if result.after is not None and not result.gone:
                # A rollout's deadline: judged then even if its workload stays silent.
                self.queue.add_after(key, result.after)
            self.metrics.queue_depth.set(len(self.queue))

    def busy(self) -> bool:
        """Whether keys are waiting or being reconciled (not those waiting for a backoff),
        or were a moment ago: in a burst the queue empties between two tag moves."""
        return (
            len(self.queue) > 0
            or self.queue.processing > 0
            or time.monotonic() - self._active < QUIET_S
        )

    def tracked(self) -> int:
        return len(self.causes) + self.queue.tracked()
