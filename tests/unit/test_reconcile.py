"""Reconcile one key, and the controller's workers around it.

Everything is real but the Api: the indexes fed through ``Intake``, the ``Writer`` and
its overlay, the ``Reporter``, an ``Events`` queue that is never started (its backlog
is what would be posted) and ``Metrics`` on a registry of their own. The Api is the
scripted ``builders.FakeApi``, so each test sees exactly which requests a pass sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from imagestream_trigger.act.client import MERGE_PATCH, Api
from imagestream_trigger.act.writer import Writer
from imagestream_trigger.api import Reason, TargetKind
from imagestream_trigger.frozen import FrozenJson
from imagestream_trigger.index import Indexes, trigger_info
from imagestream_trigger.intake import DELETED, IMAGETRIGGER, Intake, Key, Wake
from imagestream_trigger.models import MAX_TARGETS
from imagestream_trigger.plan import Action, plan_trigger
from imagestream_trigger.queue import WorkQueue
from imagestream_trigger.reconcile import DONE, GONE, Controller, Pass, Reconciler
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.reporter import Reporter
from imagestream_trigger.resolve import TagRef
from tests.unit.builders import (
    APP,
    NEW,
    NOW,
    OLD,
    OTHER,
    FakeApi,
    annotation,
    api_error,
    build,
    buildconfig,
    image_trigger,
    imagestream,
    workload,
)

WEB = Key("Deployment", "demo", "web")
FOLLOW = Key(IMAGETRIGGER, "demo", "follow-app")
DEPLOYMENTS = "/apis/apps/v1/namespaces/demo/deployments/web"
STATUS = "/apis/imagestream-trigger.dev/v1alpha1/namespaces/demo/imagetriggers/follow-app/status"
INSTANTIATE = "/apis/build.openshift.io/v1/namespaces/demo/buildconfigs/web/instantiate"
BUILDS = "/apis/build.openshift.io/v1/namespaces/demo/builds"
MOVED = frozenset({APP})
WEB_TARGET = {"kind": "Deployment", "name": "web"}
BC_TARGET = {"kind": "BuildConfig", "name": "web"}
TICK = 0.02


class Rig:
    def __init__(
        self,
        *,
        native: bool = True,
        write_annotations: bool = True,
        default_service_account: str = "",
    ) -> None:
        self.api = FakeApi()
        api = cast(Api, self.api)
        self.indexes = Indexes()
        self.writer = Writer(api, now=lambda: NOW, environ={})
        self.intake = Intake(self.indexes, self.writer.overlay, native=native)
        self.metrics = Metrics()
        self.events = Events(api)
        self.reporter = Reporter(api, self.events, self.metrics)
        self.reconciler = Reconciler(
            self.indexes,
            self.writer,
            self.reporter,
            write_annotations=write_annotations,
            default_service_account=default_service_account,
        )

    def load(self, *bodies: dict[str, Any]) -> Rig:
        for body in bodies:
            self.intake.load(body["kind"], body)
        return self

    async def run(self, key: Key, moved: frozenset[TagRef] = frozenset()) -> Pass:
        return await self.reconciler.reconcile(key, moved)

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(f"imagestream_trigger_{name}", labels)
        return 0.0 if value is None else value

    def statuses(self) -> list[dict[str, Any]]:
        """The bodies of every status write, in order."""
        return [c.body["status"] for c in self.api.to("/status", "PATCH")]

    def posted(self, reason: str | None = None) -> list[dict[str, Any]]:
        """The Events queued for posting (the senders are never started here)."""
        return [e for _, e in self.events._backlog if reason is None or e["reason"] == reason]


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def annotated(**kw: Any) -> dict[str, Any]:
    return workload(triggers=annotation("Deployment", ("app:latest", "web")), **kw)


# -- the OpenShift annotation ---------------------------------------------------------------


async def test_an_annotated_workload_whose_tag_moved_gets_one_patch() -> None:
    rig = Rig().load(imagestream(tags={"latest": OLD}), annotated())
    wakes = rig.intake.stream("MODIFIED", imagestream(tags={"latest": NEW}))
    assert wakes == [(WEB, MOVED)]
    assert await rig.run(WEB, MOVED) == DONE
    [patch] = rig.api.calls
    assert (patch.method, patch.path) == ("PATCH", DEPLOYMENTS)
    assert {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": NEW} in (
        patch.body
    )
    assert (
        rig.sample("target_updates_total", kind="Deployment", source="annotation", result="updated")
        == 1
    )
    [event] = rig.posted("ImageUpdated")
    assert event["type"] == "Normal"
    assert event["involvedObject"]["name"] == "web"
    # Reconciled again before the watch shows the write: the overlay says it is done.
    assert await rig.run(WEB, MOVED) == DONE
    assert len(rig.api.calls) == 1
    # The echo is dropped by intake, and leaves nothing in flight.
    assert rig.intake.workload(TargetKind.Deployment, "MODIFIED", annotated(web=NEW)) == []
    assert rig.writer.overlay.images == {}
    assert await rig.run(WEB, MOVED) == DONE
    assert len(rig.api.calls) == 1


async def test_an_annotated_workload_in_sync_counts_unchanged_only_when_its_tag_moved() -> None:
    rig = Rig().load(imagestream(), annotated(web=NEW))
    labels = {"kind": "Deployment", "source": "annotation", "result": "unchanged"}
    assert await rig.run(WEB) == DONE
    assert rig.sample("target_updates_total", **labels) == 0
    assert await rig.run(WEB, MOVED) == DONE
    assert rig.sample("target_updates_total", **labels) == 1
    assert rig.api.calls == []


async def test_observe_mode_writes_no_annotated_workload_and_counts_it_observed() -> None:
    rig = Rig(write_annotations=False).load(imagestream(tags={"latest": NEW}), annotated())
    labels = {"kind": "Deployment", "source": "annotation"}
    assert await rig.run(WEB) == DONE
    assert rig.sample("target_updates_total", **labels, result="observed") == 0
    assert await rig.run(WEB, MOVED) == DONE
    assert rig.api.calls == []
    assert rig.posted() == []
    assert rig.sample("target_updates_total", **labels, result="observed") == 1
    assert rig.sample("target_updates_total", **labels, result="updated") == 0


async def test_observe_mode_still_warns_of_annotation_problems() -> None:
    broken = workload(triggers=annotation("Deployment", ("app:latest", "nope")))
    rig = Rig(write_annotations=False).load(imagestream(), broken)
    assert await rig.run(WEB) == DONE
    assert rig.api.calls == []
    assert [e["type"] for e in rig.posted()] == ["Warning"]


async def test_observe_mode_still_writes_imagetrigger_targets() -> None:
    rig = Rig(write_annotations=False).load(
        imagestream(tags={"latest": NEW}),
        workload(),
        image_trigger(targets=[WEB_TARGET]),
    )
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert [c.path for c in rig.api.to(DEPLOYMENTS, "PATCH")] == [DEPLOYMENTS]


async def test_annotation_problems_are_warned_once() -> None:
    broken = workload(triggers=annotation("Deployment", ("app:latest", "nope")))
    rig = Rig().load(imagestream(), broken)
    assert await rig.run(WEB) == DONE
    assert await rig.run(WEB) == DONE
    [warning] = rig.posted("InvalidImageTrigger")
    assert warning["type"] == "Warning"
    assert "nope" in warning["message"]
    assert rig.api.calls == []
    labels = {"source": "annotation", "reason": "ContainerNotFound"}
    assert rig.sample("invalid_triggers_total", **labels) == 1


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        pytest.param(api_error(403, "forbidden"), "forbidden", id="forbidden"),
        pytest.param(
            api_error(422, "the request is invalid: test operation failed"),
            "conflict",
            id="conflict",
        ),
        pytest.param(api_error(503, "unavailable"), "failed", id="failed"),
    ],
)
async def test_a_failed_annotated_patch_comes_back(error: Exception, retry: str) -> None:
    rig = Rig().load(imagestream(), annotated())
    rig.api.on("PATCH", DEPLOYMENTS, error)
    assert await rig.run(WEB, MOVED) == Pass(retry=retry)
    assert rig.writer.overlay.images == {}


async def test_a_forbidden_annotated_patch_is_warned_once() -> None:
    rig = Rig().load(imagestream(), annotated())
    rig.api.on("PATCH", DEPLOYMENTS, api_error(403, "deployments is forbidden"))
    await rig.run(WEB, MOVED)
    await rig.run(WEB, MOVED)
    [warning] = rig.posted("Forbidden")
    assert "deployments is forbidden" in warning["message"]


async def test_a_missing_or_unannotated_workload_is_gone_and_forgotten() -> None:
    rig = Rig().load(
        imagestream(), workload(triggers=annotation("Deployment", ("app:latest", "x")))
    )
    assert await rig.run(WEB) == DONE
    assert rig.reporter.tracked() > 0
    # The annotation went: the key is done with, and so is what was kept for it.
    rig.intake.workload(TargetKind.Deployment, "MODIFIED", workload())
    assert await rig.run(WEB) == GONE
    assert rig.reporter.tracked() == 0
    rig.intake.workload(TargetKind.Deployment, DELETED, workload())
    assert await rig.run(WEB) == GONE
    assert await rig.run(Key("Deployment", "demo", "never")) == GONE


async def test_native_off_makes_every_workload_key_gone() -> None:
    rig = Rig(native=False).load(imagestream(), annotated())
    assert await rig.run(WEB, MOVED) == GONE
    assert rig.api.calls == []


# -- ImageTriggers: status -----------------------------------------------------------------


async def test_a_trigger_pass_writes_its_status_once() -> None:
    rig = Rig().load(imagestream(), workload(web=NEW), image_trigger([WEB_TARGET]))
    assert await rig.run(FOLLOW, MOVED) == DONE
    [call] = rig.api.calls
    assert (call.via, call.method, call.path, call.content_type) == (
        "with_retries",
        "PATCH",
        STATUS,
        MERGE_PATCH,
    )
    [status] = rig.statuses()
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Applied")
    assert condition(status, "Stalled") is None
    assert status["image"] == NEW
    assert status["targets"] == [
        {
            "kind": "Deployment",
            "name": "web",
            "result": "Applied",
            "message": f"runs {NEW}",
            "image": NEW,
        }
    ]
    assert "builds" not in status
    # The same pass again: the status it would write is the one written.
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert await rig.run(FOLLOW) == DONE
    assert len(rig.api.calls) == 1
    assert rig.posted("Ready") == []


async def test_a_trigger_pass_updates_its_targets_once() -> None:
    rig = Rig().load(imagestream(), workload(), image_trigger([WEB_TARGET]))
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert [(c.method, c.path) for c in rig.api.calls] == [
        ("PATCH", DEPLOYMENTS),
        ("PATCH", STATUS),
    ]
    [status] = rig.statuses()
    assert status["targets"][0]["result"] == "Applied"
    assert status["targets"][0]["containers"] == ["web"]
    assert status["history"][0]["updated"] == ["Deployment/web"]
    assert "lastTriggerTime" in status
    labels = {"kind": "Deployment", "source": "imagetrigger", "result": "updated"}
    assert rig.sample("target_updates_total", **labels) == 1
    [event] = [e for e in rig.posted("ImageUpdated") if e["involvedObject"]["kind"] == IMAGETRIGGER]
    assert event["message"] == f"Deployment/web now follows {NEW}"
    # The target is not written again while the write is in flight.
    await rig.run(FOLLOW, MOVED)
    assert len(rig.api.to(DEPLOYMENTS)) == 1


@pytest.mark.parametrize("kind", ["Deployment", "BuildConfig"])
async def test_the_pass_after_a_change_writes_no_status(kind: str) -> None:
    target = WEB_TARGET if kind == "Deployment" else BC_TARGET
    rig = Rig().load(imagestream(), workload(), buildconfig(), image_trigger([target]))
    rig.api.on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    await rig.run(FOLLOW, MOVED)
    written = len(rig.statuses())
    assert rig.api.to(DEPLOYMENTS if kind == "Deployment" else INSTANTIATE)
    await rig.run(FOLLOW)
    assert len(rig.statuses()) == written


async def test_the_status_written_last_is_kept_compact_and_read_afresh() -> None:
    rig = Rig().load(imagestream(), workload(), image_trigger([WEB_TARGET]))
    await rig.run(FOLLOW, MOVED)
    [written] = rig.statuses()
    kept = rig.reporter.statuses[("demo", "follow-app")]
    assert isinstance(kept, FrozenJson)
    first = rig.reporter.last_status("demo", "follow-app")
    assert first == written
    assert first is not None
    first["image"] = "changed by a reader"
    assert rig.reporter.last_status("demo", "follow-app") == written


async def test_a_failed_status_write_comes_back() -> None:
    rig = Rig().load(imagestream(), workload(web=NEW), image_trigger([WEB_TARGET]))
    rig.api.on("PATCH", "/status", api_error(503, "etcd is slow"), {})
    assert await rig.run(FOLLOW) == Pass(retry="status")
    assert rig.reporter.last_status("demo", "follow-app") is None
    assert await rig.run(FOLLOW) == DONE
    assert len(rig.statuses()) == 2


async def test_a_forbidden_target_is_reported_and_comes_back() -> None:
    rig = Rig().load(imagestream(), workload(), image_trigger([WEB_TARGET]))
    rig.api.on("PATCH", DEPLOYMENTS, api_error(403, "deployments.apps is forbidden"))
    assert await rig.run(FOLLOW, MOVED) == Pass(retry="forbidden")
    [status] = rig.statuses()
    assert status["targets"][0]["result"] == "Forbidden"
    ready, stalled = condition(status, "Ready"), condition(status, "Stalled")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
    assert stalled is not None
    assert (stalled["status"], stalled["reason"]) == ("True", "Forbidden")
    [warning] = rig.posted("Forbidden")
    assert warning["involvedObject"]["kind"] == IMAGETRIGGER
    labels = {"kind": "Deployment", "source": "imagetrigger", "result": "failed"}
    assert rig.sample("target_updates_total", **labels) == 1


async def test_a_conflicting_target_comes_back_without_a_status_write() -> None:
    rig = Rig().load(imagestream(), workload(), image_trigger([WEB_TARGET]))
    rig.api.on("PATCH", DEPLOYMENTS, api_error(422, "test operation failed"))
    assert await rig.run(FOLLOW, MOVED) == Pass(retry="conflict")
    assert rig.statuses() == []
    assert rig.reporter.last_status("demo", "follow-app") is None


async def test_a_missing_trigger_is_gone_and_forgotten() -> None:
    body = image_trigger([{"kind": "Deployment", "name": "ghost"}])
    rig = Rig().load(imagestream(), body)
    assert await rig.run(FOLLOW) == DONE
    assert rig.reporter.last_status("demo", "follow-app") is not None
    assert rig.posted("TargetNotFound") != []
    rig.intake.trigger(DELETED, body)
    assert await rig.run(FOLLOW) == GONE
    assert rig.reporter.tracked() == 0
    assert await rig.run(Key(IMAGETRIGGER, "demo", "never")) == GONE


async def test_a_blocked_trigger_warns_on_the_transition_only() -> None:
    rig = Rig().load(image_trigger([WEB_TARGET]), workload())
    assert await rig.run(FOLLOW) == DONE
    [status] = rig.statuses()
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "SourceNotFound")
    assert condition(status, "Stalled") is None  # a stream may yet appear
    assert len(rig.posted("SourceNotFound")) == 1
    assert await rig.run(FOLLOW) == DONE
    assert len(rig.posted("SourceNotFound")) == 1
    assert len(rig.statuses()) == 1
    # The stream appears: Ready again, with a Normal Event for the recovery.
    rig.intake.stream("ADDED", imagestream())
    assert await rig.run(FOLLOW, MOVED) == DONE
    ready = condition(rig.statuses()[-1], "Ready")
    assert ready is not None
    assert ready["status"] == "True"
    assert len(rig.posted("Ready")) == 1


# -- suspend and dry run ----------------------------------------------------------------------


async def test_a_suspended_trigger_writes_nothing_and_says_suspended() -> None:
    body = image_trigger([WEB_TARGET, BC_TARGET], suspend=True)
    rig = Rig().load(imagestream(), workload(), buildconfig(), body)
    assert await rig.run(FOLLOW, MOVED) == DONE
    # Only its own status: no patch, no intent, no build.
    assert [(c.method, c.path) for c in rig.api.calls] == [("PATCH", STATUS)]
    [status] = rig.statuses()
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "Suspended")
    assert ready["message"] == (
        "spec.suspend is true: nothing is written; would update Deployment/web, BuildConfig/web"
    )
    assert condition(status, "Stalled") is None
    assert [t["result"] for t in status["targets"]] == ["DryRun", "DryRun"]
    assert "builds" not in status
    # Suspended is said in the status, not shouted in a Warning Event.
    assert [e for e in rig.posted() if e["type"] == "Warning"] == []
    assert rig.sample("builds_total", result="dry_run") == 1


async def test_a_suspended_trigger_with_a_broken_target_is_not_stalled() -> None:
    # The rule (report/conditions.py trigger_status): while suspended, per-target problems
    # that need a person (ContainerNotFound, NoMatchingContainer, Forbidden) do not set
    # Stalled; Ready says Suspended.
    targets = [{**WEB_TARGET, "containers": ["nope"]}]
    rig = Rig().load(imagestream(), workload(), image_trigger(targets, suspend=True))
    await rig.run(FOLLOW)
    [status] = rig.statuses()
    ready = condition(status, "Ready")
    assert ready is not None
    assert ready["reason"] == "Suspended"
    assert status["targets"][0]["result"] == "ContainerNotFound"
    assert condition(status, "Stalled") is None


async def test_a_suspended_trigger_blocked_as_a_whole_is_stalled() -> None:
    # ... but a trigger blocked as a whole for a reason only a person can fix is Stalled,
    # suspended or not: the blocked reason wins over Suspended.
    body = image_trigger([WEB_TARGET], namespace="team-a", source_namespace="demo", suspend=True)
    rig = Rig().load(imagestream(), workload(namespace="team-a"), body)
    await rig.reconciler.reconcile(Key(IMAGETRIGGER, "team-a", "follow-app"), frozenset())
    [status] = rig.statuses()
    ready, stalled = condition(status, "Ready"), condition(status, "Stalled")
    assert ready is not None
    assert ready["reason"] == "CrossNamespaceDenied"
    assert stalled is not None
    assert stalled["reason"] == "CrossNamespaceDenied"


async def test_a_dry_run_trigger_is_ready_and_writes_only_its_status() -> None:
    body = image_trigger([WEB_TARGET, BC_TARGET], dry_run=True)
    rig = Rig().load(imagestream(), workload(), buildconfig(), body)
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert [(c.method, c.path) for c in rig.api.calls] == [("PATCH", STATUS)]
    [status] = rig.statuses()
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "DryRun")
    labels = {"kind": "Deployment", "source": "imagetrigger", "result": "dry_run"}
    assert rig.sample("target_updates_total", **labels) == 1


# -- spec limits ------------------------------------------------------------------------------


def targets(n: int) -> list[dict[str, Any]]:
    return [{"kind": "Deployment", "name": f"w{i}"} for i in range(n)]


NOT_A_NAME = "is not a valid name: use at most 63 lowercase letters"


@pytest.mark.parametrize(
    ("spec_targets", "problem"),
    [
        pytest.param(targets(MAX_TARGETS), None, id="50-targets"),
        pytest.param(
            targets(MAX_TARGETS + 1),
            "spec.targets: must list at most 50 targets, not 51",
            id="51-targets",
        ),
        pytest.param([{**WEB_TARGET, "containers": ["c" * 63]}], None, id="63-char-container"),
        pytest.param(
            [{**WEB_TARGET, "containers": ["c" * 64]}],
            f'spec.targets[0].containers[0]: "{"c" * 64}" {NOT_A_NAME}',
            id="64-char-container",
        ),
        pytest.param(
            [{**WEB_TARGET, "initContainers": ["i" * 64]}],
            f'spec.targets[0].initContainers[0]: "{"i" * 64}" {NOT_A_NAME}',
            id="64-char-init-container",
        ),
    ],
)
def test_spec_limits(spec_targets: list[dict[str, Any]], problem: str | None) -> None:
    assert MAX_TARGETS == 50
    indexes = Indexes()
    Intake(indexes, Rig().writer.overlay, native=True).load("ImageStream", imagestream())
    plan = plan_trigger(indexes, trigger_info(image_trigger(spec_targets)))
    if problem is None:
        assert plan.blocked is None
        assert len(plan.targets) == len(spec_targets)
        assert all(t.action is Action.Blocked for t in plan.targets)  # none exists
    else:
        assert plan.blocked is Reason.InvalidSpec
        assert plan.targets == ()
        assert plan.message.startswith(problem)


async def test_an_invalid_spec_is_stalled_and_counted_once() -> None:
    rig = Rig().load(imagestream(), image_trigger(targets(MAX_TARGETS + 1)))
    assert await rig.run(FOLLOW) == DONE
    assert await rig.run(FOLLOW) == DONE
    [status] = rig.statuses()
    ready, stalled = condition(status, "Ready"), condition(status, "Stalled")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "must list at most 50 targets, not 51" in ready["message"]
    assert stalled is not None
    assert stalled["reason"] == "InvalidSpec"
    assert len(rig.posted("InvalidSpec")) == 1
    assert rig.sample("invalid_triggers_total", source="imagetrigger", reason="InvalidSpec") == 1


# -- builds ---------------------------------------------------------------------------------


async def test_a_build_pass_records_the_intent_then_posts_then_the_outcome() -> None:
    rig = Rig().load(imagestream(), buildconfig(), image_trigger([BC_TARGET]))
    rig.api.on("POST", INSTANTIATE, {"kind": "Build", "metadata": {"name": "web-4"}})
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert [(c.method, c.path) for c in rig.api.calls] == [
        ("PATCH", STATUS),
        ("POST", INSTANTIATE),
        ("PATCH", STATUS),
    ]
    intent, final = rig.statuses()
    assert intent == {"builds": {"web": {"image": NEW, "requestedAt": NOW, "build": None}}}
    assert final["builds"] == {"web": {"image": NEW, "requestedAt": NOW, "build": "web-4"}}
    assert final["targets"] == [
        {
            "kind": "BuildConfig",
            "name": "web",
            "result": "Applied",
            "message": f"started Build web-4 for {NEW}",
            "image": NEW,
        }
    ]
    assert rig.api.to(INSTANTIATE)[0].via == "request"
    assert rig.sample("builds_total", result="started") == 1
    [event] = rig.posted("BuildStarted")
    assert event["involvedObject"]["kind"] == "BuildConfig"
    # In sync now, from the ledger alone: no intent, no build (and no status write:
    # test_the_pass_after_a_change_writes_no_status).
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert len(rig.api.to(INSTANTIATE)) == 1
    assert all("build" in s["builds"]["web"] for s in rig.statuses()[1:])
    # The next image is built once more.
    rig.intake.stream("MODIFIED", imagestream(tags={"latest": OTHER}))
    rig.api.on("POST", INSTANTIATE, {"metadata": {"name": "web-5"}})
    assert await rig.run(FOLLOW, MOVED) == DONE
    assert len(rig.api.to(INSTANTIATE)) == 2
    assert rig.statuses()[-1]["builds"]["web"]["image"] == OTHER


async def test_a_build_whose_fate_is_unknown_is_recovered_by_listing_builds() -> None:
    rig = Rig().load(imagestream(), buildconfig(), image_trigger([BC_TARGET]))
    rig.api.on("POST", INSTANTIATE, api_error(None, "connection reset"))
    assert await rig.run(FOLLOW, MOVED) == Pass(retry="build_unknown")
    assert len(rig.api.to(INSTANTIATE)) == 1
    # The intent stays in the status, without a build.
    assert rig.statuses()[-1]["builds"] == {"web": {"image": NEW, "requestedAt": NOW}}
    assert rig.statuses()[-1]["targets"][0]["result"] == "Failed"
    # The next pass asks the cluster first: the Build exists, nothing is sent.
    rig.api.on("GET", BUILDS, {"items": [build("web-4", NEW)], "metadata": {}})
    assert await rig.run(FOLLOW) == DONE
    assert len(rig.api.to(INSTANTIATE)) == 1
    [listing] = rig.api.to(BUILDS, "GET")
    assert listing.params is not None
    assert listing.params["labelSelector"] == "openshift.io/build-config.name=web"
    assert rig.statuses()[-1]["builds"] == {
        "web": {"image": NEW, "requestedAt": NOW, "build": "web-4"}
    }
    assert rig.statuses()[-1]["targets"][0]["result"] == "Applied"
    assert rig.sample("builds_total", result="already_built") == 1


async def test_a_recovery_that_finds_no_build_sends_it_once() -> None:
    status = {"builds": {"web": {"image": NEW, "requestedAt": "2025-01-10T10:16:00Z"}}}
    rig = Rig().load(imagestream(), buildconfig(), image_trigger([BC_TARGET], status=status))
    rig.api.on("GET", BUILDS, {"items": [build("web-3", OLD)]})
    rig.api.on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    assert await rig.run(FOLLOW) == DONE
    assert [(c.method, c.path) for c in rig.api.calls] == [
        ("GET", BUILDS),
        ("PATCH", STATUS),
        ("POST", INSTANTIATE),
        ("PATCH", STATUS),
    ]
    assert rig.statuses()[-1]["builds"]["web"]["build"] == "web-4"


async def test_a_failed_intent_sends_no_build_and_is_tried_again() -> None:
    rig = Rig().load(imagestream(), buildconfig(), image_trigger([BC_TARGET]))
    rig.api.on("PATCH", "/status", api_error(503, "etcd is slow"), {})
    assert await rig.run(FOLLOW, MOVED) == Pass(retry="failed")
    assert rig.api.to(INSTANTIATE) == []
    final = rig.statuses()[-1]
    assert final["targets"][0]["result"] == "Failed"
    assert "builds" not in final  # no intent is kept for a request never sent
    rig.api.on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    assert await rig.run(FOLLOW) == DONE
    assert len(rig.api.to(INSTANTIATE)) == 1


async def test_a_refused_build_forgets_its_intent() -> None:
    rig = Rig().load(imagestream(), buildconfig(), image_trigger([BC_TARGET]))
    rig.api.on("POST", INSTANTIATE, api_error(403, "cannot create buildconfigs/instantiate"))
    assert await rig.run(FOLLOW, MOVED) == Pass(retry="forbidden")
    final = rig.statuses()[-1]
    assert final["targets"][0]["result"] == "Forbidden"
    # Nothing was created: the intent is cleared (null in the merge patch).
    assert "builds" in final
    assert final["builds"] is None
    last = rig.reporter.last_status("demo", "follow-app")
    assert last is not None
    assert "builds" not in last
    assert rig.sample("builds_total", result="failed") == 1


async def test_the_ledger_survives_a_blocked_pass() -> None:
    rig = Rig().load(imagestream(), buildconfig(), image_trigger([BC_TARGET]))
    rig.api.on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    await rig.run(FOLLOW, MOVED)
    rig.intake.stream(DELETED, imagestream())
    await rig.run(FOLLOW)
    blocked = rig.statuses()[-1]
    assert blocked["builds"] == {"web": {"image": NEW, "requestedAt": NOW, "build": "web-4"}}
    # The stream comes back with the same image: no second build.
    rig.intake.stream("ADDED", imagestream())
    await rig.run(FOLLOW, MOVED)
    assert len(rig.api.to(INSTANTIATE)) == 1


# -- tenancy: writes as the trigger's ServiceAccount ---------------------------------------

DEPLOYER = "system:serviceaccount:demo:deployer"
SHARED_STREAM = "/apis/image.openshift.io/v1/namespaces/shared/imagestreams/app"
SHARED = TagRef("shared", "app", "latest")


def acting(rig: Rig) -> list[tuple[str, str, str | None]]:
    """(method, path, impersonated user) of every request, in order."""
    return [(c.method, c.path, c.acting_as) for c in rig.api.calls]


async def test_a_trigger_with_a_service_account_writes_as_it_and_reports_as_itself() -> None:
    rig = Rig().load(
        imagestream(),
        workload(),
        buildconfig(),
        image_trigger([WEB_TARGET, BC_TARGET], service_account="deployer"),
    )
    rig.api.on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    assert await rig.run(FOLLOW, MOVED) == DONE
    # Target writes as the ServiceAccount; the status (the build intent too) as the operator.
    assert sorted(acting(rig)) == sorted(
        [
            ("PATCH", DEPLOYMENTS, DEPLOYER),
            ("PATCH", STATUS, None),
            ("POST", INSTANTIATE, DEPLOYER),
            ("PATCH", STATUS, None),
        ]
    )
    # A same-namespace source is read from the operator's own watch: no extra request.
    assert rig.api.to(SHARED_STREAM) == []


async def test_the_build_lookup_of_a_recovery_is_made_as_the_service_account() -> None:
    status = {"builds": {"web": {"image": NEW, "requestedAt": "2025-01-10T10:16:00Z"}}}
    body = image_trigger([BC_TARGET], service_account="deployer", status=status)
    rig = Rig().load(imagestream(), buildconfig(), body)
    rig.api.on("GET", BUILDS, {"items": [build("web-4", NEW)], "metadata": {}})
    assert await rig.run(FOLLOW) == DONE
    assert acting(rig) == [("GET", BUILDS, DEPLOYER), ("PATCH", STATUS, None)]


async def test_a_refused_build_lookup_keeps_the_intent_and_sends_nothing() -> None:
    status = {"builds": {"web": {"image": NEW, "requestedAt": "2025-01-10T10:16:00Z"}}}
    body = image_trigger([BC_TARGET], service_account="deployer", status=status)
    rig = Rig().load(imagestream(), buildconfig(), body)
    rig.api.on(
        "GET",
        BUILDS,
        api_error(
            403,
            f'builds.build.openshift.io is forbidden: User "{DEPLOYER}" cannot list resource '
            '"builds" in API group "build.openshift.io" in the namespace "demo"',
        ),
    )
    assert await rig.run(FOLLOW) == Pass(retry="forbidden")
    assert rig.api.to(INSTANTIATE) == []
    final = rig.statuses()[-1]
    # The earlier request's fate is still unknown: its intent stays, so it is never resent
    # blindly.
    assert final["builds"] == status["builds"]
    assert final["targets"][0]["result"] == "Forbidden"
    assert "may not list builds (API group build.openshift.io)" in final["targets"][0]["message"]


async def test_a_refusal_under_impersonation_names_the_account_and_heals_when_granted() -> None:
    rig = Rig().load(
        imagestream(), workload(), image_trigger([WEB_TARGET], service_account="deployer")
    )
    refusal = api_error(
        403,
        f'deployments.apps "web" is forbidden: User "{DEPLOYER}" cannot patch resource '
        '"deployments" in API group "apps" in the namespace "demo"',
    )
    rig.api.on("PATCH", DEPLOYMENTS, refusal, {})
    assert await rig.run(FOLLOW, MOVED) == Pass(retry="forbidden")
    status = rig.statuses()[-1]
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
    assert ready["message"].startswith(
        "Deployment/web: ServiceAccount demo/deployer may not patch deployments "
        "(API group apps) in namespace demo."
    )
    assert "check that the ServiceAccount exists" in ready["message"]
    [warning] = rig.posted("Forbidden")
    assert warning["type"] == "Warning"
    assert warning["involvedObject"]["kind"] == IMAGETRIGGER
    assert "ServiceAccount demo/deployer may not patch deployments" in warning["message"]
    # The right is granted: the retry writes, and Ready comes back.
    assert await rig.run(FOLLOW) == DONE
    assert [c.acting_as for c in rig.api.to(DEPLOYMENTS)] == [DEPLOYER, DEPLOYER]
    ready = condition(rig.statuses()[-1], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Applied")
    assert len(rig.posted("Ready")) == 1


async def test_the_default_service_account_locks_down_triggers_that_name_none() -> None:
    rig = Rig(default_service_account="locked").load(
        imagestream(),
        workload(),
        workload(name="api"),
        annotated(name="annotated"),
        image_trigger([WEB_TARGET]),
        image_trigger(
            [{"kind": "Deployment", "name": "api"}], name="own", service_account="deployer"
        ),
    )
    await rig.run(FOLLOW, MOVED)
    await rig.run(Key(IMAGETRIGGER, "demo", "own"), MOVED)
    await rig.run(Key("Deployment", "demo", "annotated"), MOVED)
    patches = {c.path.rpartition("/")[2]: c.acting_as for c in rig.api.to("", "PATCH")}
    assert patches == {
        "web": "system:serviceaccount:demo:locked",
        "api": DEPLOYER,
        # The annotation is OpenShift's, not an ImageTrigger: the operator's own rights.
        "annotated": None,
        "status": None,
    }


async def test_without_a_service_account_nothing_is_impersonated() -> None:
    rig = Rig().load(
        imagestream(namespace="shared", allowed="demo"),
        workload(),
        image_trigger([WEB_TARGET], source_namespace="shared"),
    )
    assert await rig.run(FOLLOW, frozenset({SHARED})) == DONE
    assert acting(rig) == [("PATCH", DEPLOYMENTS, None), ("PATCH", STATUS, None)]


async def test_a_cross_namespace_source_is_read_as_the_account_before_writing() -> None:
    rig = Rig().load(
        imagestream(namespace="shared", allowed="demo"),
        workload(),
        image_trigger([WEB_TARGET], source_namespace="shared", service_account="deployer"),
    )
    assert await rig.run(FOLLOW, frozenset({SHARED})) == DONE
    assert acting(rig) == [
        ("GET", SHARED_STREAM, DEPLOYER),
        ("PATCH", DEPLOYMENTS, DEPLOYER),
        ("PATCH", STATUS, None),
    ]
    # In sync (the watch brought the write back): no request at all.
    rig.intake.workload(TargetKind.Deployment, "MODIFIED", workload(web=NEW))
    calls = len(rig.api.calls)
    assert await rig.run(FOLLOW, frozenset({SHARED})) == DONE
    assert len(rig.api.calls) == calls


async def test_a_cross_namespace_source_the_account_cannot_read_is_refused() -> None:
    rig = Rig().load(
        imagestream(namespace="shared", allowed="demo"),
        workload(),
        buildconfig(),
        image_trigger(
            [WEB_TARGET, BC_TARGET], source_namespace="shared", service_account="deployer"
        ),
    )
    rig.api.on(
        "GET",
        SHARED_STREAM,
        api_error(
            403,
            f'imagestreams.image.openshift.io "app" is forbidden: User "{DEPLOYER}" cannot get '
            'resource "imagestreams" in API group "image.openshift.io" in the namespace "shared"',
        ),
    )
    assert await rig.run(FOLLOW, frozenset({SHARED})) == Pass(retry="forbidden")
    # One read for the pass, not one per target; nothing written, no build intent.
    assert acting(rig) == [("GET", SHARED_STREAM, DEPLOYER), ("PATCH", STATUS, None)]
    status = rig.statuses()[-1]
    assert {t["result"] for t in status["targets"]} == {"Forbidden"}
    assert all(
        "ServiceAccount demo/deployer may not get imagestreams (API group image.openshift.io) "
        "in namespace shared" in t["message"]
        for t in status["targets"]
    )
    assert "builds" not in status


@pytest.mark.parametrize("flag", ["dry_run", "suspend"])
async def test_a_pass_that_writes_nothing_reads_no_source(flag: str) -> None:
    rig = Rig().load(
        imagestream(namespace="shared", allowed="demo"),
        workload(),
        image_trigger(
            [WEB_TARGET], source_namespace="shared", service_account="deployer", **{flag: True}
        ),
    )
    await rig.run(FOLLOW, frozenset({SHARED}))
    assert rig.api.to(SHARED_STREAM) == []
    assert rig.api.to(DEPLOYMENTS) == []


# -- the controller ---------------------------------------------------------------------------


class Counting:
    """Wraps the reconciler's reconcile, counting passes per key."""

    def __init__(
        self,
        inner: Callable[[Key, frozenset[TagRef]], Awaitable[Pass]],
        fail: Exception | None = None,
    ) -> None:
        self.inner = inner
        self.fail = fail
        self.passes: list[tuple[Key, frozenset[TagRef]]] = []

    async def __call__(self, key: Key, moved: frozenset[TagRef]) -> Pass:
        self.passes.append((key, moved))
        if self.fail is not None and key.name == "boom":
            raise self.fail
        return await self.inner(key, moved)


def controller(rig: Rig, *, base_delay: float = 10.0, **kw: Any) -> tuple[Controller, Counting]:
    counting = Counting(rig.reconciler.reconcile, **kw)
    rig.reconciler.reconcile = counting  # type: ignore[method-assign]
    queue: WorkQueue[Key] = WorkQueue(base_delay=base_delay, jitter=0.0)
    ctrl = Controller(rig.reconciler, rig.metrics, workers=4, queue=queue)
    # Work around Controller.__init__'s "queue or WorkQueue()" (an empty queue is falsy,
    # see test_the_controller_uses_the_queue_it_is_given).
    ctrl.queue = queue
    return ctrl, counting


async def test_the_controller_uses_the_queue_it_is_given() -> None:
    queue: WorkQueue[Key] = WorkQueue(base_delay=TICK)
    ctrl = Controller(Rig().reconciler, Metrics(), workers=1, queue=queue)
    assert ctrl.queue is queue


async def drained(ctrl: Controller) -> None:
    for _ in range(500):
        await asyncio.sleep(0.001)
        if len(ctrl.queue) == 0 and ctrl.queue.processing == 0:
            return
    raise AssertionError("the workers never finished")


async def test_a_burst_of_wakes_for_one_key_is_one_reconcile() -> None:
    rig = Rig().load(imagestream(), workload(web=NEW), image_trigger([WEB_TARGET]))
    ctrl, counting = controller(rig)
    other = TagRef("demo", "app", "other")
    for n in range(20):
        wakes: list[Wake] = [(FOLLOW, frozenset({APP if n % 2 else other}))]
        ctrl.enqueue(wakes)
    assert rig.sample("queue_depth") == 1
    ctrl.start()
    try:
        await drained(ctrl)
    finally:
        await ctrl.stop()
    assert counting.passes == [(FOLLOW, frozenset({APP, other}))]
    assert rig.sample("reconcile_duration_seconds_count", kind="imagetrigger") == 1
    assert rig.sample("queue_depth") == 0
    assert ctrl.tracked() == 0


async def test_a_retry_goes_back_through_the_backoff() -> None:
    rig = Rig().load(imagestream(), workload(), image_trigger([WEB_TARGET]))
    rig.api.on("PATCH", DEPLOYMENTS, api_error(403, "forbidden"))
    ctrl, counting = controller(rig)
    ctrl.enqueue([(FOLLOW, MOVED)])
    ctrl.start()
    try:
        await drained(ctrl)
        assert rig.sample("retries_total", reason="forbidden") == 1
        assert ctrl.queue.failures(FOLLOW) == 1
        assert ctrl.queue.waiting == 1  # back in 10 s, not now
        assert len(counting.passes) == 1
    finally:
        await ctrl.stop()


async def test_a_retried_key_runs_again_and_a_success_forgets_its_failures() -> None:
    rig = Rig().load(imagestream(), workload(), image_trigger([WEB_TARGET]))
    rig.api.on("PATCH", DEPLOYMENTS, api_error(503, "unavailable"), {})
    ctrl, counting = controller(rig, base_delay=TICK)
    queue = ctrl.queue
    ctrl.enqueue([(FOLLOW, MOVED)])
    ctrl.start()
    try:
        for _ in range(100):
            await asyncio.sleep(TICK / 4)
            if len(counting.passes) == 2 and queue.processing == 0:
                break
    finally:
        await ctrl.stop()
    assert [moved for _, moved in counting.passes] == [MOVED, frozenset()]
    assert rig.sample("retries_total", reason="failed") == 1
    assert queue.failures(FOLLOW) == 0
    assert ctrl.tracked() == 0


async def test_a_gone_key_leaves_nothing_in_the_queue() -> None:
    rig = Rig()
    ctrl, counting = controller(rig)
    ctrl.queue.add_rate_limited(FOLLOW)  # an earlier failure, pending
    ctrl.enqueue([(FOLLOW, MOVED)])
    ctrl.start()
    try:
        await drained(ctrl)
    finally:
        await ctrl.stop()
    assert len(counting.passes) == 1
    assert ctrl.tracked() == 0


async def test_a_crashing_reconcile_is_retried_and_the_workers_go_on() -> None:
    rig = Rig().load(imagestream(), workload(web=NEW), image_trigger([WEB_TARGET]))
    ctrl, counting = controller(rig, fail=RuntimeError("a bug"))
    boom = Key(IMAGETRIGGER, "demo", "boom")
    ctrl.enqueue([(boom, frozenset()), (FOLLOW, frozenset())])
    ctrl.start()
    try:
        await drained(ctrl)
        assert rig.sample("retries_total", reason="error") == 1
        assert ctrl.queue.failures(boom) == 1
        assert {key for key, _ in counting.passes} == {boom, FOLLOW}
        assert len(rig.statuses()) == 1
    finally:
        await ctrl.stop()


async def test_stop_ends_idle_workers() -> None:
    rig = Rig()
    ctrl, _ = controller(rig)
    ctrl.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(ctrl.stop(), 1)
    ctrl.enqueue([(FOLLOW, MOVED)])  # after stop: ignored by the queue
    assert len(ctrl.queue) == 0


async def test_two_buildconfigs_in_one_pass_keep_both_records() -> None:
    selector = {"kind": "BuildConfig", "selector": {"matchLabels": {"team": "shop"}}}
    rig = Rig().load(
        imagestream(),
        buildconfig(name="api", labels={"team": "shop"}),
        buildconfig(name="web", labels={"team": "shop"}),
        image_trigger([selector]),
    )
    base = "/apis/build.openshift.io/v1/namespaces/demo/buildconfigs"
    rig.api.on("POST", f"{base}/api/instantiate", {"metadata": {"name": "api-1"}})
    rig.api.on("POST", f"{base}/web/instantiate", {"metadata": {"name": "web-1"}})
    assert await rig.run(FOLLOW, MOVED) == DONE
    *intents, final = rig.statuses()
    assert sorted(next(iter(i["builds"])) for i in intents) == ["api", "web"]
    assert final["builds"] == {
        "api": {"image": NEW, "requestedAt": NOW, "build": "api-1"},
        "web": {"image": NEW, "requestedAt": NOW, "build": "web-1"},
    }
    # Each intent went out before its own POST.
    order = [(c.method, c.path.rsplit("/", 2)[-2]) for c in rig.api.calls]
    for name in ("api", "web"):
        posted = order.index(("POST", name))
        assert any(
            c.method == "PATCH"
            and c.body["status"].get("builds", {}).get(name, {}).get("build", 1) is None
            for c in rig.api.calls[:posted]
        )
    assert await rig.run(FOLLOW) == DONE
    assert len(rig.api.to("/instantiate")) == 2


async def test_nothing_is_kept_for_objects_that_are_gone() -> None:
    rig = Rig()
    ctrl, _ = controller(rig)
    ctrl.start()
    try:
        ctrl.enqueue(rig.intake.stream("ADDED", imagestream(tags={"latest": OLD})))
        for n in range(10):
            broken = annotation("Deployment", ("app:latest", "web"), ("app:latest", "nope"))
            ctrl.enqueue(
                rig.intake.workload(TargetKind.Deployment, "ADDED", annotated(name=f"a{n}"))
            )
            ctrl.enqueue(
                rig.intake.workload(
                    TargetKind.Deployment, "ADDED", workload(name=f"b{n}", triggers=broken)
                )
            )
            ctrl.enqueue(
                rig.intake.workload(TargetKind.Deployment, "ADDED", workload(name=f"w{n}"))
            )
            ctrl.enqueue(
                rig.intake.trigger(
                    "ADDED", image_trigger([{"kind": "Deployment", "name": f"w{n}"}], name=f"t{n}")
                )
            )
        await drained(ctrl)
        ctrl.enqueue(rig.intake.stream("MODIFIED", imagestream(tags={"latest": NEW})))
        await drained(ctrl)
        assert rig.reporter.tracked() > 0
        assert len(rig.api.to("/status")) == 20  # one status per trigger and pass with news
        for n in range(10):
            ctrl.enqueue(rig.intake.trigger(DELETED, image_trigger([], name=f"t{n}")))
            for name in (f"a{n}", f"b{n}", f"w{n}"):
                ctrl.enqueue(
                    rig.intake.workload(TargetKind.Deployment, DELETED, workload(name=name))
                )
        ctrl.enqueue(rig.intake.stream(DELETED, imagestream()))
        await drained(ctrl)
    finally:
        await ctrl.stop()
    assert rig.reporter.tracked() == 0
    assert ctrl.tracked() == 0
    assert rig.writer.overlay.images == {}
    assert rig.indexes.sizes() == {
        "imagestreams": 0,
        "workloads": 0,
        "buildconfigs": 0,
        "imagetriggers": 0,
    }
