"""How a workload's rollout stands: a small health record per workload, and its judge. Pure.

A reader (one per kind with a rollout, registered in the kind table, kinds.py) projects a
workload body onto ``Health``: the handful of numbers its controller publishes, the same
for every kind, so one ``judge`` applies to all of them. The index keeps one record per
workload (thousands of them), so the record holds ints, flags and one interned string.

``judge`` says, from the record, when our image was written and the time now, whether the
rollout is still ``Progressing`` (and when to look again), ``Healthy`` or ``Failed``. It
reads nothing else, so the verdict after a restart is the verdict before it: the write
time comes from our last-applied annotation, the rest from the workload's status.

The rules, as ``kubectl rollout status`` reads the same fields:

- every kind: the controller has seen the written spec (``status.observedGeneration`` >=
  ``metadata.generation``); until then the counts describe an older template;
- Deployment: ``updatedReplicas`` == ``spec.replicas`` (default 1), ``availableReplicas`` >=
  ``spec.replicas`` and ``status.replicas`` == ``updatedReplicas`` (no old pod left); the
  condition Progressing=False with reason ProgressDeadlineExceeded fails it at once; while
  ``spec.paused`` nothing rolls, so it is not judged (and not timed out), and once resumed
  the timeout counts from the resumption (when Progressing turned True again: it stays
  True through an ordinary rollout, so only a pause or a failure moves it);
- StatefulSet: ``updatedReplicas`` >= ``spec.replicas`` minus the rolling update's
  ``partition``, ``readyReplicas`` >= ``spec.replicas``, and without a partition
  ``currentRevision`` == ``updateRevision``; with ``updateStrategy: OnDelete`` pods take
  the new template only when someone deletes them, so there is no rollout to follow: it is
  healthy once the controller has seen the spec;
- DaemonSet: ``updatedNumberScheduled`` and ``numberAvailable`` reach
  ``desiredNumberScheduled``; OnDelete as for StatefulSets;
- no pods wanted (``spec.replicas: 0``, a DaemonSet matching no node): healthy once seen;
- not healthy ``timeout`` after the write (or the resumption): failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from imagestream_trigger.api import RolloutState, TargetKind
from imagestream_trigger.durations import format_duration

# Failure reasons (Verdict.reason, status.quarantine[].reason).
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
ROLLOUT_TIMEOUT: Final = "RolloutTimeout"


@dataclass(frozen=True, slots=True)
class Health:
    """What a workload's controller says of its rollout, the same fields for every kind."""

    generation: int = 0  # metadata.generation
    observed: int = 0  # status.observedGeneration
    desired: int = 0  # pods wanted: spec.replicas, or the nodes a DaemonSet should run on
    updated: int = 0  # pods on the newest template
    available: int = 0  # pods available (a StatefulSet: ready)
    # Pods on any template (a Deployment's status.replicas); -1: not compared.
    total: int = -1
    # Pods left on the old template on purpose (a StatefulSet's partition).
    partition: int = 0
    revisions_match: bool = True  # a StatefulSet's currentRevision == updateRevision
    paused: bool = False  # a Deployment's spec.paused
    # When a Deployment's Progressing condition last turned True (epoch seconds, 0: never
    # seen): after a pause it turns Unknown, and True again once resumed, so the rollout's
    # clock starts again then.
    resumed_at: int = 0
    on_delete: bool = False  # updateStrategy OnDelete: pods change only when deleted
    failure: str = ""  # a reason the controller gave up with ("" if none), interned


# What a kind's pods are counted as, in messages ("2 of 3 replicas updated, 1 available").
_UNITS: Final[Mapping[str, tuple[str, str]]] = {
    TargetKind.Deployment.value: ("replicas", "available"),
    TargetKind.StatefulSet.value: ("replicas", "ready"),
    TargetKind.DaemonSet.value: ("nodes", "available"),
}
_PODS: Final = ("pods", "available")


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _parts(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], int]:
    """(spec, status, metadata.generation) of a body, each read as empty if odd."""
    return (
        _map(body.get("spec")),
        _map(body.get("status")),
        _int(_map(body.get("metadata")).get("generation")),
    )


def _epoch(value: Any) -> int:
    """An RFC 3339 time ("2025-01-10T12:00:03Z") as epoch seconds; 0 if it is none."""
    if not isinstance(value, str):
        return 0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _on_delete(spec: Mapping[str, Any]) -> bool:
    return _map(spec.get("updateStrategy")).get("type") == "OnDelete"


def deployment_health(body: Mapping[str, Any]) -> Health:
    """A Deployment's record. Total: any JSON reads as some record."""
    spec, status, generation = _parts(body)
    failure, resumed_at = "", 0
    conditions = status.get("conditions")
    for condition in conditions if isinstance(conditions, list) else ():
        condition = _map(condition)
        if condition.get("type") != "Progressing":
            continue
        if (
            condition.get("status") == "False"
            and condition.get("reason") == PROGRESS_DEADLINE_EXCEEDED
        ):
            failure = PROGRESS_DEADLINE_EXCEEDED
        elif condition.get("status") == "True":
            resumed_at = _epoch(condition.get("lastTransitionTime"))
    return Health(
        generation=generation,
        observed=_int(status.get("observedGeneration")),
        desired=_int(spec.get("replicas"), 1),
        updated=_int(status.get("updatedReplicas")),
        available=_int(status.get("availableReplicas")),
        total=_int(status.get("replicas")),
        paused=spec.get("paused") is True,
        resumed_at=resumed_at,
        failure=failure,
    )


def statefulset_health(body: Mapping[str, Any]) -> Health:
    """A StatefulSet's record. Total: any JSON reads as some record."""
    spec, status, generation = _parts(body)
    desired = _int(spec.get("replicas"), 1)
    rolling = _map(_map(spec.get("updateStrategy")).get("rollingUpdate"))
    partition = min(max(_int(rolling.get("partition")), 0), max(desired, 0))
    current, update = status.get("currentRevision"), status.get("updateRevision")
    return Health(
        generation=generation,
        observed=_int(status.get("observedGeneration")),
        desired=desired,
        updated=_int(status.get("updatedReplicas")),
        available=_int(status.get("readyReplicas")),
        partition=partition,
        revisions_match=isinstance(update, str) and current == update,
        on_delete=_on_delete(spec),
    )


def daemonset_health(body: Mapping[str, Any]) -> Health:
    """A DaemonSet's record. Total: any JSON reads as some record."""
    spec, status, generation = _parts(body)
    return Health(
        generation=generation,
        observed=_int(status.get("observedGeneration")),
        desired=_int(status.get("desiredNumberScheduled")),
        updated=_int(status.get("updatedNumberScheduled")),
        available=_int(status.get("numberAvailable")),
        on_delete=_on_delete(spec),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    state: RolloutState  # Progressing, Healthy or Failed
    message: str
    recheck_at: datetime | None = None  # Progressing: when the verdict may change by itself
    reason: str = ""  # Failed: PROGRESS_DEADLINE_EXCEEDED or ROLLOUT_TIMEOUT


def clock(moment: datetime) -> str:
    """A time as a person reads it in a message: "12:00:03Z" (UTC, to the second)."""
    return moment.strftime("%H:%M:%SZ")


def counts(kind: str, health: Health) -> str:
    """ "2 of 3 replicas updated, 1 available" (and the old pods still there, if any)."""
    unit, ready = _UNITS.get(kind, _PODS)
    wanted = health.desired - health.partition
    text = f"{health.updated} of {wanted} {unit} updated, {health.available} {ready}"
    if health.partition:
        text += f" (partition {health.partition}: {health.partition} kept on the old template)"
    if health.total > health.updated:
        old = health.total - health.updated
        text += f", {old} old {'replica' if old == 1 else 'replicas'} still running"
    return text


def _complete(health: Health) -> bool:
    wanted = health.desired - health.partition
    return (
        health.updated >= wanted
        and health.available >= health.desired
        and (health.total < 0 or health.total <= health.updated)
        and (health.revisions_match or health.partition > 0)
    )


def judge(
    kind: str,
    health: Health,
    written_at: datetime | None,
    now: datetime,
    timeout: timedelta,
) -> Verdict:
    """Where a rollout stands; ``written_at`` None (unknown) means no timeout applies.

    Total and pure: the same arguments give the same verdict, whatever the numbers hold.
    """
    noun = kind if kind in _UNITS else "workload"
    written = written_at
    if written_at is not None and health.resumed_at:
        # Resumed after a pause that began before the write: counted from the resumption.
        resumed = datetime.fromtimestamp(health.resumed_at, UTC)
        written_at = max(written_at, resumed)
    deadline = written_at + timeout if written_at is not None else None
    within = (
        f"; waiting up to {format_duration(timeout.total_seconds())} since {clock(written_at)}"
        if written_at is not None
        else ""
    )

    def late(what: str) -> Verdict | None:
        if deadline is None or now < deadline:
            return None
        assert written_at is not None
        since = "written" if written_at == written else "resumed"
        return Verdict(
            RolloutState.Failed,
            f"not healthy {format_duration(timeout.total_seconds())} after the image was "
            f"{since} at {clock(written_at)}: {what}",
            reason=ROLLOUT_TIMEOUT,
        )

    if health.observed < health.generation:
        what = (
            f"the {noun} controller has not seen generation {health.generation} yet "
            f"(it has seen {health.observed})"
        )
        return late(what) or Verdict(RolloutState.Progressing, what + within, deadline)
    if health.failure:
        return Verdict(
            RolloutState.Failed,
            f"the {noun} reports {health.failure} (condition Progressing is False): "
            f"{counts(kind, health)}",
            reason=health.failure,
        )
    if health.on_delete:
        return Verdict(
            RolloutState.Healthy,
            "updateStrategy OnDelete: pods take the new template only when deleted, so there "
            "is no rollout to follow",
        )
    if health.paused:
        return Verdict(
            RolloutState.Progressing,
            f"paused (spec.paused): nothing rolls out until `oc rollout resume`; "
            f"{counts(kind, health)}",
        )
    if health.desired <= 0:
        return Verdict(RolloutState.Healthy, "no pods wanted: nothing to roll out")
    if _complete(health):
        unit, ready = _UNITS.get(kind, _PODS)
        return Verdict(
            RolloutState.Healthy,
            f"{health.desired - health.partition} of {health.desired - health.partition} "
            f"{unit} updated, {health.available} {ready}",
        )
    what = counts(kind, health)
    return late(what) or Verdict(RolloutState.Progressing, what + within, deadline)
