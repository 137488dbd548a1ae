"""Quarantine and retry-image (gate.py), and the planner's rule that holds a quarantined image.

The planner's world is the operator's own indexes, filled as the start-up listing fills
them, from bodies as the API server returns them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from imagestream_trigger.api import (
    RETRY_IMAGE_ANNOTATION,
    Reason,
    TargetKind,
)
from imagestream_trigger.gate import (
    Quarantine,
    digest_of,
    quarantine_after,
    quarantine_entries,
    quarantined,
    retry_matches,
)
from imagestream_trigger.index import Indexes, trigger_info
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.intake import Intake
from imagestream_trigger.plan import Action, TargetPlan, plan_trigger
from tests.unit.builders import (
    NEW,
    OLD,
    OTHER,
    A,
    B,
    buildconfig,
    image_trigger,
    imagestream,
    workload,
)

SINCE = "2025-01-10T12:10:03Z"
BAD = Quarantine(NEW, SINCE, "RolloutTimeout", "not healthy 10m after ...", ("Deployment/web",))


# -- matching a retry-image annotation --------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "matches"),
    [
        (NEW, True),
        (f" {NEW} ", True),
        (B, True),  # the digest alone
        (B[:19], True),  # sha256: and 12 hex digits, as status.shortDigest shows it
        (B[:18], False),  # fewer than 12 digits: too loose
        (A, False),
        ("quay.io/acme/app:latest", False),
        ("sha256:" + "B" * 12, False),  # digests are lowercase
        ("", False),
        (None, False),
    ],
    ids=[
        "reference",
        "blank-padded",
        "digest",
        "short-digest",
        "too-short",
        "other-digest",
        "tag",
        "uppercase",
        "empty",
        "none",
    ],
)
def test_retry_matches(retry: str | None, matches: bool) -> None:
    assert retry_matches(retry, NEW) is matches


def test_digest_of() -> None:
    assert digest_of(NEW) == B
    assert digest_of(B) == B
    assert digest_of("quay.io/acme/app:latest") == ""
    assert digest_of("registry:5000/app") == ""


# -- quarantine_after -------------------------------------------------------------------------


def test_a_retry_releases_the_image_it_names_and_is_used_up() -> None:
    other = Quarantine(OTHER, SINCE)
    assert quarantine_after([BAD, other], B) == ((other,), True)


def test_a_retry_naming_nothing_known_is_used_up_all_the_same() -> None:
    assert quarantine_after([BAD], A) == ((BAD,), True)


@pytest.mark.parametrize("retry", [None, "", "  "])
def test_without_a_retry_nothing_changes(retry: str | None) -> None:
    assert quarantine_after([BAD], retry) == ((BAD,), False)


def test_quarantine_entries_read_leniently() -> None:
    status: dict[str, Any] = {
        "quarantine": [
            BAD.as_status(),
            {"image": OTHER, "since": SINCE, "targets": ["Deployment/a", 3], "reason": 1},
            {"image": "", "since": SINCE},
            {"image": OLD},
            "junk",
        ]
    }
    assert quarantine_entries(status) == (BAD, Quarantine(OTHER, SINCE, "", "", ("Deployment/a",)))
    assert quarantine_entries({"quarantine": "x"}) == ()
    assert quarantined(quarantine_entries(status), NEW) == BAD
    assert quarantined(quarantine_entries(status), OLD) is None


# -- the planner ------------------------------------------------------------------------------


def world(*bodies: dict[str, Any]) -> Indexes:
    indexes = Indexes()
    intake = Intake(indexes, Overlay(), native=True)
    for body in bodies:
        intake.load(body["kind"], body)
    return indexes


def guarded(
    targets: list[dict[str, Any]],
    *,
    rollout: dict[str, Any] | None = None,
    quarantine: Sequence[Quarantine] = (),
    retry: str | None = None,
) -> dict[str, Any]:
    body = image_trigger(targets, status={"quarantine": [q.as_status() for q in quarantine]})
    if rollout is not None:
        body["spec"]["rollout"] = rollout
    if retry is not None:
        body["metadata"]["annotations"] = {RETRY_IMAGE_ANNOTATION: retry}
    return body


def plans(indexes: Indexes, trigger: dict[str, Any]) -> dict[str, TargetPlan]:
    plan = plan_trigger(indexes, trigger_info(trigger))
    assert plan.blocked is None, plan.message
    return {p.key: p for p in plan.targets}


WEB = {"kind": "Deployment", "name": "web"}


def test_a_quarantined_image_is_held_back_with_how_to_retry() -> None:
    trigger = guarded([WEB], rollout={}, quarantine=[BAD])
    (web,) = plans(world(imagestream(), workload(web=OLD)), trigger).values()
    assert (web.action, web.reason, web.changes) == (Action.Blocked, Reason.Quarantined, ())
    assert web.message == (
        f"{NEW} is quarantined: its rollout failed on Deployment/web (RolloutTimeout); it is "
        "not applied again until the tag moves to another image, or until `oc annotate "
        f"imagetrigger follow-app {RETRY_IMAGE_ANNOTATION}={B}`"
    )


def test_a_different_image_is_applied() -> None:
    trigger = guarded([WEB], rollout={}, quarantine=[Quarantine(OTHER, SINCE)])
    (web,) = plans(world(imagestream(), workload(web=OLD)), trigger).values()
    assert web.action is Action.Update


def test_a_target_already_running_it_is_left_in_sync() -> None:
    trigger = guarded([WEB], rollout={}, quarantine=[BAD])
    (web,) = plans(world(imagestream(), workload(web=NEW)), trigger).values()
    assert web.action is Action.InSync


def test_a_build_of_a_quarantined_image_is_held_back_too() -> None:
    trigger = guarded([{"kind": "BuildConfig", "name": "web"}], rollout={}, quarantine=[BAD])
    (bc,) = plans(world(imagestream(), buildconfig()), trigger).values()
    assert (bc.action, bc.reason) == (Action.Blocked, Reason.Quarantined)


@pytest.mark.parametrize("retry", [NEW, B, B[:19]])
def test_retry_image_lets_it_through(retry: str) -> None:
    trigger = guarded([WEB], rollout={}, quarantine=[BAD], retry=retry)
    (web,) = plans(world(imagestream(), workload(web=OLD)), trigger).values()
    assert web.action is Action.Update


def test_without_spec_rollout_a_leftover_quarantine_holds_nothing() -> None:
    trigger = guarded([WEB], rollout=None, quarantine=[BAD])
    (web,) = plans(world(imagestream(), workload(web=OLD)), trigger).values()
    assert web.action is Action.Update


def reverted_record(image: str = NEW, source: str = "demo/app:latest") -> str:
    return json.dumps(
        {
            "web": {
                "image": image,
                "previous": OLD,
                "source": source,
                "time": "2025-01-10T12:00:03Z",
                "reverted": SINCE,
            }
        }
    )


def test_a_revert_recorded_on_the_workload_holds_the_image_when_the_status_lost_it() -> None:
    trigger = guarded([WEB], rollout={})
    (web,) = plans(
        world(imagestream(), workload(web=OLD, last_applied=reverted_record())), trigger
    ).values()
    assert (web.action, web.reason) == (Action.Blocked, Reason.Quarantined)
    assert web.message.startswith(f"{NEW} was reverted here after its rollout failed; it is")


@pytest.mark.parametrize(
    "record",
    [reverted_record(image=OTHER), reverted_record(source="demo/other:latest")],
    ids=["another-image", "another-source"],
)
def test_a_revert_of_something_else_holds_nothing(record: str) -> None:
    trigger = guarded([WEB], rollout={})
    (web,) = plans(world(imagestream(), workload(web=OLD, last_applied=record)), trigger).values()
    assert web.action is Action.Update


def test_retry_image_also_releases_a_revert_recorded_on_the_workload() -> None:
    trigger = guarded([WEB], rollout={}, retry=B)
    (web,) = plans(
        world(imagestream(), workload(web=OLD, last_applied=reverted_record())), trigger
    ).values()
    assert web.action is Action.Update


def test_the_retry_annotation_is_news_to_the_index() -> None:
    before = trigger_info(guarded([WEB], rollout={}))
    after = trigger_info(guarded([WEB], rollout={}, retry=f"  {B}"))
    assert before.retry_image is None
    assert after.retry_image == f"  {B}"
    assert before != after  # the trigger is reconciled when the annotation appears
    blank = trigger_info(guarded([WEB], rollout={}, retry="  "))
    assert blank.retry_image is None


def test_the_quarantine_is_the_triggers_for_every_target_kind() -> None:
    # Nothing rolls out for a CronJob, but an image that failed on the trigger's Deployment
    # is not handed to its CronJob either; another image is.
    cron = {"kind": "CronJob", "name": "web"}
    jobs = world(imagestream(), workload(TargetKind.CronJob, web=OLD))
    (held,) = plans(jobs, guarded([cron], rollout={}, quarantine=[BAD])).values()
    assert held.reason is Reason.Quarantined
    (job,) = plans(
        jobs, guarded([cron], rollout={}, quarantine=[Quarantine(OTHER, SINCE)])
    ).values()
    assert job.action is Action.Update
