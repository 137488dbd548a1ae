"""spec.rollout through the operator's own parts: intake, reconcile, writer, reporter, queue.

As in test_reconcile: everything is real but the Api (``builders.FakeApi``), so each test
sees exactly which requests a pass sends. Rollouts do not progress here (no controller
manager): a workload's status is written into its body as its controller would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any, cast

from imagestream_trigger.act.client import JSON_PATCH, Api
from imagestream_trigger.act.writer import Writer
from imagestream_trigger.api import (
    IMAGETRIGGER_RESOURCE,
    RETRY_IMAGE_ANNOTATION,
)
from imagestream_trigger.gate import Quarantine, rfc3339
from imagestream_trigger.index import Indexes
from imagestream_trigger.intake import IMAGETRIGGER, Intake, Key
from imagestream_trigger.queue import WorkQueue
from imagestream_trigger.reconcile import Controller, Pass, Reconciler
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.reporter import Reporter
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.runner import Permission, optional_permissions, required_permissions
from imagestream_trigger.settings import Settings
from tests.unit.builders import (
    APP,
    NEW,
    NOW,
    OLD,
    OTHER,
    B,
    FakeApi,
    image_trigger,
    imagestream,
    workload,
)

FOLLOW = Key(IMAGETRIGGER, "demo", "follow-app")
DEPLOYMENTS = "/apis/apps/v1/namespaces/demo/deployments/web"
TRIGGER = "/apis/imagestream-trigger.dev/v1alpha1/namespaces/demo/imagetriggers/follow-app"
WEB_TARGET = {"kind": "Deployment", "name": "web"}
LONG_AGO = "2020-01-01T00:00:00Z"


class Rig:
    def __init__(self) -> None:
        self.api = FakeApi()
        api = cast(Api, self.api)
        self.indexes = Indexes()
        self.writer = Writer(api, now=lambda: NOW, environ={})
        self.intake = Intake(self.indexes, self.writer.overlay, native=True)
        self.metrics = Metrics()
        self.events = Events(api)
        self.reporter = Reporter(api, self.events, self.metrics)
        self.reconciler = Reconciler(self.indexes, self.writer, self.reporter)

    def load(self, *bodies: dict[str, Any]) -> Rig:
        for body in bodies:
            self.intake.load(body["kind"], body)
        return self

    async def run(self) -> Pass:
        return await self.reconciler.reconcile(FOLLOW, frozenset({APP}))

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(f"imagestream_trigger_{name}", labels)
        return 0.0 if value is None else value

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.api.to("/status", "PATCH")[-1].body["status"]
        return status

    def posted(self, reason: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events._backlog if e["reason"] == reason]


def guarded(
    *,
    rollout: dict[str, Any] | None = None,
    quarantine: list[Quarantine] | None = None,
    retry: str | None = None,
) -> dict[str, Any]:
    status = {"quarantine": [q.as_status() for q in quarantine]} if quarantine else None
    body = image_trigger([WEB_TARGET], status=status)
    body["spec"]["rollout"] = {} if rollout is None else rollout
    if retry is not None:
        body["metadata"]["annotations"] = {RETRY_IMAGE_ANNOTATION: retry}
    return body


def written(
    *, at: str, runs: str = NEW, status: dict[str, Any] | None = None, reverted: str = ""
) -> dict[str, Any]:
    """The Deployment "web" after our write of NEW over OLD at ``at``, with ``status``."""
    entry = {"image": NEW, "previous": OLD, "source": str(APP), "time": at}
    if reverted:
        entry["reverted"] = reverted
    body = workload(web=runs, last_applied=json.dumps({"web": entry}))
    body["metadata"]["generation"] = 2
    body["spec"]["replicas"] = 2
    body["status"] = status if status is not None else rolling()
    return body


def rolling() -> dict[str, Any]:
    return {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}


def complete() -> dict[str, Any]:
    return {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}


def now() -> str:
    return rfc3339(dt.datetime.now(dt.UTC))


# -- intake ---------------------------------------------------------------------------------


def test_a_status_change_of_a_workload_we_wrote_wakes_the_triggers_following_its_rollout() -> None:
    rig = Rig().load(imagestream(), written(at=now()), guarded())
    wakes = rig.intake.event("Deployment", "MODIFIED", written(at=now(), status=complete()))
    assert wakes == [(FOLLOW, frozenset())]
    # The same status again: no news.
    assert rig.intake.event("Deployment", "MODIFIED", written(at=now(), status=complete())) == []


def test_status_changes_are_still_no_news_to_anyone_else() -> None:
    plain = image_trigger([WEB_TARGET])  # no spec.rollout
    rig = Rig().load(imagestream(), written(at=now()), plain)
    assert rig.intake.event("Deployment", "MODIFIED", written(at=now(), status=complete())) == []
    ours_not = workload(web=NEW)  # never written by us
    ours_not["status"] = rolling()
    rig = Rig().load(imagestream(), ours_not, guarded())
    changed = {**ours_not, "status": complete()}
    assert rig.intake.event("Deployment", "MODIFIED", changed) == []


# -- reconcile --------------------------------------------------------------------------------


async def test_a_rollout_in_progress_is_reported_and_looked_at_again_by_its_deadline() -> None:
    rig = Rig().load(imagestream(), written(at=now()), guarded(rollout={"timeout": "2m"}))
    result = await rig.run()
    assert result.retry is None
    assert result.after is not None
    assert 0 < result.after <= 120  # the deadline: 2m after the write
    (target,) = rig.status()["targets"]
    assert target["rollout"] == "Progressing"
    assert target["rolloutMessage"].startswith("1 of 2 replicas updated, 1 available")
    assert "quarantine" not in rig.status()
    assert rig.api.to(DEPLOYMENTS) == []


async def test_a_healthy_rollout_is_told_and_counted_once() -> None:
    rig = Rig().load(imagestream(), written(at=now(), status=complete()), guarded())
    await rig.run()
    assert rig.status()["targets"][0]["rollout"] == "Healthy"
    assert [e["involvedObject"]["name"] for e in rig.posted("RolloutSucceeded")] == ["web"]
    assert rig.sample("rollouts_total", result="succeeded") == 1
    await rig.run()  # the status we wrote says Healthy: nothing more
    assert len(rig.posted("RolloutSucceeded")) == 1
    assert rig.sample("rollouts_total", result="succeeded") == 1


async def test_a_failed_rollout_is_reverted_quarantined_and_reported() -> None:
    rig = Rig().load(imagestream(), written(at=LONG_AGO), guarded())
    result = await rig.run()
    assert result.retry is None

    (revert,) = rig.api.to(DEPLOYMENTS, "PATCH")
    assert revert.content_type == JSON_PATCH
    assert revert.body[:3] == [
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "web"},
        {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": NEW},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": OLD},
    ]
    record = json.loads(revert.body[3]["value"])
    assert record["web"]["reverted"]

    status = rig.status()
    (entry,) = status["quarantine"]
    assert (entry["image"], entry["reason"], entry["targets"]) == (
        NEW,
        "RolloutTimeout",
        ["Deployment/web"],
    )
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "RolloutFailed")
    assert f"{RETRY_IMAGE_ANNOTATION}={B}" in ready["message"]
    assert status["targets"][0]["rollout"] == "Reverted"
    # Reverted in this very pass: it no longer runs the image, and says so at once.
    assert status["targets"][0]["result"] == "Quarantined"
    assert "image" not in status["targets"][0]
    assert [e["type"] for e in rig.posted("RolloutFailed")] == ["Warning", "Warning"]  # + Ready
    assert [e["involvedObject"]["kind"] for e in rig.posted("RolloutReverted")] == ["Deployment"]
    assert rig.sample("rollouts_total", result="failed") == 1
    assert rig.sample("rollouts_total", result="reverted") == 1
    # Nothing more is sent while the revert is in flight (the watch has not shown it).
    await rig.run()
    assert len(rig.api.to(DEPLOYMENTS, "PATCH")) == 1


async def test_after_the_revert_the_image_is_held_back_and_nothing_else_is_written() -> None:
    reverted = written(at=LONG_AGO, runs=OLD, status=complete(), reverted=NOW)
    bad = Quarantine(NEW, NOW, "RolloutTimeout", "m", ("Deployment/web",))
    rig = Rig().load(imagestream(), reverted, guarded(quarantine=[bad]))
    assert await rig.run() == Pass()
    assert rig.api.to(DEPLOYMENTS) == []
    status = rig.status()
    (target,) = status["targets"]
    assert (target["result"], target["rollout"]) == ("Quarantined", "Reverted")
    assert status["conditions"][0]["reason"] == "RolloutFailed"
    assert [q["image"] for q in status["quarantine"]] == [NEW]


async def test_retry_image_writes_the_image_again_and_removes_the_annotation() -> None:
    reverted = written(at=LONG_AGO, runs=OLD, status=complete(), reverted=NOW)
    bad = Quarantine(NEW, NOW, "RolloutTimeout", "m", ("Deployment/web",))
    rig = Rig().load(imagestream(), reverted, guarded(quarantine=[bad], retry=B[:19]))
    await rig.run()
    (write,) = rig.api.to(DEPLOYMENTS, "PATCH")
    assert write.body[2] == {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": NEW,
    }
    status = rig.status()
    assert status["quarantine"] is None  # the merge patch clears it
    assert status["conditions"][0]["reason"] == "Applied"
    assert status["targets"][0]["rollout"] == "Progressing"
    (removal,) = rig.api.to(TRIGGER, "PATCH")
    assert removal.content_type == JSON_PATCH
    key = "imagestream-trigger.dev~1retry-image"
    assert removal.body == [
        {"op": "test", "path": f"/metadata/annotations/{key}", "value": B[:19]},
        {"op": "remove", "path": f"/metadata/annotations/{key}"},
    ]


async def test_without_spec_rollout_nothing_is_followed() -> None:
    rig = Rig().load(imagestream(), written(at=LONG_AGO), image_trigger([WEB_TARGET]))
    assert await rig.run() == Pass()
    assert rig.api.to(DEPLOYMENTS) == []
    assert "rollout" not in rig.status()["targets"][0]
    assert rig.sample("rollouts_total", result="failed") == 0


async def test_a_write_over_an_unproven_rollout_keeps_the_earlier_previous() -> None:
    # NEW is being rolled out (the status says Progressing); the tag moves on to OTHER.
    moved = imagestream(tags={"latest": f"quay.io/acme/app@sha256:{'c' * 64}"})
    trigger = guarded()
    trigger["status"] = {
        "targets": [
            {
                "kind": "Deployment",
                "name": "web",
                "result": "Applied",
                "image": NEW,
                "rollout": "Progressing",
            }
        ]
    }
    rig = Rig().load(moved, written(at=now()), trigger)
    await rig.run()
    (write,) = rig.api.to(DEPLOYMENTS, "PATCH")
    record = json.loads(write.body[3]["value"])
    assert record["web"]["previous"] == OLD  # not NEW, which never proved healthy


# -- the queue --------------------------------------------------------------------------------


async def test_a_pass_with_a_deadline_comes_back_by_itself() -> None:
    rig = Rig()
    passes: list[Key] = []

    async def reconcile(key: Key, moved: frozenset[TagRef]) -> Pass:
        passes.append(key)
        return Pass(after=0.05) if len(passes) == 1 else Pass()

    rig.reconciler.reconcile = reconcile  # type: ignore[method-assign]
    queue: WorkQueue[Key] = WorkQueue(base_delay=10.0, jitter=0.0)
    ctrl = Controller(rig.reconciler, rig.metrics, workers=1, queue=queue)
    ctrl.queue = queue
    ctrl.enqueue([(FOLLOW, frozenset())])
    ctrl.start()
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(passes) == 2:
                break
    finally:
        await ctrl.stop()
    assert passes == [FOLLOW, FOLLOW]
    assert queue.failures(FOLLOW) == 0  # a deadline is not a failure


# -- permissions --------------------------------------------------------------------------------


def test_the_operator_asks_for_patch_on_imagetriggers() -> None:
    wanted = required_permissions(Settings())
    assert Permission("patch", IMAGETRIGGER_RESOURCE.group, "imagetriggers") in wanted


def test_what_only_some_triggers_need_is_checked_without_being_required() -> None:
    # Promotion and notifications are features of some ImageTriggers: pre-flight warns
    # about them (naming the feature) and starts anyway.
    optional = dict(optional_permissions(Settings()))
    required = required_permissions(Settings())
    for permission in (
        Permission("create", "image.openshift.io", "imagestreamtags"),
        Permission("update", "image.openshift.io", "imagestreamtags"),
        Permission("get", "", "secrets"),
    ):
        assert permission in optional
        assert permission not in required
    assert "promoteTo" in optional[Permission("create", "image.openshift.io", "imagestreamtags")]
    assert "notify" in optional[Permission("get", "", "secrets")]
    # A dry run promotes nothing, but still reads receivers' Secrets.
    assert "minImageAge" in optional[Permission("get", "image.openshift.io", "imagestreamimages")]
    # A dry run promotes nothing, but still reads receivers' Secrets and images' ages.
    assert [p for p, _ in optional_permissions(Settings(dry_run=True))] == [
        Permission("get", "", "secrets"),
        Permission("get", "image.openshift.io", "imagestreamimages"),
    ]


async def test_the_quarantine_outlives_a_pass_that_cannot_follow_and_goes_with_spec_rollout() -> (
    None
):
    bad = Quarantine(NEW, NOW, "RolloutTimeout", "m", ("Deployment/web",))
    blocked = guarded(quarantine=[bad])
    blocked["spec"]["source"]["imageStreamTag"] = "missing:latest"  # SourceNotFound
    rig = Rig().load(imagestream(), written(at=LONG_AGO), blocked)
    await rig.run()
    assert rig.status()["conditions"][0]["reason"] == "SourceNotFound"
    assert [q["image"] for q in rig.status()["quarantine"]] == [NEW]
    invalid = guarded(quarantine=[bad])
    invalid["spec"]["rollout"] = {"timeout": "1d"}  # InvalidSpec
    rig = Rig().load(imagestream(), written(at=LONG_AGO), invalid)
    await rig.run()
    assert rig.status()["conditions"][0]["reason"] == "InvalidSpec"
    assert [q["image"] for q in rig.status()["quarantine"]] == [NEW]
    dropped = image_trigger([WEB_TARGET], status={"quarantine": [bad.as_status()]})
    rig = Rig().load(imagestream(), written(at=LONG_AGO), dropped)
    await rig.run()
    assert rig.status().get("quarantine") is None


# -- a new image held back (timing.py) while the one before it rolls out ------------------------


async def test_a_failing_rollout_is_reverted_while_the_next_image_waits_for_approval() -> None:
    # NEW was written and is failing; the tag has moved on to OTHER, which waits for
    # approval. The gate must not wait for that approval to revert NEW.
    trigger = guarded(rollout={"approval": "Manual"})
    rig = Rig().load(imagestream(tags={"latest": OTHER}), written(at=LONG_AGO), trigger)
    await rig.run()
    (revert,) = rig.api.to(DEPLOYMENTS, "PATCH")
    assert revert.body[1:3] == [
        {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": NEW},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": OLD},
    ]
    status = rig.status()
    assert [q["image"] for q in status["quarantine"]] == [NEW]
    assert status["pending"]["image"] == OTHER  # still waiting, never written
    assert status["targets"][0]["rollout"] == "Reverted"


async def test_a_healthy_predecessor_is_judged_once_while_the_next_image_waits() -> None:
    trigger = guarded(rollout={"approval": "Manual"})
    rig = Rig().load(
        imagestream(tags={"latest": OTHER}), written(at=LONG_AGO, status=complete()), trigger
    )
    await rig.run()
    await rig.run()
    assert rig.api.to(DEPLOYMENTS, "PATCH") == []
    (target,) = rig.status()["targets"]
    assert (target["rollout"], target["image"], target["result"]) == (
        "Healthy",
        NEW,
        "PendingApproval",
    )
    # Healthy once: the second held pass reads the verdict back instead of judging again.
    assert len(rig.posted("RolloutSucceeded")) == 1
    assert "promoted" not in rig.status()
