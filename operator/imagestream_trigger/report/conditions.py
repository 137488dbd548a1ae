"""An ImageTrigger's status, computed from what was decided and done. Pure.

Conditions follow the Flux convention: ``Ready`` says whether the targets
follow the source; ``Stalled`` is added when only a person can fix it (a bad
spec, a missing permission, a container name that does not exist), so nobody
waits for retries that cannot help. ``lastTransitionTime`` only moves when a
condition's status changes, and the whole status is unchanged when nothing
changed, so writing it cannot loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from imagestream_trigger.api import Reason, RolloutState

HISTORY_LIMIT: Final = 10
# Reasons that retrying cannot cure: a person has to change something.
STALLED: Final = frozenset(
    {
        Reason.InvalidSpec,
        Reason.CrossNamespaceDenied,
        Reason.NoMatchingContainer,
        Reason.ContainerNotFound,
        Reason.Forbidden,
    }
)
# Per-target results that mean "this target follows the source as it should".
HEALTHY: Final = frozenset({Reason.Applied, Reason.Unchanged, Reason.DryRun})
# Per-target results of a rollout in canary order (canary.py): not failing, only not yet.
WAITING: Final = frozenset({Reason.WaitingForCanary, Reason.WaitingForBatch})


@dataclass(frozen=True, slots=True)
class TargetResult:
    kind: str
    name: str
    result: Reason
    message: str
    image: str = ""  # the image the target runs (or was built from) after this pass
    containers: tuple[str, ...] = ()
    changed: bool = False  # a write was made (or a build started) in this pass
    # With spec.rollout: where the rollout of the image written stands, and why (gate.py).
    rollout: RolloutState | None = None
    rollout_message: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": self.kind, "name": self.name, "result": str(self.result)}
        if self.message:
            entry["message"] = self.message
        if self.image:
            entry["image"] = self.image
        if self.containers:
            entry["containers"] = list(self.containers)
        if self.rollout is not None:
            entry["rollout"] = str(self.rollout)
            if self.rollout_message:
                entry["rolloutMessage"] = self.rollout_message
        return entry


def short_digest(image: str) -> str:
    """``sha256:0123456789ab`` from any reference carrying a digest ("" if none)."""
    _, at, digest = image.rpartition("@")
    if not at and not image.startswith("sha256:"):
        return ""
    algorithm, colon, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if colon else ""


def _condition(
    previous: Mapping[str, Any] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int,
) -> dict[str, Any]:
    since = now if previous is None or previous.get("status") != status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since or (previous or {}).get("lastTransitionTime", now),
    }


def summarize(
    blocked: Reason | None,
    blocked_message: str,
    results: Sequence[TargetResult],
    *,
    suspended: bool,
) -> tuple[bool, Reason, str]:
    """(ready, reason, message) for the Ready condition."""
    if blocked is not None:
        return False, blocked, blocked_message
    if suspended:
        waiting = [r.key for r in results if r.result is Reason.DryRun]
        tail = f"; would update {', '.join(waiting)}" if waiting else ""
        return False, Reason.Suspended, f"spec.suspend is true: nothing is written{tail}"
    failing = [r for r in results if r.result not in HEALTHY and r.result not in WAITING]
    if failing:
        first = failing[0]
        others = f" (and {len(failing) - 1} more targets failing)" if len(failing) > 1 else ""
        return False, first.result, f"{first.key}: {first.message}{others}"
    held = [r for r in results if r.result in WAITING]
    if held:
        first = held[0]
        others = f" (and {len(held) - 1} more targets waiting)" if len(held) > 1 else ""
        return False, first.result, f"rollout in progress: {first.key} {first.message}{others}"
    if any(r.result is Reason.DryRun for r in results):
        pending = ", ".join(r.key for r in results if r.result is Reason.DryRun)
        return True, Reason.DryRun, f"dry run: would update {pending}"
    return True, Reason.Applied, f"{len(results)} target(s) follow the source"


def trigger_status(
    *,
    previous: Mapping[str, Any],
    generation: int,
    now: str,
    blocked: Reason | None,
    blocked_message: str,
    image: str,
    results: Sequence[TargetResult],
    suspended: bool,
    rollout_failed: str | None = None,
    promotion: tuple[bool, Reason, str] | None = None,
    keep_promotion: bool = False,
) -> dict[str, Any]:
    """The full new ``status`` of an ImageTrigger.

    ``rollout_failed``: why the source's image failed its rollout (gate.py): Ready is then
    False with reason RolloutFailed, unless the trigger is blocked or suspended.
    ``promotion``: the ``Promoted`` condition after a promotion was written (True) or
    refused (False) in this pass (promote.py); None with ``keep_promotion`` keeps the one
    there (spec.rollout.promoteTo set, nothing to do this pass); else there is none."""
    ready, reason, message = summarize(blocked, blocked_message, results, suspended=suspended)
    if rollout_failed is not None and blocked is None and not suspended:
        ready, reason, message = False, Reason.RolloutFailed, rollout_failed
    old = {c.get("type"): c for c in previous.get("conditions") or []}
    conditions = [
        _condition(
            old.get("Ready"),
            "Ready",
            "True" if ready else "False",
            str(reason),
            message,
            now=now,
            generation=generation,
        )
    ]
    # Stalled when anything wrong needs a person, even if it is not the first problem.
    stalled = (
        [reason]
        if blocked in STALLED
        else [r.result for r in results if r.result in STALLED and not suspended]
    )
    if not ready and stalled:
        first = stalled[0]
        why = (
            message
            if first is reason
            else next(f"{r.key}: {r.message}" for r in results if r.result is first)
        )
        conditions.append(
            _condition(
                old.get("Stalled"),
                "Stalled",
                "True",
                str(first),
                why,
                now=now,
                generation=generation,
            )
        )

    if promotion is not None:
        done, why, said = promotion
        conditions.append(
            _condition(
                old.get("Promoted"),
                "Promoted",
                "True" if done else "False",
                str(why),
                said,
                now=now,
                generation=generation,
            )
        )
    elif keep_promotion and isinstance(old.get("Promoted"), Mapping):
        conditions.append(dict(old["Promoted"]))

    status: dict[str, Any] = {"observedGeneration": generation, "conditions": conditions}
    image = image or previous.get("image", "")
    if image:
        status["image"] = image
        status["shortDigest"] = short_digest(image)
    if results:
        status["targets"] = [r.as_status() for r in results]
    elif blocked is not None and previous.get("targets"):
        # Blocked for now: keep the last results, which are also the record of the
        # builds already started (see plan.plan_trigger).
        status["targets"] = list(previous["targets"])

    changed = [r for r in results if r.changed]
    last = previous.get("lastTriggerTime")
    if changed:
        last = now
    if last:
        status["lastTriggerTime"] = last

    history = list(previous.get("history") or [])
    new_image = image and image != previous.get("image") and blocked is None
    if new_image or changed:
        entry = {
            "image": image,
            "time": now,
            "updated": [r.key for r in changed],
            "failed": [r.key for r in results if r.result not in HEALTHY | WAITING],
        }
        if history and history[0].get("image") == image:
            # Same transition, finished in a later pass: merge rather than repeat it.
            merged = sorted(set(history[0].get("updated", [])) | set(entry["updated"]))
            entry = {**history[0], "updated": merged, "failed": entry["failed"]}
            history[0] = entry
        else:
            history.insert(0, entry)
    if history:
        status["history"] = history[:HISTORY_LIMIT]
    return status
