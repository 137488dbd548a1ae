"""Health records of workloads and the judge of their rollouts (rollout.py), rule by rule.

Bodies carry the fields each kind's controller publishes, where the API server puts them.
A fuzz test at the end feeds arbitrary JSON to every reader and the judge: both are total.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imagestream_trigger.api import LAST_APPLIED_ANNOTATION, RolloutState, TargetKind
from imagestream_trigger.index import workload_info
from imagestream_trigger.kinds import KINDS, WORKLOAD_KINDS
from imagestream_trigger.rollout import (
    PROGRESS_DEADLINE_EXCEEDED,
    ROLLOUT_TIMEOUT,
    Health,
    daemonset_health,
    deployment_health,
    judge,
    statefulset_health,
)
from tests.fuzz.inputs import json_values

WRITTEN = datetime(2025, 1, 10, 12, 0, 3, tzinfo=UTC)
SOON = WRITTEN + timedelta(seconds=30)
TEN_MINUTES = timedelta(minutes=10)
LATE = WRITTEN + TEN_MINUTES
LATE_GAP = timedelta(hours=5)


def deployment(
    *,
    replicas: int | None = 3,
    generation: int = 5,
    observed: int = 5,
    updated: int = 3,
    available: int = 3,
    total: int = 3,
    conditions: list[dict[str, Any]] | None = None,
    paused: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    if paused:
        spec["paused"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "generation": generation},
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available,
            "conditions": conditions or [],
        },
    }


def statefulset(
    *,
    replicas: int = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    ready: int = 3,
    current: str = "db-7d9f",
    update: str = "db-7d9f",
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "demo", "generation": generation},
        "spec": {
            "replicas": replicas,
            "updateStrategy": strategy or {"type": "RollingUpdate"},
            "template": {"spec": {"containers": [{"name": "db", "image": "x"}]}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "currentRevision": current,
            "updateRevision": update,
        },
    }


def daemonset(
    *,
    generation: int = 4,
    observed: int = 4,
    desired: int = 3,
    updated: int = 3,
    available: int = 3,
    strategy: str = "RollingUpdate",
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "demo", "generation": generation},
        "spec": {
            "updateStrategy": {"type": strategy},
            "template": {"spec": {"containers": [{"name": "agent", "image": "x"}]}},
        },
        "status": {
            "observedGeneration": observed,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberReady": available,
        },
    }


def verdict_of(kind: str, body: dict[str, Any], now: datetime = SOON) -> Any:
    health = KINDS[TargetKind(kind)].health
    assert health is not None
    return judge(kind, health(body), WRITTEN, now, TEN_MINUTES)


PDE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "web-5d8f" has timed out progressing.',
}


# -- the kind table ------------------------------------------------------------------------


def test_the_kind_table_names_a_health_reader_for_each_kind_with_a_rollout() -> None:
    readers = {kind: KINDS[kind].health for kind in WORKLOAD_KINDS}
    assert readers == {
        TargetKind.Deployment: deployment_health,
        TargetKind.StatefulSet: statefulset_health,
        TargetKind.DaemonSet: daemonset_health,
        TargetKind.CronJob: None,  # a Job per schedule: nothing rolls out
    }
    assert KINDS[TargetKind.BuildConfig].health is None


def ours(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a last-applied record of ours (what makes its rollout worth keeping)."""
    body["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: '{"web":{"image":"x"}}'}
    return body


def test_the_index_keeps_the_health_record_and_it_is_no_news() -> None:
    info = workload_info(TargetKind.Deployment, ours(deployment(updated=1)), native=False)
    assert info.health == Health(
        generation=5, observed=5, desired=3, updated=1, available=3, total=3
    )
    other = workload_info(TargetKind.Deployment, ours(deployment(updated=3)), native=False)
    assert info == other  # a status change alone is not a change the planner acts on
    cron = {**ours(deployment()), "kind": "CronJob", "spec": {"jobTemplate": {}}}
    assert workload_info(TargetKind.CronJob, cron, native=False).health is None
    # A workload we never wrote: no rollout of ours to follow, nothing kept.
    assert workload_info(TargetKind.Deployment, deployment(), native=False).health is None


# -- Deployments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "words"),
    [
        (deployment(), RolloutState.Healthy, "3 of 3 replicas updated, 3 available"),
        (
            deployment(updated=2, available=1, total=4),
            RolloutState.Progressing,
            "2 of 3 replicas updated, 1 available, 2 old replicas still running; "
            "waiting up to 10m since 12:00:03Z",
        ),
        (
            deployment(updated=3, available=3, total=4),
            RolloutState.Progressing,
            "1 old replica still running",
        ),
        (
            deployment(updated=3, available=2, total=3),
            RolloutState.Progressing,
            "3 of 3 replicas updated, 2 available",
        ),
        (
            deployment(generation=6, observed=5),
            RolloutState.Progressing,
            "the Deployment controller has not seen generation 6 yet (it has seen 5)",
        ),
        (
            deployment(replicas=None, updated=1, available=1, total=1),
            RolloutState.Healthy,
            "1 of 1 replicas updated",
        ),
        (
            deployment(replicas=0, updated=0, available=0, total=2),
            RolloutState.Healthy,
            "no pods wanted",
        ),
        (
            deployment(updated=1, available=0, conditions=[PDE]),
            RolloutState.Failed,
            "the Deployment reports ProgressDeadlineExceeded",
        ),
        (
            deployment(updated=1, available=0, paused=True),
            RolloutState.Progressing,
            "paused (spec.paused)",
        ),
    ],
    ids=[
        "complete",
        "rolling",
        "old-pods-left",
        "not-all-available",
        "not-observed",
        "replicas-default-1",
        "scaled-to-zero",
        "progress-deadline-exceeded",
        "paused",
    ],
)
def test_deployment_rules(body: dict[str, Any], state: RolloutState, words: str) -> None:
    verdict = verdict_of("Deployment", body)
    assert verdict.state is state
    assert words in verdict.message


def test_a_progressing_rollout_is_rechecked_at_its_deadline_and_fails_after_it() -> None:
    rolling = deployment(updated=2, available=1, total=3)
    assert verdict_of("Deployment", rolling).recheck_at == LATE
    failed = verdict_of("Deployment", rolling, now=LATE)
    assert failed.state is RolloutState.Failed
    assert failed.reason == ROLLOUT_TIMEOUT
    assert failed.recheck_at is None
    assert failed.message == (
        "not healthy 10m after the image was written at 12:00:03Z: "
        "2 of 3 replicas updated, 1 available, 1 old replica still running"
    )


def test_not_observed_after_the_timeout_fails_too() -> None:
    verdict = verdict_of("Deployment", deployment(generation=6, observed=5), now=LATE)
    assert verdict.state is RolloutState.Failed
    assert "has not seen generation 6" in verdict.message


def test_progress_deadline_fails_at_once_but_only_for_the_observed_generation() -> None:
    failed = verdict_of("Deployment", deployment(updated=1, available=0, conditions=[PDE]))
    assert (failed.state, failed.reason) == (RolloutState.Failed, PROGRESS_DEADLINE_EXCEEDED)
    # The condition of the previous rollout, before the controller saw our write.
    stale = deployment(generation=6, observed=5, conditions=[PDE])
    assert verdict_of("Deployment", stale).state is RolloutState.Progressing
    other = {**PDE, "status": "True", "reason": "NewReplicaSetAvailable"}
    assert verdict_of("Deployment", deployment(conditions=[other])).state is RolloutState.Healthy


def test_a_paused_deployment_is_not_timed_out() -> None:
    verdict = verdict_of("Deployment", deployment(updated=0, paused=True), now=LATE + LATE_GAP)
    assert verdict.state is RolloutState.Progressing
    assert verdict.recheck_at is None


def progressing(status: str, reason: str, since: datetime) -> dict[str, Any]:
    return {
        "type": "Progressing",
        "status": status,
        "reason": reason,
        "lastTransitionTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastUpdateTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_after_a_pause_the_timeout_counts_from_the_resumption() -> None:
    resumed = WRITTEN + timedelta(hours=2)
    # Resumed: the controller turns Progressing True again (ReplicaSetUpdated).
    body = deployment(
        updated=1, available=2, conditions=[progressing("True", "ReplicaSetUpdated", resumed)]
    )
    still = verdict_of("Deployment", body, now=resumed + timedelta(minutes=5))
    assert still.state is RolloutState.Progressing
    assert still.recheck_at == resumed + TEN_MINUTES
    assert "since 14:00:03Z" in still.message
    late = verdict_of("Deployment", body, now=resumed + TEN_MINUTES)
    assert late.state is RolloutState.Failed
    assert "after the image was resumed at 14:00:03Z" in late.message


def test_an_ordinary_rollout_keeps_its_clock_from_the_write() -> None:
    # Progressing stays True through a rollout: its transition is older than the write.
    long_before = WRITTEN - timedelta(days=30)
    body = deployment(
        updated=1,
        available=2,
        conditions=[progressing("True", "ReplicaSetUpdated", long_before)],
    )
    assert verdict_of("Deployment", body).recheck_at == LATE
    assert verdict_of("Deployment", body, now=LATE).state is RolloutState.Failed
    paused = progressing("Unknown", "DeploymentPaused", WRITTEN + timedelta(minutes=1))
    assert deployment_health(deployment(conditions=[paused])).resumed_at == 0


def test_without_a_write_time_nothing_times_out() -> None:
    health = deployment_health(deployment(updated=1, available=0))
    verdict = judge("Deployment", health, None, LATE + LATE_GAP, TEN_MINUTES)
    assert verdict.state is RolloutState.Progressing
    assert verdict.recheck_at is None
    assert "waiting up to" not in verdict.message


# -- StatefulSets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "words"),
    [
        (statefulset(), RolloutState.Healthy, "3 of 3 replicas updated, 3 ready"),
        (
            statefulset(updated=1, ready=2, update="db-8a1c"),
            RolloutState.Progressing,
            "1 of 3 replicas updated, 2 ready",
        ),
        (
            statefulset(updated=3, ready=3, update="db-8a1c"),
            RolloutState.Progressing,
            "3 of 3 replicas updated",  # counts done, revisions not yet the same
        ),
        (
            statefulset(updated=3, ready=2, update="db-8a1c", current="db-8a1c"),
            RolloutState.Progressing,
            "2 ready",
        ),
        (
            statefulset(generation=3, observed=2),
            RolloutState.Progressing,
            "StatefulSet controller has not seen generation 3",
        ),
        (
            statefulset(
                updated=1,
                update="db-8a1c",
                strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            ),
            RolloutState.Healthy,
            "1 of 1 replicas updated, 3 ready",
        ),
        (
            statefulset(
                updated=0,
                update="db-8a1c",
                strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            ),
            RolloutState.Progressing,
            "0 of 1 replicas updated, 3 ready (partition 2: 2 kept on the old template)",
        ),
        (
            statefulset(updated=0, ready=3, update="db-8a1c", strategy={"type": "OnDelete"}),
            RolloutState.Healthy,
            "updateStrategy OnDelete",
        ),
        (
            statefulset(replicas=0, updated=0, ready=0, update="db-8a1c"),
            RolloutState.Healthy,
            "no pods wanted",
        ),
    ],
    ids=[
        "complete",
        "rolling",
        "revisions-differ",
        "not-all-ready",
        "not-observed",
        "partition-done",
        "partition-rolling",
        "on-delete",
        "scaled-to-zero",
    ],
)
def test_statefulset_rules(body: dict[str, Any], state: RolloutState, words: str) -> None:
    verdict = verdict_of("StatefulSet", body)
    assert verdict.state is state
    assert words in verdict.message


def test_statefulset_on_delete_is_judged_once_observed_and_never_timed_out() -> None:
    waiting = statefulset(generation=3, observed=2, strategy={"type": "OnDelete"})
    assert verdict_of("StatefulSet", waiting).state is RolloutState.Progressing
    seen = statefulset(updated=0, update="db-8a1c", strategy={"type": "OnDelete"})
    assert verdict_of("StatefulSet", seen, now=LATE + LATE_GAP).state is RolloutState.Healthy


def test_statefulset_rolling_times_out() -> None:
    verdict = verdict_of("StatefulSet", statefulset(updated=1, update="db-8a1c"), now=LATE)
    assert (verdict.state, verdict.reason) == (RolloutState.Failed, ROLLOUT_TIMEOUT)


# -- DaemonSets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "words"),
    [
        (daemonset(), RolloutState.Healthy, "3 of 3 nodes updated, 3 available"),
        (daemonset(updated=1, available=2), RolloutState.Progressing, "1 of 3 nodes updated"),
        (daemonset(updated=3, available=2), RolloutState.Progressing, "2 available"),
        (daemonset(generation=5), RolloutState.Progressing, "has not seen generation 5"),
        (daemonset(desired=0, updated=0, available=0), RolloutState.Healthy, "no pods wanted"),
        (daemonset(updated=0, strategy="OnDelete"), RolloutState.Healthy, "OnDelete"),
    ],
    ids=["complete", "rolling", "not-all-available", "not-observed", "no-nodes", "on-delete"],
)
def test_daemonset_rules(body: dict[str, Any], state: RolloutState, words: str) -> None:
    verdict = verdict_of("DaemonSet", body)
    assert verdict.state is state
    assert words in verdict.message


def test_daemonset_rolling_times_out() -> None:
    verdict = verdict_of("DaemonSet", daemonset(updated=1), now=LATE)
    assert (verdict.state, verdict.reason) == (RolloutState.Failed, ROLLOUT_TIMEOUT)


# -- odd input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"observedGeneration": True, "updatedReplicas": "3", "availableReplicas": None},
        {"conditions": "Progressing"},
        {"conditions": [None, 3, {"type": "Progressing", "status": False}]},
    ],
    ids=["empty", "wrong-types", "conditions-not-a-list", "odd-conditions"],
)
def test_odd_status_fields_read_as_zero_and_nothing_fails(status: dict[str, Any]) -> None:
    body = {**deployment(), "status": status}
    health = deployment_health(body)
    assert (health.observed, health.updated, health.available, health.failure) == (0, 0, 0, "")
    assert verdict_of("Deployment", body).state is RolloutState.Progressing


def test_a_negative_or_huge_partition_is_clamped() -> None:
    low = statefulset(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -4}})
    high = statefulset(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 99}})
    assert statefulset_health(low).partition == 0
    assert statefulset_health(high).partition == 3


CASES = 1_000


@pytest.mark.parametrize("seed", [20_251_129])
def test_readers_and_judge_are_total_on_any_json(seed: int) -> None:
    rng = random.Random(seed)
    values = list(json_values(rng, CASES))
    readers = [(k, KINDS[k].health) for k in WORKLOAD_KINDS if KINDS[k].health is not None]
    for number, value in enumerate(values):
        # Whole bodies, and bodies whose spec, status or metadata is the odd value.
        shaped = [
            value,
            {"metadata": value, "spec": value, "status": value},
            {**deployment(), "status": value},
            {**statefulset(), "spec": value},
        ]
        for body in shaped:
            if not isinstance(body, dict):
                body = {"value": body}
            for kind, reader in readers:
                assert reader is not None
                health = reader(body)
                for now in (SOON, LATE, LATE + LATE_GAP):
                    for written in (WRITTEN, None):
                        verdict = judge(kind, health, written, now, TEN_MINUTES)
                        where = f"case {number} (seed {seed}), {kind}"
                        assert verdict.state in RolloutState, where
                        assert verdict.message.strip(), where
                        assert "\n" not in verdict.message, where
                        if verdict.state is RolloutState.Failed:
                            assert verdict.reason, where
                        if verdict.recheck_at is not None:
                            assert verdict.recheck_at == WRITTEN + TEN_MINUTES, where
                            assert verdict.recheck_at > now, where
