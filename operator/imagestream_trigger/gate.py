"""The health gate of ``spec.rollout``: follow the rollouts we caused, revert, quarantine. Pure.

One pass of an ImageTrigger with ``spec.rollout`` asks ``follow_rollouts`` what stands
after its writes: each workload target whose containers run the image we wrote for the
trigger's tag is judged (rollout.py); a failed one is reverted (decide.revert_patch) and
its image quarantined; the pass learns when to look again, what the Ready condition says,
which Events to post and what to count.

Nothing is remembered between passes but what the cluster keeps, so a restart changes no
verdict: when we wrote and what the container ran before come from our last-applied record
on the workload, the counts from the workload's status, and what was already reported
(a rollout judged healthy, a quarantine) from the ImageTrigger's status.

Quarantine. An image whose rollout failed is listed in ``status.quarantine`` and is not
applied again by this trigger (plan.py reports ``Quarantined``). A different image of the
tag is applied as usual. The entry stays (the 10 newest are kept), so a tag moved back to a
known-bad image does not roll it out again; a person releases it with the one-shot
annotation ``imagestream-trigger.dev/retry-image`` (``quarantine_after``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from imagestream_trigger.api import RETRY_IMAGE_ANNOTATION, Reason, RolloutState
from imagestream_trigger.decide import Applied, applied_record, revert_patch, revertible
from imagestream_trigger.durations import format_duration
from imagestream_trigger.index import ObjectRef, WorkloadInfo
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.models import Rollout
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.rollout import Verdict, judge

QUARANTINE_LIMIT: Final = 10
# A quarantine entry found only in a workload's record (the status that said more was lost).
REVERTED: Final = "Reverted"
_DIGEST_HEX: Final = frozenset("0123456789abcdef")


# -- quarantine -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quarantine:
    """An image whose rollout failed, as ``status.quarantine[]`` lists it."""

    image: str
    since: str
    reason: str = ""
    message: str = ""
    targets: tuple[str, ...] = ()  # "Kind/name"

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"image": self.image, "since": self.since}
        if self.reason:
            entry["reason"] = self.reason
        if self.message:
            entry["message"] = self.message
        if self.targets:
            entry["targets"] = list(self.targets)
        return entry


def quarantine_entries(status: Mapping[str, Any]) -> tuple[Quarantine, ...]:
    """The quarantine of an ImageTrigger's status (as report.status.read keeps it)."""
    found = status.get("quarantine")
    entries = []
    for raw in found if isinstance(found, list) else ():
        if not isinstance(raw, Mapping):
            continue
        image, since = raw.get("image"), raw.get("since")
        if not (isinstance(image, str) and image and isinstance(since, str)):
            continue
        targets = raw.get("targets")
        entries.append(
            Quarantine(
                image,
                since,
                _text(raw.get("reason")),
                _text(raw.get("message")),
                tuple(t for t in targets if isinstance(t, str))
                if isinstance(targets, list)
                else (),
            )
        )
    return tuple(entries)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def digest_of(image: str) -> str:
    """``sha256:...`` of a digest-pinned reference (or of a bare digest); "" if none."""
    _, at, digest = image.rpartition("@")
    candidate = digest if at else image
    algorithm, colon, value = candidate.partition(":")
    return candidate if colon and algorithm and value and "/" not in candidate else ""


def retry_matches(retry: str | None, image: str) -> bool:
    """Whether a retry-image annotation names ``image``: the whole reference, its digest,
    or the digest's first 12 or more hex digits (``status.shortDigest``, ``sha256:1a2b...``)."""
    if not retry:
        return False
    wanted = retry.strip()
    if wanted == image:
        return True
    digest = digest_of(image)
    if not digest or not wanted:
        return False
    if wanted == digest:
        return True
    algorithm, _, value = wanted.partition(":")
    return (
        algorithm == digest.partition(":")[0]
        and len(value) >= 12
        and set(value) <= _DIGEST_HEX
        and digest.startswith(wanted)
    )


def quarantine_after(
    entries: Sequence[Quarantine], retry: str | None
) -> tuple[tuple[Quarantine, ...], bool]:
    """The quarantine once a retry-image annotation is honoured, and whether it was used up.

    The annotation is one-shot: whenever it is set it is used up (``consumed``), whether it
    released an entry, released the tag's image from a revert recorded only on a workload
    (see ``follow_rollouts``), or named nothing known (a typo must not linger and release a
    later quarantine by surprise). The caller removes it once the pass that honours it has
    written its targets; seen again before that, it releases nothing more.
    """
    if not retry or not retry.strip():
        return tuple(entries), False
    return tuple(e for e in entries if not retry_matches(retry, e.image)), True


def quarantined(entries: Iterable[Quarantine], image: str) -> Quarantine | None:
    return next((e for e in entries if e.image == image), None)


def retry_hint(trigger: str, image: str) -> str:
    """How a person releases ``image``: the command, in a sentence."""
    named = digest_of(image) or image
    return (
        "it is not applied again until the tag moves to another image, or until "
        f"`oc annotate imagetrigger {trigger} {RETRY_IMAGE_ANNOTATION}={named}`"
    )


def _add(
    entries: list[Quarantine], image: str, now: str, reason: str, message: str, target: str
) -> None:
    """Put (or merge) ``image`` in the quarantine, newest first."""
    for number, entry in enumerate(entries):
        if entry.image == image:
            targets = tuple(sorted({*entry.targets, target}))
            entries[number] = Quarantine(
                entry.image,
                entry.since,
                entry.reason or reason,
                entry.message or message,
                targets,
            )
            return
    entries.insert(0, Quarantine(image, now, reason, message, (target,)))


# -- one pass ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetRollout:
    """What ``status.targets[]`` says of one target's rollout (``rollout``, ``rolloutMessage``)."""

    state: RolloutState
    message: str


@dataclass(frozen=True, slots=True)
class Event:
    """An Event to post on a workload (the ImageTrigger gets its Warning from Ready)."""

    on: ObjectRef
    type: Literal["Normal", "Warning"]
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Revert:
    """Set a workload's changed containers back: send ``patch``; once written, report
    ``then`` for it, post ``event`` and count ``reverted``."""

    workload: WorkloadInfo
    patch: tuple[dict[str, Any], ...]
    # (container key, the image we wrote, the image set back), for the writer's overlay.
    back: tuple[tuple[str, str, str], ...]
    then: TargetRollout
    event: Event


@dataclass(frozen=True, slots=True)
class RolloutPass:
    # By "Kind/name": the followed targets only (others have no rollout state).
    targets: Mapping[str, TargetRollout] = field(default_factory=dict)
    # The earliest time a verdict may change by itself (a timeout): queue the key then.
    recheck_at: datetime | None = None
    reverts: tuple[Revert, ...] = ()
    # The whole new status.quarantine (Quarantine.as_status for each).
    quarantine: tuple[Quarantine, ...] = ()
    retry_consumed: bool = False  # remove the retry-image annotation (see quarantine_after)
    # Ready=False with this reason and message, overriding the targets' summary; None: as is.
    ready: tuple[Reason, str] | None = None
    events: tuple[Event, ...] = ()
    # imagestream_trigger_rollouts_total{result}: "succeeded", "failed" (reverts: Revert).
    results: tuple[str, ...] = ()


_SETTLED: Final = frozenset({RolloutState.Healthy, RolloutState.Failed, RolloutState.Reverted})


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time as we write it ("2025-01-10T10:15:05Z"); None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reported_targets(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``status.targets[]`` of an ImageTrigger by "Kind/name"; entries that are not objects
    are left out."""
    targets = status.get("targets")
    return {
        f"{e.get('kind')}/{e.get('name')}": e
        for e in (targets if isinstance(targets, list) else [])
        if isinstance(e, Mapping)
    }


def follow_rollouts(
    rollout: Rollout,
    *,
    trigger: str,
    source: TagRef,
    image: str,
    workloads: Sequence[WorkloadInfo],
    previous: Mapping[str, Any],
    now: datetime,
    retry: str | None = None,
    pending: Collection[str] = (),
) -> RolloutPass:
    """Where the rollouts of ``image`` stand on a trigger's workload targets, and what to do.

    ``workloads``: the targets as last seen by the watch (not with our writes in flight
    applied: the health record and the containers must come from the same body, or the
    counts of an older template would pass for the rollout of ours). ``pending``: keys
    ("Kind/name") with a write of ours (an image or a revert) that the watch has not shown
    yet: not judged until it has. ``previous``: the trigger's status. ``retry``: its
    retry-image annotation.

    A target is followed when its containers run the image we wrote there for ``source``;
    once judged healthy for ``image`` it is not judged again (a later crash of a pod is not
    the rollout's fault), and neither is a failure reported without revert. Everything
    else is judged again each pass, from the cluster's state.
    """
    timeout = timedelta(seconds=rollout.timeout_s)
    entries, consumed = quarantine_after(quarantine_entries(previous), retry)
    quarantine = list(entries)
    retried = retry_matches(retry, image)
    reported = reported_targets(previous)
    stamp = rfc3339(now)
    targets: dict[str, TargetRollout] = {}
    rechecks: list[datetime] = []
    reverts: list[Revert] = []
    events: list[Event] = []
    results: list[str] = []

    for workload in workloads:
        key = f"{workload.ref.kind}/{workload.ref.name}"
        kind = KINDS.get(workload.kind)
        if kind is None or kind.health is None:
            continue  # CronJobs: nothing rolls out
        record = applied_record(workload.annotations)
        ours = [
            (c, record[c.key])
            for c in workload.containers
            if c.key in record and record[c.key].source == str(source)
        ]
        before = reported.get(key) or {}
        state_before = state_of(before.get("rollout")) if before.get("image") == image else None
        if key in pending:
            # Our write has not come back through the watch: what was said still holds.
            targets[key] = (
                TargetRollout(state_before, _text(before.get("rolloutMessage")))
                if state_before is not None
                else TargetRollout(
                    RolloutState.Progressing,
                    f"{image} written; waiting for the {workload.ref.kind} controller",
                )
            )
            rechecks.append(now + timeout)  # the echo brings it back sooner; a safety net
            continue
        undone = [(c, e) for c, e in ours if e.reverted and e.image == image]
        if undone and not retried:
            state = TargetRollout(RolloutState.Reverted, _reverted_message(undone, image))
            targets[key] = state
            if quarantined(quarantine, image) is None:
                _add(quarantine, image, stamp, REVERTED, state.message, key)
            continue
        in_place = [
            (c, e) for c, e in ours if e.image == image and c.image == image and not e.reverted
        ]
        if not in_place:
            continue
        if (
            not retried
            and state_before in _SETTLED
            and (state_before == RolloutState.Healthy or not rollout.revert)
        ):
            targets[key] = TargetRollout(state_before, _text(before.get("rolloutMessage")))
            continue
        if workload.health is None:
            targets[key] = TargetRollout(
                RolloutState.Progressing, f"no status of the {workload.ref.kind} seen yet"
            )
            continue
        times = [t for _, e in in_place if (t := parse_time(e.time)) is not None]
        written_at = max(times) if times else None
        verdict = judge(workload.ref.kind, workload.health, written_at, now, timeout)
        targets[key] = TargetRollout(verdict.state, verdict.message)
        if verdict.state is RolloutState.Progressing:
            if verdict.recheck_at is not None:
                rechecks.append(verdict.recheck_at)
        elif verdict.state is RolloutState.Healthy:
            if state_before != RolloutState.Healthy:
                took = f" in {_took(written_at, now)}" if written_at is not None else ""
                events.append(
                    Event(
                        workload.ref,
                        "Normal",
                        Reason.RolloutSucceeded,
                        f"{image} rolled out{took}: {verdict.message}",
                    )
                )
                results.append("succeeded")
        else:
            failed = _failed(workload, image, verdict, state_before)
            events += failed
            if failed:
                results.append("failed")
            _add(quarantine, image, stamp, verdict.reason, verdict.message, key)
            if rollout.revert:
                undo = _revert(workload, record, source, image, verdict, stamp)
                if undo is not None:
                    reverts.append(undo)
                else:
                    targets[key] = TargetRollout(
                        RolloutState.Failed,
                        f"{verdict.message}; nothing to revert to (no earlier image recorded)",
                    )

    quarantine = quarantine[:QUARANTINE_LIMIT]
    ready = None
    bad = quarantined(quarantine, image)
    if bad is not None and not retried:
        where = ", ".join(bad.targets) or "a target"
        ready = (
            Reason.RolloutFailed,
            f"the rollout of {image} failed on {where}: {bad.message}; "
            f"{retry_hint(trigger, image)}",
        )
    return RolloutPass(
        targets=targets,
        recheck_at=min(rechecks) if rechecks else None,
        reverts=tuple(reverts),
        quarantine=tuple(quarantine),
        retry_consumed=consumed,
        ready=ready,
        events=tuple(events),
        results=tuple(results),
    )


def state_of(value: Any) -> RolloutState | None:
    """A ``rollout`` field of the status as a RolloutState; None if it is none."""
    return (
        RolloutState(value)
        if isinstance(value, str) and value in RolloutState.__members__
        else None
    )


def running_image(workloads: Iterable[WorkloadInfo], source: TagRef, other_than: str) -> str:
    """The image we last wrote for ``source`` that the workloads still run, other than
    ``other_than`` (the newest write wins); "" if none. While a new image is held back
    (timing.py), the rollout of the one before it is still followed: a failure is reverted
    now, not once the window opens or someone approves."""
    newest = ("", "")
    for workload in workloads:
        record = applied_record(workload.annotations)
        for container in workload.containers:
            entry = record.get(container.key)
            if (
                entry is not None
                and entry.source == str(source)
                and not entry.reverted
                and entry.image == container.image
                and entry.image != other_than
                and (entry.time, entry.image) > newest
            ):
                newest = (entry.time, entry.image)
    return newest[1]


def known_good(status: Mapping[str, Any], key: str, image: str) -> bool:
    """Whether a workload target's image counts as good when the tag moves on (the
    ``known_good`` of decide.workload_patch): not if the trigger's status says its rollout
    of ``image`` is still followed or failed; yes if it was healthy, or never followed."""
    before = reported_targets(status).get(key) or {}
    if before.get("image") != image:
        return True
    return state_of(before.get("rollout")) in (None, RolloutState.Healthy, RolloutState.Reverted)


def _failed(
    workload: WorkloadInfo, image: str, verdict: Verdict, state_before: RolloutState | None
) -> list[Event]:
    """The Warning for a rollout newly found failed (none if the status said so already)."""
    if state_before in (RolloutState.Failed, RolloutState.Reverted):
        return []
    return [
        Event(
            workload.ref,
            "Warning",
            Reason.RolloutFailed,
            f"the rollout of {image} failed: {verdict.message}",
        )
    ]


def _revert(
    workload: WorkloadInfo,
    record: Mapping[str, Applied],
    source: TagRef,
    image: str,
    verdict: Verdict,
    stamp: str,
) -> Revert | None:
    patch = revert_patch(
        workload.ref.kind,
        workload.containers,
        source=str(source),
        annotations=workload.annotations,
        now=stamp,
    )
    if not patch:
        return None
    back = revertible(workload.containers, record, str(source))
    what = ", ".join(f"{c.key} to {e.previous}" for c, e in back)
    return Revert(
        workload,
        tuple(patch),
        tuple((c.key, e.image, e.previous) for c, e in back),
        TargetRollout(
            RolloutState.Reverted,
            f"reverted {what}: the rollout of {image} failed: {verdict.message}",
        ),
        Event(
            workload.ref,
            "Normal",
            Reason.RolloutReverted,
            f"reverted {what}: the rollout of {image} failed ({verdict.reason})",
        ),
    )


def _reverted_message(undone: Sequence[tuple[Any, Applied]], image: str) -> str:
    when = max(e.reverted for _, e in undone)
    what = ", ".join(f"{c.key} to {e.previous}" for c, e in undone)
    return f"reverted {what} at {when}: the rollout of {image} failed"


def _took(start: datetime, end: datetime) -> str:
    return format_duration(max((end - start).total_seconds(), 0.0))
