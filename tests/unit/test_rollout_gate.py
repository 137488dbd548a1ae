"""One pass of the health gate (gate.follow_rollouts): judge, revert, quarantine, report.

Workloads are projected from bodies as the API server returns them (our last-applied
record on the metadata, the controller's counts in the status), so the gate reads exactly
what it will read in the operator. A pass's revert patch is applied to the body with a
real JSON Patch implementation, and the next pass reads the result.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
import pytest

from imagestream_trigger.api import (
    LAST_APPLIED_ANNOTATION,
    RETRY_IMAGE_ANNOTATION,
    Reason,
    RolloutState,
    TargetKind,
)
from imagestream_trigger.gate import (
    QUARANTINE_LIMIT,
    REVERTED,
    Quarantine,
    RolloutPass,
    TargetRollout,
    follow_rollouts,
    known_good,
    parse_time,
    rfc3339,
)
from imagestream_trigger.index import WorkloadInfo, workload_info
from imagestream_trigger.models import Rollout
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.rollout import PROGRESS_DEADLINE_EXCEEDED, ROLLOUT_TIMEOUT
from tests.fuzz.inputs import json_values

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
GOOD = f"quay.io/acme/app@{A}"
BAD = f"quay.io/acme/app@{B}"
NEXT = f"quay.io/acme/app@{C}"
APP = TagRef("demo", "app", "latest")
WRITTEN = datetime(2025, 1, 10, 12, 0, 3, tzinfo=UTC)
SOON = WRITTEN + timedelta(seconds=30)
LATE = WRITTEN + timedelta(minutes=10)
ROLLOUT = Rollout()  # 10m, revert
KEEP = Rollout(revert=False)


def body(
    kind: str = "Deployment",
    *,
    name: str = "web",
    runs: str = BAD,
    record: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 2,
) -> dict[str, Any]:
    """A workload whose container "web" runs ``runs``; ``record`` defaults to our write of
    BAD over GOOD at WRITTEN; ``status`` to a rollout just begun."""
    if record is None:
        record = {
            "web": {
                "image": BAD,
                "previous": GOOD,
                "source": str(APP),
                "time": rfc3339(WRITTEN),
            }
        }
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "containers": [{"name": "web", "image": runs}, {"name": "sidecar", "image": "x"}]
            }
        }
    }
    if kind != TargetKind.DaemonSet:
        spec["replicas"] = 3
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "generation": generation,
            "annotations": {LAST_APPLIED_ANNOTATION: json.dumps(record)} if record else {},
        },
        "spec": spec,
        "status": status if status is not None else rolling(),
    }


def rolling(updated: int = 1, available: int = 2, total: int = 4) -> dict[str, Any]:
    return {
        "observedGeneration": 2,
        "replicas": total,
        "updatedReplicas": updated,
        "availableReplicas": available,
    }


def complete() -> dict[str, Any]:
    return rolling(updated=3, available=3, total=3)


def info(raw: dict[str, Any]) -> WorkloadInfo:
    return workload_info(TargetKind(raw["kind"]), raw, native=False)


def reported(key: str = "Deployment/web", image: str = BAD, **fields: Any) -> dict[str, Any]:
    kind, _, name = key.partition("/")
    entry = {"kind": kind, "name": name, "result": "Applied", "image": image, **fields}
    return {"targets": [entry]}


def follow(
    *workloads: dict[str, Any],
    rollout: Rollout = ROLLOUT,
    previous: dict[str, Any] | None = None,
    now: datetime = SOON,
    image: str = BAD,
    retry: str | None = None,
    pending: tuple[str, ...] = (),
) -> RolloutPass:
    return follow_rollouts(
        rollout,
        trigger="follow-app",
        source=APP,
        image=image,
        workloads=[info(w) for w in workloads],
        previous=previous or {},
        now=now,
        retry=retry,
        pending=pending,
    )


# -- following ------------------------------------------------------------------------------


def test_a_rollout_in_progress_is_waited_for_until_its_deadline() -> None:
    result = follow(body())
    assert result.targets == {
        "Deployment/web": TargetRollout(
            RolloutState.Progressing,
            "1 of 3 replicas updated, 2 available, 3 old replicas still running; "
            "waiting up to 10m since 12:00:03Z",
        )
    }
    assert result.recheck_at == LATE
    assert (result.reverts, result.quarantine, result.events, result.ready) == ((), (), (), None)


def test_the_earliest_deadline_is_the_recheck() -> None:
    later = {"web": {"image": BAD, "previous": GOOD, "source": str(APP), "time": rfc3339(SOON)}}
    result = follow(body(name="b", record=later), body(name="a"))
    assert result.recheck_at == LATE
    assert set(result.targets) == {"Deployment/a", "Deployment/b"}


@pytest.mark.parametrize(
    "raw",
    [
        body(runs=GOOD),  # our write is not (or no longer) there
        body(record={"web": {"image": BAD, "source": "demo/other:latest", "time": "t"}}),
        body(record={}),  # never written by us
        body(TargetKind.CronJob),  # nothing rolls out
    ],
    ids=["runs-another-image", "written-for-another-tag", "no-record", "cronjob"],
)
def test_what_we_did_not_roll_out_is_not_followed(raw: dict[str, Any]) -> None:
    if raw["kind"] == TargetKind.CronJob:
        raw["spec"] = {"jobTemplate": {"spec": {"template": raw["spec"]["template"]}}}
    assert follow(raw) == RolloutPass()


def test_a_rollout_of_an_older_image_is_not_judged_for_the_new_one() -> None:
    assert follow(body(), image=NEXT) == RolloutPass()


def test_becoming_healthy_is_told_once() -> None:
    before = reported(rollout="Progressing", rolloutMessage="1 of 3 ...")
    result = follow(body(status=complete()), previous=before, now=SOON)
    assert result.targets["Deployment/web"].state is RolloutState.Healthy
    (event,) = result.events
    assert (event.type, event.reason, event.on.name) == ("Normal", Reason.RolloutSucceeded, "web")
    assert event.message == f"{BAD} rolled out in 30s: 3 of 3 replicas updated, 3 available"
    assert result.results == ("succeeded",)
    assert result.recheck_at is None

    again = reported(rollout="Healthy", rolloutMessage="3 of 3 replicas updated, 3 available")
    settled = follow(body(status=complete()), previous=again)
    assert (settled.events, settled.results) == ((), ())
    assert settled.targets["Deployment/web"].state is RolloutState.Healthy


def test_once_healthy_a_later_crash_is_not_the_rollouts_fault() -> None:
    healthy = reported(rollout="Healthy", rolloutMessage="3 of 3 replicas updated, 3 available")
    degraded = body(status=rolling(updated=3, available=1, total=3))
    result = follow(degraded, previous=healthy, now=LATE + timedelta(days=2))
    assert result.targets["Deployment/web"] == TargetRollout(
        RolloutState.Healthy, "3 of 3 replicas updated, 3 available"
    )
    assert (result.reverts, result.quarantine, result.ready) == ((), (), None)


def test_a_healthy_state_of_another_image_does_not_settle_this_one() -> None:
    healthy_before = reported(image=GOOD, rollout="Healthy")
    result = follow(body(), previous=healthy_before, now=LATE)
    assert result.targets["Deployment/web"].state is RolloutState.Failed


def test_without_a_status_seen_it_waits() -> None:
    raw = body()
    del raw["status"]
    info_ = info(raw)
    assert info_.health is not None  # an empty status reads as nothing observed
    result = follow(raw)
    assert result.targets["Deployment/web"].state is RolloutState.Progressing
    assert "has not seen generation 2" in result.targets["Deployment/web"].message


# -- failing and reverting ----------------------------------------------------------------------


def test_a_timed_out_rollout_is_reverted_and_its_image_quarantined() -> None:
    raw = body()
    result = follow(raw, previous=reported(rollout="Progressing"), now=LATE)

    why = (
        "not healthy 10m after the image was written at 12:00:03Z: 1 of 3 replicas updated, "
        "2 available, 3 old replicas still running"
    )
    assert result.targets["Deployment/web"] == TargetRollout(RolloutState.Failed, why)
    (warning,) = result.events
    assert (warning.type, warning.reason) == ("Warning", Reason.RolloutFailed)
    assert warning.message == f"the rollout of {BAD} failed: {why}"
    assert result.results == ("failed",)
    assert result.quarantine == (
        Quarantine(BAD, rfc3339(LATE), ROLLOUT_TIMEOUT, why, ("Deployment/web",)),
    )
    assert result.ready == (
        Reason.RolloutFailed,
        f"the rollout of {BAD} failed on Deployment/web: {why}; it is not applied again until "
        f"the tag moves to another image, or until `oc annotate imagetrigger follow-app "
        f"{RETRY_IMAGE_ANNOTATION}={B}`",
    )

    (revert,) = result.reverts
    assert revert.workload.ref.name == "web"
    assert revert.then == TargetRollout(
        RolloutState.Reverted, f"reverted web to {GOOD}: the rollout of {BAD} failed: {why}"
    )
    assert (revert.event.type, revert.event.reason) == ("Normal", Reason.RolloutReverted)
    assert revert.event.message == (
        f"reverted web to {GOOD}: the rollout of {BAD} failed ({ROLLOUT_TIMEOUT})"
    )
    after: dict[str, Any] = jsonpatch.apply_patch(raw, list(revert.patch))
    containers = after["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [GOOD, "x"]  # the sidecar untouched

    # The next pass reads the reverted workload: Reverted, nothing more to do or say.
    status = {
        **reported(rollout="Reverted"),
        "quarantine": [q.as_status() for q in result.quarantine],
    }
    next_pass = follow(after, previous=status, now=LATE + timedelta(seconds=5))
    assert next_pass.targets["Deployment/web"].state is RolloutState.Reverted
    assert (next_pass.reverts, next_pass.events, next_pass.results) == ((), (), ())
    assert next_pass.quarantine == result.quarantine
    assert next_pass.ready is not None


def test_progress_deadline_exceeded_fails_before_our_timeout() -> None:
    status = {
        **rolling(updated=1, available=0),
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": PROGRESS_DEADLINE_EXCEEDED}
        ],
    }
    result = follow(body(status=status), now=SOON)
    assert result.targets["Deployment/web"].state is RolloutState.Failed
    assert result.quarantine[0].reason == PROGRESS_DEADLINE_EXCEEDED
    assert len(result.reverts) == 1


def test_without_revert_a_failure_is_reported_and_quarantined_and_then_settled() -> None:
    result = follow(body(), rollout=KEEP, now=LATE)
    assert result.reverts == ()
    assert result.targets["Deployment/web"].state is RolloutState.Failed
    assert [q.image for q in result.quarantine] == [BAD]
    assert result.ready is not None
    assert result.ready[0] is Reason.RolloutFailed
    assert result.results == ("failed",)

    status = {
        **reported(rollout="Failed", rolloutMessage=result.targets["Deployment/web"].message),
        "quarantine": [q.as_status() for q in result.quarantine],
    }
    # Even if it completes much later, the failure stands until retried or replaced.
    later = follow(
        body(status=complete()), rollout=KEEP, previous=status, now=LATE + timedelta(days=1)
    )
    assert later.targets["Deployment/web"].state is RolloutState.Failed
    assert (later.events, later.results) == ((), ())


def test_a_failed_revert_is_tried_again_without_a_second_warning() -> None:
    # The revert patch was refused (or lost) last pass: the status says Failed.
    result = follow(body(), previous=reported(rollout="Failed"), now=LATE + timedelta(minutes=1))
    assert len(result.reverts) == 1
    assert (result.events, result.results) == ((), ())


def test_with_nothing_recorded_to_go_back_to_it_stays_failed() -> None:
    record = {"web": {"image": BAD, "source": str(APP), "time": rfc3339(WRITTEN)}}
    result = follow(body(record=record), now=LATE)
    assert result.reverts == ()
    state = result.targets["Deployment/web"]
    assert state.state is RolloutState.Failed
    assert state.message.endswith("; nothing to revert to (no earlier image recorded)")
    assert [q.image for q in result.quarantine] == [BAD]


def test_two_targets_failing_on_one_image_share_one_entry() -> None:
    earlier = Quarantine(BAD, rfc3339(SOON), ROLLOUT_TIMEOUT, "first", ("Deployment/b",))
    result = follow(body(name="a"), previous={"quarantine": [earlier.as_status()]}, now=LATE)
    assert result.quarantine == (
        Quarantine(BAD, rfc3339(SOON), ROLLOUT_TIMEOUT, "first", ("Deployment/a", "Deployment/b")),
    )


def test_the_quarantine_keeps_the_newest_entries() -> None:
    old = [
        Quarantine(f"quay.io/acme/app@sha256:{n:064x}", rfc3339(WRITTEN)).as_status()
        for n in range(QUARANTINE_LIMIT)
    ]
    result = follow(body(), previous={"quarantine": old}, now=LATE)
    assert len(result.quarantine) == QUARANTINE_LIMIT
    assert result.quarantine[0].image == BAD
    assert result.quarantine[-1].image == old[-2]["image"]


# -- restarts: everything from the cluster --------------------------------------------------------


def test_a_revert_recorded_on_the_workload_is_quarantined_again_if_the_status_lost_it() -> None:
    record = {
        "web": {
            "image": BAD,
            "previous": GOOD,
            "source": str(APP),
            "time": rfc3339(WRITTEN),
            "reverted": rfc3339(LATE),
        }
    }
    result = follow(body(runs=GOOD, record=record), previous={}, now=LATE + timedelta(hours=1))
    assert result.targets["Deployment/web"] == TargetRollout(
        RolloutState.Reverted,
        f"reverted web to {GOOD} at {rfc3339(LATE)}: the rollout of {BAD} failed",
    )
    (entry,) = result.quarantine
    assert (entry.image, entry.reason, entry.targets) == (BAD, REVERTED, ("Deployment/web",))
    assert result.ready is not None
    assert (result.reverts, result.events) == ((), ())


def test_the_verdict_after_a_restart_is_the_verdict_before_it() -> None:
    # Nothing but the bodies and the status goes in: the same arguments, the same pass.
    status = reported(rollout="Progressing")
    assert follow(body(), previous=status, now=LATE) == follow(body(), previous=status, now=LATE)


# -- writes in flight ---------------------------------------------------------------------------


def test_a_target_written_in_this_pass_waits_for_its_echo() -> None:
    result = follow(body(runs=GOOD, record={}), pending=("Deployment/web",), now=SOON)
    assert result.targets["Deployment/web"] == TargetRollout(
        RolloutState.Progressing, f"{BAD} written; waiting for the Deployment controller"
    )
    assert result.recheck_at == SOON + timedelta(minutes=10)


def test_a_revert_in_flight_is_not_judged_again() -> None:
    result = follow(
        body(),
        previous=reported(rollout="Failed", rolloutMessage="m"),
        now=LATE,
        pending=("Deployment/web",),
    )
    assert result.reverts == ()
    assert result.targets["Deployment/web"] == TargetRollout(RolloutState.Failed, "m")


# -- retry-image ----------------------------------------------------------------------------------


def test_retry_image_releases_the_quarantine_and_judges_afresh() -> None:
    entry = Quarantine(BAD, rfc3339(LATE), ROLLOUT_TIMEOUT, "m", ("Deployment/web",))
    status = {**reported(rollout="Failed"), "quarantine": [entry.as_status()]}
    # Without revert the image stayed; retried, it is judged again (and is healthy now).
    result = follow(body(status=complete()), rollout=KEEP, previous=status, retry=B, now=LATE)
    assert result.retry_consumed
    assert result.quarantine == ()
    assert result.ready is None
    assert result.targets["Deployment/web"].state is RolloutState.Healthy


def test_retry_image_of_a_reverted_image_lets_the_planner_write_it_again() -> None:
    record = {
        "web": {
            "image": BAD,
            "previous": GOOD,
            "source": str(APP),
            "time": rfc3339(WRITTEN),
            "reverted": rfc3339(LATE),
        }
    }
    result = follow(body(runs=GOOD, record=record), retry=BAD, now=LATE)
    assert result.retry_consumed
    assert result.targets == {}  # not Reverted any more: the planner writes it this pass
    assert result.quarantine == ()
    assert result.ready is None


# -- helpers for the wiring --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "image", "good"),
    [
        ("Progressing", BAD, False),
        ("Failed", BAD, False),
        ("Healthy", BAD, True),
        ("Reverted", BAD, True),
        (None, BAD, True),
        ("Progressing", GOOD, True),  # the state of another image says nothing of this one
    ],
)
def test_known_good(state: str | None, image: str, good: bool) -> None:
    fields = {"rollout": state} if state else {}
    assert known_good(reported(image=image, **fields), "Deployment/web", BAD) is good


def test_times_are_read_and_written_as_rfc3339() -> None:
    assert parse_time("2025-01-10T12:00:03Z") == WRITTEN
    assert parse_time("2025-01-10T12:00:03") == WRITTEN  # no zone: UTC
    assert parse_time("yesterday") is None
    assert rfc3339(WRITTEN) == "2025-01-10T12:00:03Z"


# -- odd input ------------------------------------------------------------------------------


CASES = 300


@pytest.mark.parametrize("seed", [20_251_130])
def test_the_gate_is_total_on_any_status_record_and_retry(seed: int) -> None:
    rng = random.Random(seed)
    values = list(json_values(rng, CASES))
    for number, value in enumerate(values):
        where = f"case {number} (seed {seed})"
        raw = body(status=value if isinstance(value, dict) else complete())
        try:
            text = json.dumps({"web": value} if number % 2 else value)
        except RecursionError:  # a thousand levels: written by hand, as someone might
            text = "[" * 100_000
        raw["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = text
        previous = {"targets": value, "quarantine": value} if number % 3 else {"targets": [value]}
        retry = value if isinstance(value, str) else None
        for now in (SOON, LATE):
            result = follow(raw, previous=previous, now=now, retry=retry)
            for state in result.targets.values():
                assert state.state in RolloutState, where
                state.message.encode("utf-8")
            for entry in result.quarantine:
                assert entry.image, where
            assert len(result.quarantine) <= QUARANTINE_LIMIT, where
