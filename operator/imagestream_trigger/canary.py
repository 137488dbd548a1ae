"""Canary order of ``spec.rollout``: which targets a pass may write now. Pure.

With ``rollout.canary`` and/or ``rollout.maxParallel`` an ImageTrigger does not write the
tag's image to all its targets at once:

1. the canary targets (Deployments, StatefulSets, DaemonSets named by ``canary.names`` or
   whose labels match ``canary.selector``) are written first, all together;
2. the other targets wait until every canary is ``Healthy`` on the image (the health gate's
   verdict, gate.py); a canary whose rollout fails is reverted and its image quarantined
   by the gate, so the others never get it;
3. then the other Deployments, StatefulSets and DaemonSets are written in the order of
   ``spec.targets`` (a selector's matches by name), at most ``maxParallel`` of them *in
   flight* at a time: written with the image and not yet ``Healthy``. Each that becomes
   healthy frees a slot for the next;
4. CronJobs and BuildConfigs have no rollout to follow or to wait for: they are written (or
   built) once the canaries are healthy, and count against no ``maxParallel``.

A target held back is reported with ``WaitingForCanary``, ``WaitingForBatch`` or, when no
workload target is a canary at all, ``CanaryNotFound`` (the rest waits: a canary that is
missing must not let the image reach everything at once).

Nothing is remembered between passes: what runs the image comes from the plan (the cluster
as the watch shows it) and the writes still in flight (the writer's overlay), whether it is
healthy from the trigger's status (``status.targets[].rollout``) or, within a pass, from the
gate's fresh verdicts. So a restart resumes the order where it stood.

A pass that finds a canary or an in-flight target newly healthy must be followed by one
that writes the next targets: ``releases`` tells the reconciler so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from imagestream_trigger.api import Reason, RolloutState
from imagestream_trigger.decide import applied_record
from imagestream_trigger.gate import reported_targets, state_of
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.models import Rollout, selector_matches
from imagestream_trigger.plan import Action, TargetPlan, TriggerPlan, describe_selector


class Stage(Enum):
    """Where one workload target with a rollout stands with the plan's image."""

    Write = "write"  # a write is planned and not sent yet
    InFlight = "in flight"  # written (or runs it as our write), not healthy yet
    Done = "done"  # healthy on it, or runs it with nothing of ours to follow
    Stuck = "stuck"  # cannot get it now (not found, no container, quarantined, ...)


@dataclass(frozen=True, slots=True)
class Order:
    """One pass's canary order: ``plan`` with the held targets ``Blocked`` (reason and
    message say why they wait), ``held`` their keys; ``original`` the plan before."""

    original: TriggerPlan
    plan: TriggerPlan
    held: frozenset[str]


def rollout_states(status: Mapping[str, Any], image: str) -> dict[str, RolloutState]:
    """Each target's rollout state of ``image``, as an ImageTrigger's status reports it."""
    return {
        key: state
        for key, entry in reported_targets(status).items()
        if entry.get("image") == image and (state := state_of(entry.get("rollout"))) is not None
    }


def _rolls(target: TargetPlan) -> bool:
    kind = KINDS.get(target.kind)
    return kind is not None and kind.health is not None


def _ours(target: TargetPlan, image: str, source: str) -> bool:
    """Whether the target runs ``image`` as written by us for ``source`` (the gate follows it)."""
    workload = target.workload
    if workload is None:
        return False
    record = applied_record(workload.annotations)
    return any(
        (entry := record.get(c.key)) is not None
        and entry.source == source
        and entry.image == image
        and not entry.reverted
        and c.image == image
        for c in workload.containers
    )


def stage(
    target: TargetPlan,
    image: str,
    source: str,
    states: Mapping[str, RolloutState],
    written: Collection[str],
) -> Stage:
    """Where a workload target with a rollout stands (see ``Stage``)."""
    if target.action is Action.Update:
        return Stage.InFlight if target.key in written else Stage.Write
    if target.action is not Action.InSync:
        return Stage.Stuck
    state = states.get(target.key)
    if state is RolloutState.Healthy:
        return Stage.Done
    if state is not None or _ours(target, image, source):
        # Progressing, or failed (quarantined: nothing more is written anyway).
        return Stage.InFlight
    return Stage.Done  # runs it, set by someone else: no rollout of ours to wait for


def is_canary(rollout: Rollout, target: TargetPlan) -> bool:
    canary = rollout.canary
    if canary is None or not _rolls(target):
        return False
    if canary.names is not None:
        return target.name in canary.names
    labels = target.workload.labels if target.workload is not None else None
    return (
        labels is not None
        and canary.selector is not None
        and selector_matches(canary.selector, labels)
    )


def order(
    plan: TriggerPlan,
    rollout: Rollout,
    *,
    states: Mapping[str, RolloutState],
    written: Collection[str] = (),
) -> Order:
    """Which of the plan's writes wait, for a trigger with ``rollout.ordered``.

    ``states``: each target's rollout state of the plan's image ("Kind/name": from the
    status, ``rollout_states``, or the gate's verdicts of this pass). ``written``: keys of
    targets with a write of ours the watch has not shown yet (they are in flight).
    """
    if plan.image is None or plan.source is None or not plan.targets:
        return Order(plan, plan, frozenset())
    image, source = plan.image.reference, str(plan.source)
    stages = {t.key: stage(t, image, source, states, written) for t in plan.targets if _rolls(t)}
    canaries = {t.key for t in plan.targets if is_canary(rollout, t)}
    waiting_for = [
        t.key for t in plan.targets if t.key in canaries and stages[t.key] is not Stage.Done
    ]
    # Canaries named but absent from the targets (a named target that does not exist is
    # still a target: it waits as TargetNotFound, and the others wait for it).
    canary = rollout.canary
    missing: list[str] = []
    if canary is not None and canary.names is not None:
        found = {t.name for t in plan.targets if _rolls(t)}
        missing = [n for n in canary.names if n not in found]
    elif canary is not None and not canaries:
        missing = ["*"]
    flying = [key for key, at in stages.items() if key not in canaries and at is Stage.InFlight]
    slots = None if rollout.max_parallel is None else rollout.max_parallel - len(flying)
    held: dict[str, tuple[Reason, str]] = {}
    for target in plan.targets:
        if target.action not in (Action.Update, Action.Build) or target.key in canaries:
            continue
        if target.action is Action.Update and target.key in written:
            continue  # already sent: nothing to hold
        if missing:
            held[target.key] = (Reason.CanaryNotFound, _not_found(rollout, missing))
        elif waiting_for:
            held[target.key] = (Reason.WaitingForCanary, _for_canary(waiting_for, image))
        elif not _rolls(target) or slots is None:
            continue
        elif slots > 0:
            slots -= 1
        else:
            held[target.key] = (
                Reason.WaitingForBatch,
                _for_batch(flying, rollout.max_parallel or 0, image),
            )
    if not held:
        return Order(plan, plan, frozenset())
    targets = tuple(
        dataclasses.replace(
            t, action=Action.Blocked, reason=held[t.key][0], message=held[t.key][1], changes=()
        )
        if t.key in held
        else t
        for t in plan.targets
    )
    return Order(plan, dataclasses.replace(plan, targets=targets), frozenset(held))


def in_order(
    plan: TriggerPlan, status: Mapping[str, Any], *, written: Collection[str] = ()
) -> Order | None:
    """The canary order of a trigger's plan, its rollout states read from ``status``;
    None when its spec asks for none (the plan is written as it is)."""
    spec = plan.trigger.spec
    rollout = spec.rollout if spec is not None else None
    if rollout is None or not rollout.ordered or plan.image is None:
        return None
    states = rollout_states(status, plan.image.reference)
    return order(plan, rollout, states=states, written=written)


def releases(
    before: Order,
    rollout: Rollout,
    *,
    states: Mapping[str, RolloutState],
    written: Collection[str],
) -> bool:
    """Whether a target held at the start of a pass may be written now, after the pass's
    writes (``written``) and the gate's fresh verdicts (``states``): the next pass must
    come at once, not at the next event."""
    if not before.held:
        return False
    after = order(before.original, rollout, states=states, written=written)
    return bool(before.held - after.held)


def _for_canary(waiting: list[str], image: str) -> str:
    first, others = waiting[0], len(waiting) - 1
    more = f" (and {others} more canar{'ies' if others > 1 else 'y'})" if others else ""
    return f"waits for the canary {first}{more} to be healthy on {image}"


def _for_batch(flying: list[str], most: int, image: str) -> str:
    shown = ", ".join(flying[:3]) + (f" and {len(flying) - 3} more" if len(flying) > 3 else "")
    return (
        f"waits for its turn (maxParallel {most}): {shown} "
        f"{'is' if len(flying) == 1 else 'are'} still rolling out {image}"
    )


def _not_found(rollout: Rollout, missing: list[str]) -> str:
    canary = rollout.canary
    assert canary is not None
    kinds = "no Deployment, StatefulSet or DaemonSet target"
    if canary.selector is not None:
        label = describe_selector(canary.selector)
        why = f"{kinds} matches the canary selector {label}"
    else:
        why = f"{kinds} is named " + " or ".join(f'"{n}"' for n in missing)
    return f"waits for a canary, but {why}: nothing is written before a canary is healthy"
