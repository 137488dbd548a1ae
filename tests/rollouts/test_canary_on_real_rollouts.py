"""spec.rollout.canary and maxParallel where rollouts really happen: the canary is written
first and proven healthy before any other target is written, at most maxParallel others roll
out at a time, and a never-ready image on the canary is reverted and reaches nothing else.

The order is read from the API server itself: a watch on the namespace's Deployments (and
one on its ImageTriggers) records every change in the order etcd committed it, so "the
canary was healthy before the next write" is a fact about resource versions, not a timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.controlplane.kube import ApiError, Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.controlplane.simulate import import_image
from tests.controlplane.workloads import never_ready_digest
from tests.e2e.objects import (
    TRIGGERS,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    quarantined,
    ready,
    trigger_path,
    workload,
    workload_path,
)

pytestmark = pytest.mark.controlplane

PROGRESS_DEADLINE_S = 10
SLACK_S = 5  # as test_gate_on_real_rollouts: the revert comes within the deadline and this
OTHERS = ("web-a", "web-b", "web-c")


@dataclass(frozen=True)
class Seen:
    """One committed state of a Deployment, as its watch event showed it."""

    name: str
    image: str
    healthy: bool  # the rollout of its current template is complete (as rollout.py judges)


def complete(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    wanted = deployment["spec"].get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("availableReplicas", 0) >= wanted
        and status.get("replicas", 0) == wanted
    )


class Recorder:
    """Every change of the objects under ``path``, in commit order, from a background watch."""

    def __init__(self, kube: Kube, path: str) -> None:
        self.kube = kube
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        listed = kube.get(path)
        self._version = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self.kube.watch(self.path, resource_version=self._version, timeout=5):
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self.events.append(event["object"])
                        self._version = event["object"]["metadata"]["resourceVersion"]
                    if self._stop.is_set():
                        return
            except (ApiError, OSError):  # an expired version or a dropped stream: go on
                continue

    def stop(self) -> list[dict[str, Any]]:
        """The changes seen, then each object as it stands now if the watch has not shown
        that yet (the stream stops at the first event after this call: later, the end)."""
        self._stop.set()
        self._thread.join(timeout=10)
        events = list(self.events)
        shown = {e["metadata"]["name"]: e["metadata"]["resourceVersion"] for e in events}
        listed = self.kube.get(self.path)
        kind = listed["kind"].removesuffix("List")  # items of a list carry no kind
        for item in listed["items"]:
            if shown.get(item["metadata"]["name"]) != item["metadata"]["resourceVersion"]:
                events.append({**item, "kind": kind})
        return events


@pytest.fixture
def deployments(kube: Kube, namespace: str) -> Iterator[Recorder]:
    recorder = Recorder(kube, path_for("apps/v1", "deployments", namespace))
    yield recorder
    recorder.stop()


@pytest.fixture
def triggers(kube: Kube, namespace: str) -> Iterator[Recorder]:
    recorder = Recorder(kube, path_for(TRIGGERS, "imagetriggers", namespace))
    yield recorder
    recorder.stop()


def seen(events: list[dict[str, Any]]) -> list[Seen]:
    return [Seen(d["metadata"]["name"], images_of(d)["web"], complete(d)) for d in events]


def shop(kube: Kube, namespace: str, image: str, **canary_spec: Any) -> None:
    """web-canary (label track=canary) and three other Deployments of tier=web on ``image``."""
    for name in ("web-canary", *OTHERS):
        labels = {"app": name, "tier": "web"} | (
            {"track": "canary"} if name == "web-canary" else {}
        )
        deployment = workload("Deployment", name, {"web": image}, labels=labels)
        deployment["spec"] |= {"replicas": 1, "progressDeadlineSeconds": PROGRESS_DEADLINE_S}
        create(kube, namespace, deployment)
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "selector": {"matchLabels": {"tier": "web"}}}],
            rollout={"timeout": "5m", **canary_spec},
        ),
    )


def results(trigger: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["result"] for t in trigger.get("status", {}).get("targets") or []}


def rollouts(trigger: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t.get("rollout", "") for t in trigger.get("status", {}).get("targets") or []}


def test_the_canary_is_written_and_healthy_first_then_one_other_at_a_time(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    deployments: Recorder,
    triggers: Recorder,
) -> None:
    image_stream(kube, namespace)
    first = imported(kube, namespace)
    shop(
        kube,
        namespace,
        first.reference,
        canary={"selector": {"matchLabels": {"track": "canary"}}},
        maxParallel=1,
    )
    kube.wait_for(trigger_path(namespace), lambda t: ready(t).get("status") == "True")

    new = imported(kube, namespace)
    for name in ("web-canary", *OTHERS):
        kube.wait_for(
            workload_path("Deployment", namespace, name),
            lambda d: images_of(d)["web"] == new.reference,
            timeout=120,
        )
    trigger = kube.wait_for(
        trigger_path(namespace),
        lambda t: set(rollouts(t).values()) == {"Healthy"} and ready(t).get("status") == "True",
        timeout=60,
    )
    assert set(results(trigger).values()) == {"Applied"}
    history = seen(deployments.stop())

    def first_index(name: str, *, healthy: bool) -> int:
        return next(
            i
            for i, s in enumerate(history)
            if s.name == name and s.image == new.reference and (s.healthy or not healthy)
        )

    written = {name: first_index(name, healthy=False) for name in ("web-canary", *OTHERS)}
    proven = {name: first_index(name, healthy=True) for name in ("web-canary", *OTHERS)}
    # The canary first, and healthy on the image before any other Deployment got it.
    assert all(proven["web-canary"] < written[name] for name in OTHERS), (written, proven)
    # Then at most one other (maxParallel 1) written and not yet healthy at any moment.
    for moment in range(len(history)):
        rolling = [n for n in OTHERS if written[n] <= moment < proven[n]]
        assert len(rolling) <= 1, (moment, rolling, history)
    # In the order of the targets (a selector's matches by name).
    assert written["web-a"] < written["web-b"] < written["web-c"]

    # While they waited, the status said why, in words.
    statuses = triggers.stop()
    said = {
        (t["name"], t["result"]): t.get("message", "")
        for body in statuses
        for t in body.get("status", {}).get("targets") or []
    }
    assert said[("web-a", "WaitingForCanary")] == (
        f"waits for the canary Deployment/web-canary to be healthy on {new.reference}"
    )
    assert said[("web-c", "WaitingForBatch")].startswith("waits for its turn (maxParallel 1): ")
    reasons = {ready(body).get("reason") for body in statuses}
    assert {"WaitingForCanary", "WaitingForBatch"} <= reasons


def test_a_never_ready_canary_is_reverted_and_the_others_never_get_the_image(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    deployments: Recorder,
) -> None:
    image_stream(kube, namespace)
    good = imported(kube, namespace)
    shop(kube, namespace, good.reference, canary={"names": ["web-canary"]}, maxParallel=2)
    kube.wait_for(trigger_path(namespace), lambda t: ready(t).get("status") == "True")

    bad = import_image(kube, namespace, "app", "latest", image=never_ready_digest("canary-bad"))
    canary = workload_path("Deployment", namespace, "web-canary")
    kube.wait_for(canary, lambda d: images_of(d)["web"] == bad.reference)
    kube.wait_for(
        canary,
        lambda d: images_of(d)["web"] == good.reference,
        timeout=PROGRESS_DEADLINE_S + SLACK_S,
    )
    # The pass that reverts still has the others waiting for the canary; the next (the
    # revert's rollout wakes it) holds the quarantined image back from them.
    trigger = kube.wait_for(
        trigger_path(namespace),
        lambda t: (
            quarantined(t) == [bad.reference]
            and ready(t).get("reason") == "RolloutFailed"
            and {results(t).get(name) for name in OTHERS} == {"Quarantined"}
        ),
    )
    assert rollouts(trigger)["web-canary"] == "Reverted"
    # Nothing but the canary ever ran the bad image, as the API server recorded it.
    history = seen(deployments.stop())
    assert {s.name for s in history if s.image == bad.reference} == {"web-canary"}
    for name in OTHERS:
        assert images_of(kube.get(workload_path("Deployment", namespace, name)))["web"] == (
            good.reference
        )
