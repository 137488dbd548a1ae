"""The writer: guarded workload patches, and builds started at most once.

The Api is a scripted fake (``builders.FakeApi``) that records every request; what is
tested is what the writer does with the answers: the outcome it reports, the overlay
it keeps, and the requests it does (and never does) send.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

import pytest

from imagestream_trigger.act.client import JSON_PATCH, Api
from imagestream_trigger.act.writer import (
    BUILD_CONFIG_LABEL,
    FAULT_ENV,
    Outcome,
    Writer,
    WriteResult,
    still_valid,
)
from imagestream_trigger.api import LAST_APPLIED_ANNOTATION, TargetKind
from imagestream_trigger.decide import ImageChange, build_request
from imagestream_trigger.errors import ApiError
from imagestream_trigger.index import (
    BuildConfigInfo,
    Indexes,
    WorkloadInfo,
    buildconfig_info,
    workload_info,
)
from imagestream_trigger.inflight import Written
from imagestream_trigger.intake import Intake
from imagestream_trigger.plan import plan_annotated
from tests.unit.builders import (
    APP,
    NEW,
    NOW,
    OLD,
    OTHER,
    TOOLS,
    Call,
    FakeApi,
    annotation,
    api_error,
    build,
    buildconfig,
    imagestream,
    workload,
)

DEPLOYMENTS = "/apis/apps/v1/namespaces/demo/deployments/web"
INSTANTIATE = "/apis/build.openshift.io/v1/namespaces/demo/buildconfigs/web/instantiate"
BUILDS = "/apis/build.openshift.io/v1/namespaces/demo/builds"


def writer(api: FakeApi, **kw: Any) -> Writer:
    kw.setdefault("environ", {})
    return Writer(cast(Api, api), now=lambda: NOW, **kw)


def info(kind: str = "Deployment", **kw: Any) -> WorkloadInfo:
    return workload_info(TargetKind(kind), workload(kind, **kw), native=True)


def web_change(target: WorkloadInfo, image: str = NEW) -> tuple[ImageChange, ...]:
    return (ImageChange(target.containers[0], image, APP),)


def bc() -> BuildConfigInfo:
    return buildconfig_info(buildconfig())


class Ledger:
    """Records intents into the Api's log, so the order of effects can be checked."""

    def __init__(self, api: FakeApi, error: ApiError | None = None) -> None:
        self.log = api.log
        self.error = error
        self.intents: list[tuple[str, str, str]] = []

    async def intend(self, bc: str, image: str, at: str) -> None:
        self.log.append(("intend", bc, image))
        if self.error is not None:
            raise self.error
        self.intents.append((bc, image, at))


# -- workloads: dry run ---------------------------------------------------------------------


async def test_a_dry_run_writer_writes_nothing() -> None:
    api = FakeApi()
    w = writer(api, dry_run=True)
    target = info()
    result = await w.patch_workload(target, web_change(target))
    assert result == WriteResult(Outcome.DryRun, image=NEW, containers=("web",))
    assert api.calls == []
    assert w.overlay.images == {}
    ledger = Ledger(api)
    assert (await w.build(bc(), APP, NEW, ledger=ledger, recover=False)).outcome is Outcome.DryRun
    assert (await w.build(bc(), APP, NEW, ledger=ledger, recover=True)).outcome is Outcome.DryRun
    assert api.calls == []
    assert ledger.intents == []


async def test_a_dry_run_call_writes_nothing() -> None:
    api = FakeApi()
    w = writer(api)
    target = info()
    result = await w.patch_workload(target, web_change(target), dry_run=True)
    assert result.outcome is Outcome.DryRun
    ledger = Ledger(api)
    built = await w.build(bc(), APP, NEW, ledger=ledger, recover=False, dry_run=True)
    assert built == WriteResult(Outcome.DryRun, image=NEW)
    assert api.calls == []
    assert api.log == []


async def test_a_dry_run_of_nothing_to_do_is_nothing_to_do() -> None:
    w = writer(FakeApi(), dry_run=True)
    target = info(web=NEW)
    assert (await w.patch_workload(target, web_change(target))).outcome is Outcome.NothingToDo


# -- workloads: the patch -------------------------------------------------------------------


async def test_a_patch_is_recorded_in_the_overlay_and_not_sent_twice() -> None:
    api = FakeApi()
    w = writer(api)
    target = info()
    result = await w.patch_workload(target, web_change(target))
    assert result == WriteResult(Outcome.Written, image=NEW, containers=("web",))
    [call] = api.calls
    assert (call.via, call.method, call.path, call.content_type) == (
        "with_retries",
        "PATCH",
        DEPLOYMENTS,
        JSON_PATCH,
    )
    assert w.overlay.written(target.id) == {"web": Written(OLD, NEW)}
    current = w.current(target)
    assert [c.image for c in current.containers] == [NEW, *[c.image for c in target.containers[1:]]]
    assert current.ref == target.ref
    # The same changes again (an event arrived before the echo): nothing is sent.
    again = await w.patch_workload(target, web_change(target))
    assert again == WriteResult(Outcome.NothingToDo)
    assert len(api.calls) == 1


async def test_current_is_the_workload_itself_without_writes_in_flight() -> None:
    w = writer(FakeApi())
    target = info()
    assert w.current(target) is target


@pytest.mark.parametrize(
    ("kind", "base"),
    [
        ("Deployment", "/spec/template/spec"),
        ("StatefulSet", "/spec/template/spec"),
        ("DaemonSet", "/spec/template/spec"),
        ("CronJob", "/spec/jobTemplate/spec/template/spec"),
    ],
)
async def test_the_json_patch_guards_name_and_image(kind: str, base: str) -> None:
    api = FakeApi()
    w = writer(api)
    target = info(kind)
    setup = next(c for c in target.containers if c.init)
    changes = (*web_change(target), ImageChange(setup, NEW, APP))
    assert (await w.patch_workload(target, changes)).containers == ("web", "init:setup")
    [call] = api.calls
    plural = {
        "Deployment": "apps/v1/namespaces/demo/deployments",
        "StatefulSet": "apps/v1/namespaces/demo/statefulsets",
        "DaemonSet": "apps/v1/namespaces/demo/daemonsets",
        "CronJob": "batch/v1/namespaces/demo/cronjobs",
    }[kind]
    assert call.path == f"/apis/{plural}/web"
    ops = call.body
    assert ops[:6] == [
        {"op": "test", "path": f"{base}/containers/0/name", "value": "web"},
        {"op": "test", "path": f"{base}/containers/0/image", "value": OLD},
        {"op": "replace", "path": f"{base}/containers/0/image", "value": NEW},
        {"op": "test", "path": f"{base}/initContainers/0/name", "value": "setup"},
        {"op": "test", "path": f"{base}/initContainers/0/image", "value": TOOLS},
        {"op": "replace", "path": f"{base}/initContainers/0/image", "value": NEW},
    ]
    # The record goes on metadata (a new map here: the workload had no annotations).
    [record] = ops[6:]
    assert record["op"] == "add"
    assert record["path"] == "/metadata/annotations"
    assert set(record["value"]) == {LAST_APPLIED_ANNOTATION}
    assert NOW in record["value"][LAST_APPLIED_ANNOTATION]
    # Every replace is guarded by a test of that container's name and current image.
    for n, op in enumerate(ops[:6]):
        if op["op"] == "replace":
            assert ops[n - 2]["path"].endswith("/name")
            assert ops[n - 1] == {"op": "test", "path": op["path"], "value": ops[n - 1]["value"]}


async def test_the_record_is_added_to_an_existing_annotations_map() -> None:
    api = FakeApi()
    w = writer(api)
    target = info(triggers=annotation("Deployment", ("app:latest", "web")))
    await w.patch_workload(target, web_change(target))
    last = api.calls[0].body[-1]
    assert last["op"] == "add"
    assert last["path"] == "/metadata/annotations/imagestream-trigger.dev~1last-applied"


async def test_changes_the_target_no_longer_matches_are_dropped() -> None:
    api = FakeApi()
    w = writer(api)
    planned = info()
    moved = info(web=OTHER)  # someone changed it since the plan
    assert await w.patch_workload(moved, web_change(planned)) == WriteResult(Outcome.NothingToDo)
    assert api.calls == []
    assert still_valid(web_change(planned), moved) == ()
    assert still_valid(web_change(planned), planned) == web_change(planned)
    assert still_valid(web_change(planned, OLD), planned) == ()


@pytest.mark.parametrize(
    ("error", "outcome", "transient"),
    [
        pytest.param(
            api_error(422, "the server rejected our request: test operation failed"),
            Outcome.Conflict,
            False,
            id="failed-test-op",
        ),
        pytest.param(
            api_error(403, "deployments is forbidden"), Outcome.Forbidden, False, id="403"
        ),
        pytest.param(api_error(503, "unavailable"), Outcome.Failed, True, id="503"),
        pytest.param(api_error(429, "slow down"), Outcome.Failed, True, id="429"),
        pytest.param(api_error(None), Outcome.Failed, True, id="connection-dropped"),
        pytest.param(api_error(404, "not found"), Outcome.Failed, False, id="404"),
        pytest.param(api_error(422, "spec.replicas: invalid"), Outcome.Failed, False, id="422"),
    ],
)
async def test_patch_errors_become_outcomes(
    error: ApiError, outcome: Outcome, transient: bool
) -> None:
    api = FakeApi().on("PATCH", DEPLOYMENTS, error)
    w = writer(api)
    target = info()
    result = await w.patch_workload(target, web_change(target))
    assert result.outcome is outcome
    assert result.transient is transient
    assert result.outcome.retry
    if outcome is Outcome.Forbidden:
        assert result.message == "deployments is forbidden"
    # Nothing was written: nothing is in flight.
    assert w.overlay.images == {}
    assert w.current(target) is target


async def test_writes_in_flight_are_bounded() -> None:
    release = asyncio.Event()
    in_flight: list[int] = [0, 0]  # now, most

    async def slow(call: Call) -> dict[str, Any]:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await release.wait()
        in_flight[0] -= 1
        return {}

    api = FakeApi().on("PATCH", "", slow)
    w = writer(api, max_concurrent=2)
    targets = [info(name=f"w{n}") for n in range(5)]
    work = asyncio.gather(*(w.patch_workload(t, web_change(t)) for t in targets))
    for _ in range(5):
        await asyncio.sleep(0)
    assert in_flight == [2, 2]
    release.set()
    results = await asyncio.wait_for(work, 1)
    assert {r.outcome for r in results} == {Outcome.Written}
    assert in_flight[1] == 2


async def test_an_echo_that_overtakes_the_patch_response_leaves_nothing_stale() -> None:
    indexes = Indexes()
    api = FakeApi()
    w = writer(api)
    intake = Intake(indexes, w.overlay, native=True)
    triggers = annotation("Deployment", ("app:latest", "web"))
    intake.load("ImageStream", imagestream())
    intake.load("Deployment", workload(triggers=triggers))

    def echo_first(call: Call) -> dict[str, Any]:
        # The watch brings our write back before the PATCH's own response.
        intake.workload(TargetKind.Deployment, "MODIFIED", workload(web=NEW, triggers=triggers))
        return {}

    api.on("PATCH", DEPLOYMENTS, echo_first)
    found = indexes.workload("Deployment", "demo", "web")
    assert found is not None
    plan = plan_annotated(indexes, w.current(found))
    assert (await w.patch_workload(found, plan.changes)).outcome is Outcome.Written
    # Someone rolls the image back: the key is woken, and must plan our image again.
    wakes = intake.workload(TargetKind.Deployment, "MODIFIED", workload(web=OLD, triggers=triggers))
    assert wakes
    rolled_back = indexes.workload("Deployment", "demo", "web")
    assert rolled_back is not None
    assert plan_annotated(indexes, w.current(rolled_back)).changes != ()


# -- builds ---------------------------------------------------------------------------------


async def test_a_build_records_the_intent_before_the_post_and_posts_once() -> None:
    api = FakeApi().on("POST", INSTANTIATE, {"kind": "Build", "metadata": {"name": "web-4"}})
    ledger = Ledger(api)
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=False)
    assert result == WriteResult(Outcome.Written, image=NEW, build="web-4")
    assert api.log == [("intend", "web", NEW), ("POST", INSTANTIATE)]
    assert ledger.intents == [("web", NEW, NOW)]
    [call] = api.calls
    assert call.via == "request"  # sent once, never through with_retries
    assert call.body == build_request("web", "demo", APP, NEW)
    assert call.body["triggeredBy"][0]["imageChangeBuild"]["imageID"] == NEW


async def test_a_build_without_a_name_in_the_answer() -> None:
    api = FakeApi().on("POST", INSTANTIATE, None)
    result = await writer(api).build(bc(), APP, NEW, ledger=Ledger(api), recover=False)
    assert result == WriteResult(Outcome.Written, image=NEW, build="")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(api_error(None), Outcome.Unknown, id="connection-dropped"),
        pytest.param(api_error(500, "etcd timeout"), Outcome.Unknown, id="500"),
        pytest.param(api_error(504, "gateway timeout"), Outcome.Unknown, id="504"),
        pytest.param(
            api_error(409, "build web: already instantiated a build for imageid " + NEW),
            Outcome.AlreadyBuilt,
            id="already-built",
        ),
        pytest.param(api_error(403, "forbidden"), Outcome.Forbidden, id="403"),
        pytest.param(api_error(404, "buildconfig gone"), Outcome.Failed, id="404"),
        pytest.param(api_error(422, "invalid request"), Outcome.Failed, id="422"),
    ],
)
async def test_instantiate_errors_become_outcomes(error: ApiError, outcome: Outcome) -> None:
    api = FakeApi().on("POST", INSTANTIATE, error)
    ledger = Ledger(api)
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=False)
    assert result.outcome is outcome
    assert result.image == NEW
    # Sent once, whatever came back: a POST is never retried here.
    assert [c.method for c in api.calls] == ["POST"]
    assert ledger.intents == [("web", NEW, NOW)]
    if outcome is Outcome.Unknown:
        assert "unknown" in result.message
        assert result.outcome.retry


async def test_a_failing_intent_sends_no_post() -> None:
    api = FakeApi()
    ledger = Ledger(api, error=api_error(503, "status write refused"))
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=False)
    assert result.outcome is Outcome.Failed
    assert result.transient is True
    assert result.message == "status write refused"
    assert api.calls == []


async def test_a_forbidden_intent_sends_no_post() -> None:
    api = FakeApi()
    ledger = Ledger(api, error=api_error(403, "cannot patch imagetriggers/status"))
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=False)
    assert result.outcome is Outcome.Forbidden
    assert api.calls == []


# -- builds: recovery -----------------------------------------------------------------------


async def test_recovery_finds_the_build_and_sends_nothing() -> None:
    page = {"items": [build("web-3", OLD), build("web-4", NEW)], "metadata": {}}
    api = FakeApi().on("GET", BUILDS, page)
    ledger = Ledger(api)
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=True)
    assert result == WriteResult(Outcome.AlreadyBuilt, image=NEW, build="web-4")
    [call] = api.calls
    assert (call.via, call.method, call.path) == ("with_retries", "GET", BUILDS)
    assert call.params is not None
    assert call.params["labelSelector"] == f"{BUILD_CONFIG_LABEL}=web"
    assert "continue" not in call.params
    assert ledger.intents == []


async def test_recovery_follows_continue_tokens() -> None:
    first = {"items": [build("web-1", OLD)], "metadata": {"continue": "page-2"}}
    second = {"items": [build("web-2", OTHER), build("web-3", NEW)], "metadata": {}}
    api = FakeApi().on("GET", BUILDS, first, second)
    result = await writer(api).build(bc(), APP, NEW, ledger=Ledger(api), recover=True)
    assert result.outcome is Outcome.AlreadyBuilt
    assert result.build == "web-3"
    assert [c.params and c.params.get("continue") for c in api.calls] == [None, "page-2"]
    assert api.writes() == []


async def test_recovery_without_a_build_records_the_intent_and_posts_once() -> None:
    api = (
        FakeApi()
        .on("GET", BUILDS, {"items": [build("web-3", OLD)], "metadata": {"continue": ""}})
        .on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    )
    ledger = Ledger(api)
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=True)
    assert result == WriteResult(Outcome.Written, image=NEW, build="web-4")
    assert api.log == [("GET", BUILDS), ("intend", "web", NEW), ("POST", INSTANTIATE)]


async def test_recovery_reads_odd_builds_without_failing() -> None:
    odd: dict[str, Any] = {
        "items": [
            {},
            {"spec": None},
            {"spec": {"triggeredBy": None}},
            {"spec": {"triggeredBy": ["x", {"imageChangeBuild": None}]}},
        ]
    }
    api = FakeApi().on("GET", BUILDS, odd).on("POST", INSTANTIATE, {})
    result = await writer(api).build(bc(), APP, NEW, ledger=Ledger(api), recover=True)
    assert result.outcome is Outcome.Written
    assert len(api.to(INSTANTIATE)) == 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(api_error(503, "unavailable"), Outcome.Failed, id="503"),
        pytest.param(api_error(403, "cannot list builds"), Outcome.Forbidden, id="403"),
    ],
)
async def test_recovery_that_cannot_list_sends_nothing(error: ApiError, outcome: Outcome) -> None:
    api = FakeApi().on("GET", BUILDS, error)
    ledger = Ledger(api)
    result = await writer(api).build(bc(), APP, NEW, ledger=ledger, recover=True)
    assert result.outcome is outcome
    assert api.writes() == []
    assert ledger.intents == []


# -- the fault hook -------------------------------------------------------------------------


class Exited(Exception):
    pass


def _exit(code: int) -> None:
    raise Exited(code)


@pytest.mark.parametrize("environ", [{}, {FAULT_ENV: ""}, {FAULT_ENV: "something-else"}])
async def test_the_fault_hook_is_off_by_default(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "_exit", _exit)
    api = FakeApi().on("POST", INSTANTIATE, {"metadata": {"name": "web-4"}})
    w = writer(api, environ=environ)
    assert (await w.build(bc(), APP, NEW, ledger=Ledger(api), recover=False)).build == "web-4"


async def test_the_fault_hook_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "_exit", _exit)
    monkeypatch.delenv(FAULT_ENV, raising=False)
    api = FakeApi().on("POST", INSTANTIATE, {})
    w = Writer(cast(Api, api))
    assert (await w.build(bc(), APP, NEW, ledger=Ledger(api), recover=False)).outcome is (
        Outcome.Written
    )


async def test_the_fault_hook_exits_right_after_the_post(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "_exit", _exit)
    api = FakeApi().on("POST", INSTANTIATE, {})
    w = writer(api, environ={FAULT_ENV: "exit-after-instantiate"})
    with pytest.raises(Exited):
        await w.build(bc(), APP, NEW, ledger=Ledger(api), recover=False)
    assert api.log == [("intend", "web", NEW), ("POST", INSTANTIATE)]
