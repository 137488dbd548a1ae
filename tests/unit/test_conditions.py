"""An ImageTrigger's status: conditions, history, and no write loop."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from imagestream_trigger.api import Reason
from imagestream_trigger.report.conditions import (
    HISTORY_LIMIT,
    STALLED,
    TargetResult,
    short_digest,
    summarize,
    trigger_status,
)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
OLD = f"quay.io/acme/app@{A}"
NEW = f"quay.io/acme/app@{B}"
T0 = "2025-01-10T10:00:00Z"
T1 = "2025-01-10T10:16:00Z"
T2 = "2025-01-10T10:30:00Z"


def result(
    reason: Reason,
    name: str = "web",
    *,
    kind: str = "Deployment",
    message: str = "",
    changed: bool = False,
    image: str = "",
) -> TargetResult:
    return TargetResult(
        kind, name, reason, message or f"{reason} message", image=image, changed=changed
    )


APPLIED = result(Reason.Applied, message=f"set web to {NEW}", image=NEW, changed=True)
UNCHANGED = result(Reason.Unchanged, message=f"web already runs {NEW}", image=NEW)


def status(
    *,
    previous: dict[str, Any] | None = None,
    generation: int = 1,
    now: str = T1,
    blocked: Reason | None = None,
    blocked_message: str = "",
    image: str = NEW,
    results: Sequence[TargetResult] = (),
    suspended: bool = False,
) -> dict[str, Any]:
    return trigger_status(
        previous=previous or {},
        generation=generation,
        now=now,
        blocked=blocked,
        blocked_message=blocked_message,
        image=image,
        results=results,
        suspended=suspended,
    )


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == kind), None)


def ready(status: dict[str, Any]) -> dict[str, Any]:
    found = condition(status, "Ready")
    assert found is not None
    return found


def from_api(status: dict[str, Any]) -> dict[str, Any]:
    """What the next pass reads back: plain JSON."""
    loaded: dict[str, Any] = json.loads(json.dumps(status))
    return loaded


# -- summarize ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocked", "results", "suspended", "expected"),
    [
        pytest.param(
            None,
            [APPLIED, result(Reason.Unchanged, "api")],
            False,
            (True, Reason.Applied, "2 target(s) follow the source"),
            id="applied-and-unchanged",
        ),
        pytest.param(
            None,
            [UNCHANGED],
            False,
            (True, Reason.Applied, "1 target(s) follow the source"),
            id="unchanged-only",
        ),
        pytest.param(
            Reason.SourceNotFound,
            [],
            False,
            (False, Reason.SourceNotFound, "blocked message"),
            id="blocked",
        ),
        pytest.param(
            Reason.InvalidSpec,
            [],
            True,
            (False, Reason.InvalidSpec, "blocked message"),
            id="blocked-wins-over-suspended",
        ),
        pytest.param(
            None,
            [APPLIED, result(Reason.ContainerNotFound, "db", message='container "x" not found')],
            False,
            (False, Reason.ContainerNotFound, 'Deployment/db: container "x" not found'),
            id="one-failing",
        ),
        pytest.param(
            None,
            [
                result(Reason.TargetNotFound, "a", message="gone"),
                APPLIED,
                result(Reason.Failed, "b"),
                result(Reason.Forbidden, "c"),
            ],
            False,
            (False, Reason.TargetNotFound, "Deployment/a: gone (and 2 more targets failing)"),
            id="first-failing-wins",
        ),
        pytest.param(
            None,
            [result(Reason.DryRun, "web"), result(Reason.Unchanged, "api")],
            True,
            (
                False,
                Reason.Suspended,
                "spec.suspend is true: nothing is written; would update Deployment/web",
            ),
            id="suspended-with-pending",
        ),
        pytest.param(
            None,
            [UNCHANGED],
            True,
            (False, Reason.Suspended, "spec.suspend is true: nothing is written"),
            id="suspended-nothing-pending",
        ),
        pytest.param(
            None,
            [result(Reason.DryRun, "web"), UNCHANGED, result(Reason.DryRun, "b", kind="CronJob")],
            False,
            (True, Reason.DryRun, "dry run: would update Deployment/web, CronJob/b"),
            id="dry-run",
        ),
    ],
)
def test_summarize(
    blocked: Reason | None,
    results: list[TargetResult],
    suspended: bool,
    expected: tuple[bool, Reason, str],
) -> None:
    assert summarize(blocked, "blocked message", results, suspended=suspended) == expected


# -- conditions ---------------------------------------------------------------------------------


def test_ready_true_when_applied() -> None:
    got = status(results=[APPLIED], generation=4)
    assert got["observedGeneration"] == 4
    assert got["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Applied",
            "message": "1 target(s) follow the source",
            "observedGeneration": 4,
            "lastTransitionTime": T1,
        }
    ]


@pytest.mark.parametrize(
    ("blocked", "results", "reason"),
    [
        pytest.param(Reason.InvalidSpec, [], Reason.InvalidSpec, id="invalid-spec"),
        pytest.param(Reason.SourceNotFound, [], Reason.SourceNotFound, id="source-not-found"),
        pytest.param(
            Reason.CrossNamespaceDenied, [], Reason.CrossNamespaceDenied, id="cross-namespace"
        ),
        pytest.param(Reason.TagNotResolved, [], Reason.TagNotResolved, id="tag-not-resolved"),
        pytest.param(
            None, [result(Reason.TargetNotFound)], Reason.TargetNotFound, id="target-not-found"
        ),
        pytest.param(
            None,
            [result(Reason.NoMatchingContainer)],
            Reason.NoMatchingContainer,
            id="no-matching-container",
        ),
        pytest.param(
            None,
            [result(Reason.ContainerNotFound)],
            Reason.ContainerNotFound,
            id="container-not-found",
        ),
        pytest.param(None, [result(Reason.Forbidden)], Reason.Forbidden, id="forbidden"),
        pytest.param(None, [result(Reason.Failed)], Reason.Failed, id="failed"),
    ],
)
def test_ready_false_and_stalled_only_when_a_person_must_act(
    blocked: Reason | None, results: list[TargetResult], reason: Reason
) -> None:
    got = status(blocked=blocked, blocked_message="blocked message", results=results)
    assert ready(got)["status"] == "False"
    assert ready(got)["reason"] == reason
    stalled = condition(got, "Stalled")
    if reason in {
        Reason.InvalidSpec,
        Reason.CrossNamespaceDenied,
        Reason.NoMatchingContainer,
        Reason.ContainerNotFound,
        Reason.Forbidden,
    }:
        assert stalled is not None
        assert stalled["status"] == "True"
        assert stalled["reason"] == reason
        assert stalled["message"] == ready(got)["message"]
        assert stalled["lastTransitionTime"] == T1
    else:
        assert stalled is None
        assert len(got["conditions"]) == 1


def test_stalled_reasons_are_exactly_the_ones_retries_cannot_cure() -> None:
    assert {
        Reason.InvalidSpec,
        Reason.CrossNamespaceDenied,
        Reason.NoMatchingContainer,
        Reason.ContainerNotFound,
        Reason.Forbidden,
    } == STALLED


def test_blocked_message_is_the_ready_message() -> None:
    got = status(blocked=Reason.SourceNotFound, blocked_message="ImageStream demo/app is gone")
    assert ready(got)["message"] == "ImageStream demo/app is gone"


def test_suspended() -> None:
    got = status(results=[result(Reason.DryRun)], suspended=True)
    assert ready(got)["status"] == "False"
    assert ready(got)["reason"] == "Suspended"
    assert condition(got, "Stalled") is None


def test_dry_run() -> None:
    got = status(results=[result(Reason.DryRun, image=NEW)])
    assert ready(got)["status"] == "True"
    assert ready(got)["reason"] == "DryRun"
    assert ready(got)["message"] == "dry run: would update Deployment/web"
    assert "lastTriggerTime" not in got
    assert condition(got, "Stalled") is None


@pytest.mark.parametrize(
    ("before", "after", "since"),
    [
        pytest.param([APPLIED], [UNCHANGED], T0, id="true-stays-true"),
        pytest.param([APPLIED], [result(Reason.DryRun)], T0, id="true-stays-true-new-reason"),
        pytest.param(
            [result(Reason.TargetNotFound)],
            [result(Reason.ContainerNotFound)],
            T0,
            id="false-stays-false-new-reason",
        ),
        pytest.param([APPLIED], [result(Reason.Failed)], T1, id="true-to-false"),
        pytest.param([result(Reason.Failed)], [APPLIED], T1, id="false-to-true"),
    ],
)
def test_last_transition_time_moves_only_when_ready_status_changes(
    before: list[TargetResult], after: list[TargetResult], since: str
) -> None:
    first = status(now=T0, results=before)
    second = status(previous=from_api(first), now=T1, results=after)
    assert ready(first)["lastTransitionTime"] == T0
    assert ready(second)["lastTransitionTime"] == since


def test_stalled_transition_time_kept_while_stalled() -> None:
    first = status(now=T0, results=[result(Reason.ContainerNotFound)])
    second = status(previous=from_api(first), now=T1, results=[result(Reason.NoMatchingContainer)])
    stalled = condition(second, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "NoMatchingContainer"
    assert stalled["lastTransitionTime"] == T0


def test_stalled_disappears_when_fixed() -> None:
    first = status(now=T0, results=[result(Reason.ContainerNotFound)])
    second = status(previous=from_api(first), now=T1, results=[APPLIED])
    assert [c["type"] for c in second["conditions"]] == ["Ready"]


def test_observed_generation_follows_the_spec() -> None:
    first = status(generation=1, results=[UNCHANGED])
    second = status(previous=from_api(first), generation=2, results=[UNCHANGED])
    assert second["observedGeneration"] == 2
    assert ready(second)["observedGeneration"] == 2


# -- image, targets, lastTriggerTime ------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(NEW, "sha256:bbbbbbbbbbbb", id="digest-reference"),
        pytest.param(
            "quay.io/acme/app@sha256:0123456789abcdef0123", "sha256:0123456789ab", id="cut-to-12"
        ),
        pytest.param(B, "sha256:bbbbbbbbbbbb", id="bare-digest"),
        pytest.param(
            f"image-registry.openshift-image-registry.svc:5000/demo/app@{A}",
            "sha256:aaaaaaaaaaaa",
            id="registry-with-port",
        ),
        pytest.param("", "", id="empty"),
        pytest.param("quay.io/acme/app:v1", "", id="tag-reference-has-no-digest"),
        pytest.param("registry:5000/demo/app:v1", "", id="tag-reference-with-port"),
    ],
)
def test_short_digest(image: str, expected: str) -> None:
    assert short_digest(image) == expected


def test_status_image_and_short_digest() -> None:
    got = status(image=NEW, results=[UNCHANGED])
    assert got["image"] == NEW
    assert got["shortDigest"] == "sha256:bbbbbbbbbbbb"


def test_image_kept_when_blocked_without_one() -> None:
    first = status(image=NEW, results=[UNCHANGED])
    second = status(
        previous=from_api(first), image="", blocked=Reason.SourceNotFound, blocked_message="gone"
    )
    assert second["image"] == NEW
    assert second["shortDigest"] == "sha256:bbbbbbbbbbbb"
    # The last results stay: they are the record of builds already started.
    assert second["targets"] == first["targets"]


def test_no_image_ever() -> None:
    got = status(image="", blocked=Reason.TagNotResolved, blocked_message="waiting")
    assert "image" not in got
    assert "shortDigest" not in got
    assert "history" not in got


def test_targets_listed_as_status() -> None:
    got = status(
        results=[
            TargetResult(
                "Deployment",
                "web",
                Reason.Applied,
                "set web to x",
                image=NEW,
                containers=("web", "init:setup"),
                changed=True,
            ),
            TargetResult("BuildConfig", "web", Reason.Unchanged, "", image=NEW),
            TargetResult("Deployment", "ghost", Reason.TargetNotFound, "does not exist"),
        ]
    )
    assert got["targets"] == [
        {
            "kind": "Deployment",
            "name": "web",
            "result": "Applied",
            "message": "set web to x",
            "image": NEW,
            "containers": ["web", "init:setup"],
        },
        {"kind": "BuildConfig", "name": "web", "result": "Unchanged", "image": NEW},
        {
            "kind": "Deployment",
            "name": "ghost",
            "result": "TargetNotFound",
            "message": "does not exist",
        },
    ]


@pytest.mark.parametrize(
    ("results", "previous_time", "expected"),
    [
        pytest.param([APPLIED], None, T1, id="changed-first-time"),
        pytest.param([APPLIED], T0, T1, id="changed-again"),
        pytest.param([UNCHANGED], T0, T0, id="unchanged-keeps-previous"),
        pytest.param([UNCHANGED], None, None, id="never-changed"),
        pytest.param([result(Reason.DryRun)], None, None, id="dry-run-is-no-trigger"),
        pytest.param([result(Reason.Failed)], T0, T0, id="failure-keeps-previous"),
        pytest.param(
            [result(Reason.Applied, "bc", kind="BuildConfig", changed=True)],
            None,
            T1,
            id="build-started",
        ),
    ],
)
def test_last_trigger_time_set_only_when_a_target_changed(
    results: list[TargetResult], previous_time: str | None, expected: str | None
) -> None:
    previous: dict[str, Any] = {"image": NEW}
    if previous_time is not None:
        previous["lastTriggerTime"] = previous_time
    got = status(previous=previous, results=results)
    assert got.get("lastTriggerTime") == expected


# -- history ------------------------------------------------------------------------------------


def test_history_entry_for_a_new_image() -> None:
    got = status(results=[APPLIED, result(Reason.ContainerNotFound, "db")])
    assert got["history"] == [
        {"image": NEW, "time": T1, "updated": ["Deployment/web"], "failed": ["Deployment/db"]}
    ]


def test_history_entry_for_a_new_image_nobody_needed() -> None:
    previous = {"image": OLD, "history": [{"image": OLD, "time": T0, "updated": [], "failed": []}]}
    got = status(previous=previous, results=[UNCHANGED])
    assert got["history"][0] == {"image": NEW, "time": T1, "updated": [], "failed": []}
    assert len(got["history"]) == 2


def test_no_history_entry_when_blocked() -> None:
    got = status(previous={"image": OLD}, blocked=Reason.InvalidSpec, blocked_message="bad")
    assert "history" not in got


def test_history_merged_when_the_same_image_finishes_later() -> None:
    first = status(
        now=T0,
        results=[APPLIED, result(Reason.Forbidden, "db", message="no patch")],
    )
    second = status(
        previous=from_api(first),
        now=T1,
        results=[UNCHANGED, result(Reason.Applied, "db", image=NEW, changed=True)],
    )
    assert second["history"] == [
        {
            "image": NEW,
            "time": T0,  # when the transition started
            "updated": ["Deployment/db", "Deployment/web"],
            "failed": [],
        }
    ]
    assert second["lastTriggerTime"] == T1


def test_history_capped_newest_first() -> None:
    previous: dict[str, Any] = {}
    images = [f"quay.io/acme/app@sha256:{n:064x}" for n in range(HISTORY_LIMIT + 3)]
    for number, image in enumerate(images):
        previous = from_api(
            status(
                previous=previous,
                now=f"2025-01-10T10:{number:02d}:00Z",
                image=image,
                results=[result(Reason.Applied, image=image, changed=True)],
            )
        )
    history = previous["history"]
    assert HISTORY_LIMIT == 10
    assert len(history) == 10
    assert [entry["image"] for entry in history] == images[::-1][:10]
    assert history[0]["time"] == f"2025-01-10T10:{len(images) - 1:02d}:00Z"


# -- no status write loop -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "results"),
    [
        pytest.param({}, [APPLIED, result(Reason.ContainerNotFound, "db")], id="applied"),
        pytest.param({}, [UNCHANGED], id="unchanged"),
        pytest.param({}, [result(Reason.DryRun, image=NEW)], id="dry-run"),
        pytest.param({"suspended": True}, [result(Reason.DryRun, image=NEW)], id="suspended"),
        pytest.param(
            {"blocked": Reason.CrossNamespaceDenied, "blocked_message": "denied", "image": ""},
            [],
            id="blocked-stalled",
        ),
        pytest.param(
            {"blocked": Reason.TagNotResolved, "blocked_message": "waiting", "image": ""},
            [],
            id="blocked-waiting",
        ),
    ],
)
def test_second_pass_without_changes_gives_the_same_status(
    kwargs: dict[str, Any], results: list[TargetResult]
) -> None:
    history = [{"image": OLD, "time": T0, "updated": ["Deployment/web"], "failed": []}]
    start = {"image": OLD, "lastTriggerTime": T0, "history": history}
    first = status(previous=start, now=T1, results=results, **kwargs)
    quiet = [
        TargetResult(r.kind, r.name, r.result, r.message, r.image, r.containers, changed=False)
        for r in results
    ]
    second = status(previous=from_api(first), now=T2, results=quiet, **kwargs)
    assert second == first
    third = status(previous=from_api(second), now=T2, results=quiet, **kwargs)
    assert third == first


def test_stalled_when_a_later_target_needs_a_person() -> None:
    got = status(
        results=[
            result(Reason.TargetNotFound, "gone"),
            result(Reason.Forbidden, "api", message="cannot patch deployments"),
        ]
    )
    assert ready(got)["reason"] == "TargetNotFound"
    stalled = condition(got, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "Forbidden"
    assert stalled["message"] == "Deployment/api: cannot patch deployments"


def test_not_stalled_when_every_failure_can_heal() -> None:
    got = status(results=[result(Reason.TargetNotFound, "later"), result(Reason.Failed, "flaky")])
    assert ready(got)["status"] == "False"
    assert condition(got, "Stalled") is None
