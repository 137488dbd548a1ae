"""Timing rules and approval: may a trigger's new image be written now? Pure, no I/O.

``spec.rollout`` may hold an image back before any target is written; the rules are asked
in this order, and the first that holds answers (``hold``):

1. ``debounce``: the tag must have pointed at the image for this long (from its tag event's
   ``created``); a further move restarts the wait, so of several quick moves only the last
   is applied.
2. ``minImageAge``: the image must be this old, from its own created time (the Image's
   ``dockerImageMetadata.Created``; without one, from the tag event, and the message says so).
3. ``approval: Manual``: the image must be ``spec.approvedImage`` (its digest or its full
   reference). An approval may be given while a window is closed, hence before windows.
4. ``windows``: now must be inside a maintenance window, in ``timeZone``.

Everything is derived from the cluster (the tag event's time, the image's created time, the
spec) and the clock passed in, so a restarted operator decides exactly as before. The times
compared are UTC instants: two aware datetimes with the same tzinfo compare by wall clock in
Python, which is wrong across a DST change.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from imagestream_trigger.api import Reason
from imagestream_trigger.durations import format_duration, parse_duration
from imagestream_trigger.models import WEEKDAYS, Rollout, Window
from imagestream_trigger.plan import Action, TriggerPlan
from imagestream_trigger.resolve import ResolvedImage

# Days looked ahead for the next opening: every window opens at least once a week.
_LOOKAHEAD_DAYS: Final = 8
# Actions a timing rule or an approval holds back (a Recover finishes an earlier decision).
HELD_ACTIONS: Final = frozenset({Action.Update, Action.Build})


class Rule(StrEnum):
    """Which rule holds an image (``status.waiting.reason``; approval: ``status.pending``)."""

    Debounce = "Debounce"
    MinImageAge = "MinImageAge"
    Approval = "Approval"
    MaintenanceWindow = "MaintenanceWindow"


@dataclass(frozen=True, slots=True)
class Hold:
    """The image may not be written yet: why, and when to look again (None: when a person
    acts, i.e. approves)."""

    rule: Rule
    message: str
    until: datetime | None = None

    @property
    def reason(self) -> Reason:
        return Reason.PendingApproval if self.rule is Rule.Approval else Reason.Waiting


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime; None if absent or not a time."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # Kubernetes times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def approved(approved_image: str | None, image: ResolvedImage) -> bool:
    """Whether ``spec.approvedImage`` names ``image``: its digest ("sha256:..."), its full
    reference, or any reference pinned to its digest."""
    if not approved_image:
        return False
    if approved_image == image.reference:
        return True
    digest = approved_image.rpartition("@")[2]
    return bool(image.image) and digest == image.image


def hold(
    rollout: Rollout,
    *,
    image: ResolvedImage,
    image_created: datetime | None,
    approved_image: str | None,
    approve_hint: str,
    now: datetime,
) -> Hold | None:
    """The first rule that holds ``image`` back at ``now``, or None: write it.

    ``image_created``: the image's own created time (None: unknown, the tag event's time is
    used). ``approve_hint``: the command that approves, for the message.
    """
    tag_event = parse_time(image.created)
    if rollout.debounce and tag_event is not None:
        wait = timedelta(seconds=parse_duration(rollout.debounce))
        until = tag_event + wait
        if now < until:
            return Hold(
                Rule.Debounce,
                f"waits for the tag to settle (debounce {rollout.debounce}): it moved to "
                f"{image.reference} at {rfc3339(tag_event)}; applied at {rfc3339(until)} "
                "unless it moves again",
                until,
            )
    if rollout.min_image_age:
        born, whence = image_created, "created"
        if born is None:
            born, whence = tag_event, "tagged (the image has no created time)"
        if born is not None:
            age = timedelta(seconds=parse_duration(rollout.min_image_age))
            until = born + age
            if now < until:
                young = format_duration((now - born).total_seconds())
                return Hold(
                    Rule.MinImageAge,
                    f"waits until the image is {rollout.min_image_age} old (minImageAge): "
                    f"{image.reference} was {whence} at {rfc3339(born)}, {young} ago; "
                    f"applied at {rfc3339(until)}",
                    until,
                )
    if rollout.approval == "Manual" and not approved(approved_image, image):
        return Hold(
            Rule.Approval,
            f"waits for approval of {image.reference} (approval: Manual): {approve_hint}",
        )
    if rollout.windows:
        zone = zoneinfo.ZoneInfo(rollout.time_zone)
        opens = next_opening(rollout.windows, zone, now)
        if opens is not None:
            local = opens.astimezone(zone)
            return Hold(
                Rule.MaintenanceWindow,
                "waits for the maintenance window: next opens "
                f"{local:%a %H:%M} {rollout.time_zone} ({rfc3339(opens)})",
                opens,
            )
    return None


def holdable(plan: TriggerPlan) -> Rollout | None:
    """The rules to ask (``hold``) before this plan's writes; None when there is nothing to
    ask: no timing rule or approval (the path of every other trigger: one look at the
    spec), suspended, blocked as a whole, or nothing to write."""
    spec = plan.trigger.spec
    rollout = spec.rollout if spec is not None else None
    if (
        spec is None
        or rollout is None
        or not rollout.timed
        or spec.suspend
        or plan.blocked is not None
        or plan.image is None
        or plan.source is None
        or not any(t.action in HELD_ACTIONS for t in plan.targets)
    ):
        return None
    return rollout


def approve_hint(plan: TriggerPlan) -> str:
    """The command that approves the plan's image, for a PendingApproval message."""
    ref = plan.trigger.ref
    return f"kubectl imagetrigger approve {ref.name} -n {ref.namespace}"


def held_back(plan: TriggerPlan, held: Hold) -> TriggerPlan:
    """The plan with its writes held: those targets and the trigger say why (the targets
    already running the image stay as they are)."""
    targets = tuple(
        dataclasses.replace(t, action=Action.Blocked, reason=held.reason, message=held.message)
        if t.action in HELD_ACTIONS
        else t
        for t in plan.targets
    )
    return dataclasses.replace(plan, blocked=held.reason, message=held.message, targets=targets)


def created_from_status(status: Mapping[str, Any], rollout: Rollout, image: str) -> datetime | None:
    """The image's created time as the operator last counted it (``status.waiting`` of a
    minImageAge hold of ``image``: ``until`` less the age); None if it did not say. For
    the plugin, which reads no Images."""
    waiting = status.get("waiting")
    if not (
        rollout.min_image_age
        and isinstance(waiting, Mapping)
        and waiting.get("image") == image
        and waiting.get("reason") == Rule.MinImageAge
    ):
        return None
    until = parse_time(waiting.get("until"))
    if until is None:
        return None
    return until - timedelta(seconds=parse_duration(rollout.min_image_age))


def next_opening(
    windows: tuple[Window, ...], zone: zoneinfo.ZoneInfo, now: datetime
) -> datetime | None:
    """None if a window is open at ``now``; else when the next one opens (UTC).

    A window's ``days`` are the days it opens; one whose end is at or before its start
    closes the next day. A local time that does not exist (skipped by a DST change) is
    read with the offset before the change, so it falls just after the gap; one that
    exists twice is its first occurrence.
    """
    now = now.astimezone(UTC)
    today = now.astimezone(zone).date()
    soonest: datetime | None = None
    # From yesterday: a window opened then may wrap past midnight into today.
    for offset in range(-1, _LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        name = WEEKDAYS[day.weekday()]
        for window in windows:
            if name not in window.days:
                continue
            start = _instant(day, window.start, zone)
            end_day = day + timedelta(days=1) if window.end <= window.start else day
            end = _instant(end_day, window.end, zone)
            if start <= now < end:
                return None
            if start > now and (soonest is None or start < soonest):
                soonest = start
    return soonest


def _instant(day: date, clock: str, zone: zoneinfo.ZoneInfo) -> datetime:
    """``clock`` ("HH:MM", or "24:00": the next midnight) on local ``day``, as UTC."""
    hours, minutes = int(clock[:2]), int(clock[3:])
    if hours == 24:
        day, hours = day + timedelta(days=1), 0
    return datetime.combine(day, time(hours, minutes), tzinfo=zone).astimezone(UTC)
