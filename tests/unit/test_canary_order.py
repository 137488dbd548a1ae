"""Canary order (canary.py): which targets a pass may write, from the plan, the writes in
flight and the rollout states the status (or the gate) reports. Pure, then wired.

The plans are real: the operator's indexes filled from realistic bodies (builders), planned
by plan_trigger, so the canary order is tested on exactly what the reconciler hands it.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from imagestream_trigger import canary
from imagestream_trigger.api import Reason, RolloutState, TargetKind
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.index import Indexes
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.intake import Intake
from imagestream_trigger.models import parse_spec
from imagestream_trigger.plan import Action, TriggerPlan, plan_trigger
from imagestream_trigger.plugin.explain import Snapshot, explain, rows
from imagestream_trigger.report.conditions import TargetResult, summarize, trigger_status
from tests.unit.builders import (
    APP,
    NEW,
    NOW,
    OLD,
    buildconfig,
    image_trigger,
    imagestream,
    workload,
)
from tests.unit.test_rollout_wiring import Rig, complete, now, rolling

CANARY = "Deployment/web-canary"
A, B_, C = "Deployment/web-a", "Deployment/web-b", "Deployment/web-c"
OTHERS = (A, B_, C)
TIER: dict[str, Any] = {"kind": "Deployment", "selector": {"matchLabels": {"tier": "web"}}}


def deployment(name: str, *, runs: str = OLD, ours: bool = False, **status: Any) -> dict[str, Any]:
    """A Deployment of tier=web (web-canary also track=canary) running ``runs``; ``ours``:
    our last-applied record says we wrote NEW there (the gate follows it)."""
    labels = {"app": name, "tier": "web"} | ({"track": "canary"} if "canary" in name else {})
    record = None
    if ours:
        entry = {"image": NEW, "previous": OLD, "source": str(APP), "time": NOW}
        record = json.dumps({"web": entry})
    body = workload(name=name, web=runs, labels=labels, last_applied=record)
    body["metadata"]["generation"] = 2
    body["spec"]["replicas"] = 2
    if status:
        body["status"] = status
    return body


def trigger(
    rollout: dict[str, Any],
    targets: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = image_trigger(targets or [TIER], status=status)
    body["spec"]["rollout"] = rollout
    return body


def planned(*bodies: dict[str, Any]) -> TriggerPlan:
    indexes = Indexes()
    intake = Intake(indexes, Overlay(), native=True)
    for body in (imagestream(), *bodies):
        intake.load(body["kind"], body)
    (found,) = [t for t in indexes.triggers.in_namespace("demo")]
    assert found.spec is not None, found.error
    return plan_trigger(indexes, found)


def shop(**runs: dict[str, Any]) -> list[dict[str, Any]]:
    """web-canary, web-a, web-b, web-c: each as ``runs[name]`` says (default: OLD)."""
    return [deployment(n, **runs.get(n.replace("-", "_"), {})) for n in ("web-canary", *NAMES)]


NAMES = ("web-a", "web-b", "web-c")
BY_SELECTOR = {"canary": {"selector": {"matchLabels": {"track": "canary"}}}}
BY_NAME = {"canary": {"names": ["web-canary"]}}


def order(
    plan: TriggerPlan,
    states: dict[str, RolloutState] | None = None,
    written: set[str] | None = None,
) -> canary.Order:
    spec = plan.trigger.spec
    assert spec is not None
    assert spec.rollout is not None
    return canary.order(plan, spec.rollout, states=states or {}, written=written or set())


def held(result: canary.Order) -> dict[str, tuple[Reason | None, str]]:
    return {t.key: (t.reason, t.message) for t in result.plan.targets if t.key in result.held}


def writes(result: canary.Order) -> list[str]:
    return [t.key for t in result.plan.targets if t.action in (Action.Update, Action.Build)]


# -- the order ------------------------------------------------------------------------------


@pytest.mark.parametrize("chosen", [BY_SELECTOR, BY_NAME], ids=["selector", "names"])
def test_only_the_canary_is_written_first(chosen: dict[str, Any]) -> None:
    plan = planned(trigger({**chosen, "maxParallel": 2}), *shop())
    result = order(plan)
    assert writes(result) == [CANARY]
    waits = held(result)
    assert set(waits) == set(OTHERS)
    assert waits[A] == (
        Reason.WaitingForCanary,
        f"waits for the canary {CANARY} to be healthy on {NEW}",
    )
    assert result.original is plan


def test_the_others_wait_while_the_canary_rolls_out_then_go_in_batches() -> None:
    rollout = {**BY_NAME, "maxParallel": 2}
    canary_ours = {"web_canary": {"runs": NEW, "ours": True}}
    written = order(planned(trigger(rollout), *shop()), written={CANARY})
    assert set(held(written)) == set(OTHERS)  # written, not yet seen: still waiting

    rolling_out = planned(trigger(rollout), *shop(**canary_ours))
    progressing = order(rolling_out, {CANARY: RolloutState.Progressing})
    assert {r for r, _ in held(progressing).values()} == {Reason.WaitingForCanary}
    # Not followed yet by the gate (no state), but ours: not proven either.
    assert set(held(order(rolling_out))) == set(OTHERS)

    healthy = order(rolling_out, {CANARY: RolloutState.Healthy})
    assert writes(healthy) == [A, B_]
    assert held(healthy)[C][0] is Reason.WaitingForBatch


def test_at_most_max_parallel_others_are_in_flight_and_each_healthy_one_frees_a_slot() -> None:
    runs = {
        "web_canary": {"runs": NEW, "ours": True},
        "web_a": {"runs": NEW, "ours": True},
    }
    plan = planned(trigger({**BY_SELECTOR, "maxParallel": 1}), *shop(**runs))
    states = {CANARY: RolloutState.Healthy, A: RolloutState.Progressing}
    busy = order(plan, states)
    assert writes(busy) == []
    assert held(busy)[B_] == (
        Reason.WaitingForBatch,
        f"waits for its turn (maxParallel 1): {A} is still rolling out {NEW}",
    )
    freed = order(plan, {**states, A: RolloutState.Healthy})
    assert writes(freed) == [B_]
    assert held(freed)[C][0] is Reason.WaitingForBatch
    # b written in this pass (in the overlay): c still waits for it.
    assert writes(order(plan, {**states, A: RolloutState.Healthy}, {B_})) == [B_]
    assert C in order(plan, {**states, A: RolloutState.Healthy}, {B_}).held


def test_max_parallel_without_a_canary_batches_from_the_start() -> None:
    plan = planned(trigger({"maxParallel": 2}), *shop())
    result = order(plan)
    assert writes(result) == [A, B_]  # the order of the targets (a selector's: by name)
    assert {r for r, _ in held(result).values()} == {Reason.WaitingForBatch}


def test_a_canary_without_max_parallel_releases_all_the_others_at_once() -> None:
    plan = planned(trigger(BY_NAME), *shop(web_canary={"runs": NEW, "ours": True, **complete()}))
    assert writes(order(plan, {CANARY: RolloutState.Healthy})) == list(OTHERS)


def test_cronjobs_and_buildconfigs_wait_for_the_canary_but_not_for_batches() -> None:
    targets = [
        TIER,
        {"kind": "CronJob", "name": "report"},
        {"kind": "BuildConfig", "name": "web"},
    ]
    bodies = [
        *shop(web_canary={"runs": NEW, "ours": True}),
        workload("CronJob", name="report"),
        buildconfig(),
    ]
    plan = planned(trigger({**BY_NAME, "maxParallel": 1}, targets), *bodies)
    waiting = held(order(plan))
    assert waiting["CronJob/report"][0] is Reason.WaitingForCanary
    assert waiting["BuildConfig/web"][0] is Reason.WaitingForCanary
    go = order(plan, {CANARY: RolloutState.Healthy})
    assert writes(go) == [A, "CronJob/report", "BuildConfig/web"]


def test_a_canary_set_by_someone_else_counts_as_proven() -> None:
    # It runs the image, but not as our write: there is no rollout of ours to wait for.
    plan = planned(trigger(BY_NAME), *shop(web_canary={"runs": NEW}))
    assert writes(order(plan)) == list(OTHERS)


def test_a_failed_canary_stops_the_rest() -> None:
    canary_ours = {"web_canary": {"runs": NEW, "ours": True}}
    plan = planned(trigger({**BY_NAME, "maxParallel": 3}), *shop(**canary_ours))
    for state in (RolloutState.Failed, RolloutState.Reverted, RolloutState.Progressing):
        assert set(order(plan, {CANARY: state}).held) == set(OTHERS), state
    # Once reverted the image is quarantined: the plan holds it back from every target.
    quarantine = [{"image": NEW, "since": NOW, "reason": "RolloutTimeout", "targets": [CANARY]}]
    reverted = planned(
        trigger({**BY_NAME, "maxParallel": 3}, status={"quarantine": quarantine}), *shop()
    )
    assert {t.reason for t in reverted.targets} == {Reason.Quarantined}
    result = order(reverted)
    assert result.held == frozenset()
    assert result.plan is reverted


def test_a_restart_resumes_the_order_from_the_status_and_the_cluster() -> None:
    ours = {"runs": NEW, "ours": True}
    status = {
        "targets": [
            {
                "kind": "Deployment",
                "name": "web-canary",
                "result": "Applied",
                "image": NEW,
                "rollout": "Healthy",
            },
            {
                "kind": "Deployment",
                "name": "web-a",
                "result": "Applied",
                "image": NEW,
                "rollout": "Healthy",
            },
            {
                "kind": "Deployment",
                "name": "web-b",
                "result": "Applied",
                "image": NEW,
                "rollout": "Progressing",
            },
            {"kind": "Deployment", "name": "web-c", "result": "WaitingForBatch"},
            # An older image's verdict says nothing of this one.
            {
                "kind": "Deployment",
                "name": "web-x",
                "result": "Applied",
                "image": OLD,
                "rollout": "Healthy",
            },
        ]
    }
    plan = planned(
        trigger({**BY_NAME, "maxParallel": 1}, status=status),
        *shop(web_canary=ours, web_a=ours, web_b=ours),
    )
    states = canary.rollout_states(status, NEW)
    assert states == {
        CANARY: RolloutState.Healthy,
        A: RolloutState.Healthy,
        B_: RolloutState.Progressing,
    }
    result = order(plan, states)
    assert writes(result) == []
    assert set(result.held) == {C}
    assert held(result)[C][1].startswith(f"waits for its turn (maxParallel 1): {B_} is")


def test_a_canary_that_is_not_among_the_targets_holds_everything_back() -> None:
    plan = planned(trigger({"canary": {"names": ["web-gone"]}}), *shop())
    result = order(plan)
    assert writes(result) == []
    reason, message = held(result)[CANARY]
    assert reason is Reason.CanaryNotFound
    assert message == (
        "waits for a canary, but no Deployment, StatefulSet or DaemonSet target is named "
        '"web-gone": nothing is written before a canary is healthy'
    )
    none = planned(trigger({"canary": {"selector": {"matchLabels": {"track": "x"}}}}), *shop())
    (reason, message), *_ = held(order(none)).values()
    assert reason is Reason.CanaryNotFound
    assert "matches the canary selector track=x" in message


def test_a_named_canary_that_does_not_exist_is_waited_for() -> None:
    targets = [{"kind": "Deployment", "name": "web-canary"}, TIER]
    plan = planned(trigger(BY_NAME, targets), *shop()[1:])
    result = order(plan)
    assert result.plan.targets[0].reason is Reason.TargetNotFound
    assert {r for r, _ in held(result).values()} == {Reason.WaitingForCanary}


def test_releases_says_when_a_pass_found_the_canary_healthy() -> None:
    plan = planned(trigger(BY_NAME), *shop(web_canary={"runs": NEW, "ours": True}))
    spec = plan.trigger.spec
    assert spec is not None
    assert spec.rollout is not None
    before = order(plan, {CANARY: RolloutState.Progressing})
    assert canary.releases(
        before, spec.rollout, states={CANARY: RolloutState.Healthy}, written=set()
    )
    assert not canary.releases(
        before, spec.rollout, states={CANARY: RolloutState.Progressing}, written=set()
    )
    assert not canary.releases(
        order(plan, {CANARY: RolloutState.Healthy}), spec.rollout, states={}, written=set()
    )


def test_odd_statuses_and_writes_never_break_the_order() -> None:
    rng = random.Random(11)
    junk: list[Any] = [None, 3, "x", [], {}, {"rollout": 5}, {"image": NEW, "rollout": "Nope"}]
    state_names = [*RolloutState.__members__, "", "healthy"]
    for _ in range(300):
        runs: dict[str, dict[str, Any]] = {
            n.replace("-", "_"): rng.choice(
                [{}, {"runs": NEW}, {"runs": NEW, "ours": True}, {"runs": OLD, "ours": True}]
            )
            for n in ("web-canary", *NAMES)
        }
        most = rng.choice([None, 1, 2, 3, 5])
        rollout: dict[str, Any] = {**rng.choice([BY_NAME, BY_SELECTOR, {}])}
        if most is not None or not rollout:
            rollout["maxParallel"] = most or 1
        entries: list[Any] = [
            {
                "kind": "Deployment",
                "name": rng.choice(["web-canary", *NAMES, "other"]),
                "result": "Applied",
                "image": rng.choice([NEW, OLD, 7]),
                "rollout": rng.choice(state_names),
            }
            for _ in range(rng.randrange(6))
        ] + rng.sample(junk, rng.randrange(3))
        status: dict[str, Any] = {"targets": entries if rng.random() < 0.9 else "junk"}
        plan = planned(trigger(rollout), *shop(**runs))
        states = canary.rollout_states(status, NEW)
        written = {k for k in (CANARY, *OTHERS) if rng.random() < 0.2}
        result = order(plan, states, written)
        spec = plan.trigger.spec
        assert spec is not None
        assert spec.rollout is not None
        canaries = {t.key for t in plan.targets if canary.is_canary(spec.rollout, t)}
        # Canaries are never held; only planned writes are.
        assert not canaries & result.held
        before = {t.key: t.action for t in plan.targets}
        assert all(before[k] in (Action.Update, Action.Build) for k in result.held)
        stages = {t.key: canary.stage(t, NEW, str(APP), states, written) for t in plan.targets}
        proven = all(stages[k] is canary.Stage.Done for k in canaries)
        released = [k for k in writes(result) if k not in canaries and k not in written]
        if canaries and not proven:
            assert released == []
        if spec.rollout.max_parallel is not None:
            flying = [
                k for k, s in stages.items() if k not in canaries and s is canary.Stage.InFlight
            ]
            assert len(released) <= max(spec.rollout.max_parallel - len(flying), 0)
            assert len(released) + len(flying) <= max(spec.rollout.max_parallel, len(flying))


# -- the spec ---------------------------------------------------------------------------------


def spec(rollout: dict[str, Any], targets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "source": {"imageStreamTag": "app:latest"},
        "targets": targets or [{"kind": "Deployment", "name": "web"}, TIER],
        "rollout": rollout,
    }


@pytest.mark.parametrize(
    "rollout",
    [
        {"canary": {"names": ["web"]}, "maxParallel": 1},
        {"canary": {"names": ["anything-a-selector-finds"]}},
        {"canary": {"selector": {"matchLabels": {"track": "canary"}}}},
        {"maxParallel": 50},
    ],
)
def test_valid_canary_specs(rollout: dict[str, Any]) -> None:
    parsed = parse_spec(spec(rollout)).rollout
    assert parsed is not None
    assert parsed.ordered


def test_a_rollout_without_canary_or_max_parallel_is_not_ordered() -> None:
    parsed = parse_spec(spec({})).rollout
    assert parsed is not None
    assert not parsed.ordered


@pytest.mark.parametrize(
    ("rollout", "targets", "message"),
    [
        (
            {"canary": {}},
            None,
            "spec.rollout.canary: exactly one of names or selector must be set",
        ),
        (
            {"canary": {"names": ["a"], "selector": {}}},
            None,
            "spec.rollout.canary: exactly one of names or selector must be set",
        ),
        ({"canary": {"names": []}}, None, "must list at least one canary name"),
        ({"canary": {"names": ["a", "a"]}}, None, 'lists "a" more than once'),
        ({"canary": {"names": ["Web"]}}, None, '"Web" is not a valid name'),
        ({"maxParallel": 0}, None, "spec.rollout.maxParallel: must be at least 1, not 0"),
        ({"maxParallel": "2"}, None, 'spec.rollout.maxParallel: must be a whole number, not "2"'),
        ({"maxParallel": True}, None, "spec.rollout.maxParallel: must be a whole number"),
        (
            {"canary": {"names": ["api"]}},
            [{"kind": "Deployment", "name": "web"}, {"kind": "CronJob", "name": "api"}],
            'spec: rollout.canary.names: "api" is not among the targets: a canary is a '
            "Deployment, StatefulSet or DaemonSet target",
        ),
    ],
    ids=[
        "neither",
        "both",
        "empty",
        "twice",
        "bad-name",
        "zero",
        "string",
        "bool",
        "not-a-target",
    ],
)
def test_invalid_canary_specs_are_explained(
    rollout: dict[str, Any], targets: list[dict[str, Any]] | None, message: str
) -> None:
    with pytest.raises(InvalidSpecError) as refused:
        parse_spec(spec(rollout, targets))
    assert message in str(refused.value)


# -- the status --------------------------------------------------------------------------------


def test_waiting_targets_make_ready_say_the_rollout_is_in_progress_not_failing() -> None:
    waiting = TargetResult(
        "Deployment",
        "web-a",
        Reason.WaitingForCanary,
        f"waits for the canary {CANARY} to be healthy on {NEW}",
    )
    others = [
        TargetResult("Deployment", "web-canary", Reason.Applied, f"runs {NEW}", image=NEW),
        waiting,
        TargetResult("Deployment", "web-b", Reason.WaitingForCanary, "m"),
    ]
    ready, reason, message = summarize(None, "", others, suspended=False)
    assert (ready, reason) == (False, Reason.WaitingForCanary)
    assert message == (
        f"rollout in progress: Deployment/web-a waits for the canary {CANARY} to be healthy "
        f"on {NEW} (and 1 more targets waiting)"
    )
    # A real failure still comes first.
    broken = TargetResult("Deployment", "web-c", Reason.Failed, "boom")
    assert summarize(None, "", [*others, broken], suspended=False)[1] is Reason.Failed
    status = trigger_status(
        previous={},
        generation=1,
        now=NOW,
        blocked=None,
        blocked_message="",
        image=NEW,
        results=others,
        suspended=False,
    )
    assert status["history"][0]["failed"] == []


# -- wired: the reconciler ---------------------------------------------------------------------


def deployment_patches(rig: Rig) -> list[str]:
    """The Deployments a rig's passes patched, by name, in order."""
    return [
        c.path.rpartition("/")[2]
        for c in rig.api.writes()
        if c.method == "PATCH" and "/deployments/" in c.path
    ]


def wired(rollout: dict[str, Any], *bodies: dict[str, Any]) -> Rig:
    body = image_trigger(
        [{"kind": "Deployment", "name": "web"}, {"kind": "Deployment", "name": "api"}]
    )
    body["spec"]["rollout"] = rollout
    return Rig().load(imagestream(), body, *bodies)


async def test_a_pass_writes_only_the_canary_and_reports_the_others_waiting() -> None:
    rig = wired(
        {"canary": {"names": ["web"]}},
        workload(name="web"),
        workload(name="api"),
    )
    result = await rig.run()
    assert result.retry is None
    patched = deployment_patches(rig)
    assert patched == ["web"]
    status = rig.status()
    by_name = {t["name"]: t for t in status["targets"]}
    assert by_name["web"]["rollout"] == "Progressing"
    assert by_name["api"]["result"] == "WaitingForCanary"
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForCanary")
    assert rig.posted("WaitingForCanary") == []  # in progress, no Warning


async def test_the_pass_that_finds_the_canary_healthy_comes_back_at_once_and_writes_on() -> None:
    entry = {"image": NEW, "previous": OLD, "source": str(APP), "time": now()}
    web = workload(name="web", web=NEW, last_applied=json.dumps({"web": entry}))
    web["metadata"]["generation"] = 2
    web["spec"]["replicas"] = 2
    web["status"] = rolling()
    previous = {
        "targets": [
            {
                "kind": "Deployment",
                "name": "web",
                "result": "Applied",
                "image": NEW,
                "rollout": "Progressing",
            },
            {"kind": "Deployment", "name": "api", "result": "WaitingForCanary"},
        ]
    }
    body = image_trigger(
        [{"kind": "Deployment", "name": "web"}, {"kind": "Deployment", "name": "api"}],
        status=previous,
    )
    body["spec"]["rollout"] = {"canary": {"names": ["web"]}}
    rig = Rig().load(imagestream(), body, web, workload(name="api"))
    still = await rig.run()
    assert still.after is not None
    assert still.after > 1
    assert deployment_patches(rig) == []

    rig.intake.event("Deployment", "MODIFIED", {**web, "status": complete()})
    found = await rig.run()
    assert found.after == 0.0  # the next pass writes the others, now
    assert deployment_patches(rig) == []
    assert {t["name"]: t.get("rollout") for t in rig.status()["targets"]}["web"] == "Healthy"
    await rig.run()
    patched = deployment_patches(rig)
    assert patched == ["api"]


async def test_a_dry_run_says_what_it_would_write_to_every_target() -> None:
    body = image_trigger(
        [{"kind": "Deployment", "name": "web"}, {"kind": "Deployment", "name": "api"}],
        dry_run=True,
    )
    body["spec"]["rollout"] = {"canary": {"names": ["web"]}, "maxParallel": 1}
    rig = Rig().load(imagestream(), body, workload(name="web"), workload(name="api"))
    await rig.run()
    assert {t["result"] for t in rig.status()["targets"]} == {"DryRun"}


# -- the kubectl plugin tells the same order ----------------------------------------------------


def test_the_plugin_says_which_targets_wait_for_the_canary() -> None:
    snapshot = Snapshot(Indexes())
    intake = Intake(snapshot.indexes, Overlay(), native=True)
    body = trigger({**BY_NAME, "maxParallel": 1})
    for each in (imagestream(), body, *shop()):
        intake.load(each["kind"], each)
    snapshot.raw_targets[("demo", "follow-app")] = body["spec"]["targets"]
    (canary_first,) = explain(snapshot, TargetKind.Deployment, "demo", "web-canary").followers
    assert canary_first.verdict == "Update"
    (waiting,) = explain(snapshot, TargetKind.Deployment, "demo", "web-a").followers
    assert (waiting.verdict, waiting.message) == (
        "WaitingForCanary",
        f"waits for the canary {CANARY} to be healthy on {NEW}",
    )
    (row,) = rows(snapshot)
    assert (row.up_to_date, row.pending, row.failed, row.status) == (0, 4, 0, "Pending")
