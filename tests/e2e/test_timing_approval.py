"""Timing rules and approval (spec.rollout debounce, minImageAge, windows, approval) with the
operator running against the real API server, on the real clock.

The targets are CronJobs: they have no rollout to follow, so the health gate stays out of
the way and what is proven is only when an image may be written. Windows are computed
around the current time; nothing shifts the operator's clock.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.controlplane import simulate
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    ready,
    trigger_path,
    wait_reason,
    workload,
    workload_path,
)

PLUGIN = Path(sys.executable).parent / "kubectl-imagetrigger"
ORIGINAL = f"{REPO}:latest"


def cronjob(kube: Kube, namespace: str, name: str = "report") -> str:
    create(kube, namespace, workload("CronJob", name, {"report": ORIGINAL}))
    return workload_path("CronJob", namespace, name)


def follow(
    kube: Kube, namespace: str, name: str = "follow", job: str = "report", **rollout: Any
) -> None:
    create(
        kube,
        namespace,
        image_trigger(name, "app:latest", [{"kind": "CronJob", "name": job}], rollout=rollout),
    )


def status(trigger: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = trigger.get("status", {})
    return found


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def plugin(plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run([str(PLUGIN), *args], env=env, capture_output=True, text=True, timeout=60)


# -- windows ------------------------------------------------------------------------------


def test_a_closed_window_holds_the_image_until_it_opens_an_open_one_lets_it_through(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    zone = zoneinfo.ZoneInfo("Asia/Kolkata")  # UTC+05:30: local times are not UTC's
    now = dt.datetime.now(dt.UTC)
    # Opens at the first whole minute at least 20 s away; open now: from a minute ago.
    opens = (now + dt.timedelta(seconds=80)).replace(second=0, microsecond=0)
    closed = {
        "start": f"{opens.astimezone(zone):%H:%M}",
        "end": f"{(opens + dt.timedelta(minutes=5)).astimezone(zone):%H:%M}",
    }
    began = now - dt.timedelta(minutes=1)
    open_now = {
        "start": f"{began.astimezone(zone):%H:%M}",
        "end": f"{(began + dt.timedelta(minutes=10)).astimezone(zone):%H:%M}",
    }
    image_stream(kube, namespace)
    later = cronjob(kube, namespace, "later")
    soon = cronjob(kube, namespace, "soon")
    follow(kube, namespace, "later", "later", windows=[closed], timeZone="Asia/Kolkata")
    follow(kube, namespace, "soon", "soon", windows=[open_now], timeZone="Asia/Kolkata")
    new = imported(kube, namespace)

    kube.wait_for(soon, lambda c: images_of(c)["report"] == new.reference)
    held = wait_reason(kube, namespace, "Waiting", "later")
    waiting = status(held)["waiting"]
    assert waiting["image"] == new.reference
    assert waiting["reason"] == "MaintenanceWindow"
    assert waiting["until"] == rfc3339(opens)
    assert f"({rfc3339(opens)})" in ready(held)["message"]
    assert f"{opens.astimezone(zone):%a %H:%M} Asia/Kolkata" in waiting["message"]
    assert status(held)["targets"][0]["result"] == "Waiting"
    assert images_of(kube.get(later))["report"] == ORIGINAL
    assert "waiting" not in status(kube.get(trigger_path(namespace, "soon")))

    # Re-queued for the opening: written then, with nothing else happening meanwhile.
    kube.wait_for(later, lambda c: images_of(c)["report"] == new.reference, timeout=150)
    assert dt.datetime.now(dt.UTC) >= opens
    done = wait_reason(kube, namespace, "Applied", "later")
    assert "waiting" not in status(done)


# -- minImageAge ----------------------------------------------------------------------------


def test_min_image_age_lets_an_old_image_through_and_holds_a_young_one(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    job = cronjob(kube, namespace)
    follow(kube, namespace, minImageAge="1h")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    old = simulate.import_image(
        kube, namespace, "app", "latest", created=now - dt.timedelta(hours=3)
    )
    kube.wait_for(job, lambda c: images_of(c)["report"] == old.reference)

    young = simulate.import_image(
        kube, namespace, "app", "latest", created=now - dt.timedelta(minutes=10)
    )
    held = kube.wait_for(
        trigger_path(namespace),
        lambda t: status(t).get("waiting", {}).get("image") == young.reference,
    )
    waiting = status(held)["waiting"]
    assert waiting["reason"] == "MinImageAge"
    assert waiting["until"] == rfc3339(now + dt.timedelta(minutes=50))
    assert f"was created at {rfc3339(now - dt.timedelta(minutes=10))}" in waiting["message"]
    assert ready(held)["reason"] == "Waiting"
    assert images_of(kube.get(job))["report"] == old.reference

    # No created time at all: counted from the tag event, and said so.
    unknown = imported(kube, namespace)
    held = kube.wait_for(
        trigger_path(namespace),
        lambda t: status(t).get("waiting", {}).get("image") == unknown.reference,
    )
    waiting = status(held)["waiting"]
    assert "no created time" in waiting["message"]
    tagged = simulate.head(
        kube.get(path_for("image.openshift.io/v1", "imagestreams", namespace, "app")), "latest"
    )
    assert tagged is not None
    assert at(waiting["until"]) == at(tagged["created"]) + dt.timedelta(hours=1)
    assert images_of(kube.get(job))["report"] == old.reference


# -- debounce -------------------------------------------------------------------------------


def test_of_three_quick_moves_only_the_last_is_written(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    job = cronjob(kube, namespace)
    follow(kube, namespace, debounce="8s")
    generation = kube.get(job)["metadata"]["generation"]

    moves = [imported(kube, namespace) for _ in range(3)]
    last = moves[-1]
    held = kube.wait_for(
        trigger_path(namespace),
        lambda t: status(t).get("waiting", {}).get("image") == last.reference,
    )
    assert status(held)["waiting"]["reason"] == "Debounce"
    head = simulate.head(
        kube.get(path_for("image.openshift.io/v1", "imagestreams", namespace, "app")), "latest"
    )
    assert head is not None
    assert at(status(held)["waiting"]["until"]) == at(head["created"]) + dt.timedelta(seconds=8)

    written = kube.wait_for(job, lambda c: images_of(c)["report"] == last.reference, timeout=40)
    # One write in all: the two earlier images never reached the CronJob.
    assert written["metadata"]["generation"] == generation + 1
    done = wait_reason(kube, namespace, "Applied")
    assert [h["image"] for h in status(done)["history"]] == [last.reference]
    assert "waiting" not in status(done)


# -- approval -------------------------------------------------------------------------------


def test_approval_pending_superseded_then_approved_with_the_plugin(
    kube: Kube,
    namespace: str,
    run_operator: Callable[..., OperatorProcess],
    control_plane: ControlPlane,
) -> None:
    operator = run_operator()
    image_stream(kube, namespace)
    job = cronjob(kube, namespace)
    follow(kube, namespace, approval="Manual")

    first = imported(kube, namespace)
    held = wait_reason(kube, namespace, "PendingApproval")
    pending = status(held)["pending"]
    assert pending["image"] == first.reference
    assert f"kubectl imagetrigger approve follow -n {namespace}" in ready(held)["message"]
    assert status(held)["targets"][0]["result"] == "PendingApproval"
    events = kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: [
            e for e in events_for(kube, namespace, "follow") if e["reason"] == "PendingApproval"
        ],
    )
    del events
    approval_events = [
        e for e in events_for(kube, namespace, "follow") if e["reason"] == "PendingApproval"
    ]
    assert approval_events[0]["type"] == "Normal"
    assert "kubectl imagetrigger approve follow" in approval_events[0]["message"]

    # A newer digest supersedes it: pending names it, since when it arrived.
    time.sleep(1.1)  # so that "since" (whole seconds) can differ
    second = imported(kube, namespace)
    held = kube.wait_for(
        trigger_path(namespace),
        lambda t: status(t).get("pending", {}).get("image") == second.reference,
    )
    since = status(held)["pending"]["since"]
    assert at(since) > at(pending["since"])

    # A restarted operator finds the same pending image, since the same time (from the status).
    operator.stop()
    run_operator()
    # Approving the superseded one applies nothing.
    out = plugin(control_plane, "approve", "follow", "-n", namespace, "--image", first.image)
    assert out.returncode == 0, out.stderr
    assert f"note: the image pending approval is another one: {second.reference}" in out.stdout
    kube.wait_for(
        trigger_path(namespace),
        lambda t: t.get("status", {}).get("observedGeneration") == t["metadata"]["generation"],
    )
    assert status(kube.get(trigger_path(namespace)))["pending"] == {
        "image": second.reference,
        "since": since,
    }
    assert images_of(kube.get(job))["report"] == ORIGINAL

    out = plugin(control_plane, "approve", "follow", "-n", namespace)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        f"imagetrigger {namespace}/follow: approved {second.image} (spec.approvedImage)"
    )
    assert kube.get(trigger_path(namespace))["spec"]["approvedImage"] == second.image
    kube.wait_for(job, lambda c: images_of(c)["report"] == second.reference)
    done = wait_reason(kube, namespace, "Applied")
    assert "pending" not in status(done)
    assert [h["image"] for h in status(done)["history"]] == [second.reference]

    # Nothing pending any more: approve without --image says so, and changes nothing.
    out = plugin(control_plane, "approve", "follow", "-n", namespace)
    assert out.returncode == 1
    assert "has no image pending approval" in out.stderr
