"""Notifications from reconcile passes: each event once, at a real local HTTP receiver.

The passes run as in test_rollout_wiring (scripted Kubernetes API); the receiver is a real
aiohttp server on 127.0.0.1 (the ``receiver`` fixture of test_notify_delivery).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.builders import NEW, OLD, api_error, imagestream, workload
from tests.unit.test_notify_delivery import Receiver, receiver  # noqa: F401  # a fixture
from tests.unit.test_policy_wiring import SEMVER, policy_trigger, releases
from tests.unit.test_rollout_wiring import DEPLOYMENTS, Rig, complete, guarded, written

SECRET = "/api/v1/namespaces/demo/secrets/hooks"
LONG_AGO = "2020-01-01T00:00:00Z"


@pytest.fixture
async def rig(receiver: Receiver) -> AsyncIterator[Rig]:  # noqa: F811
    made = Rig()
    url = base64.b64encode(f"{receiver.url}/hook".encode()).decode()
    made.api.on("GET", SECRET, {"data": {"url": url}})
    yield made
    await made.reporter.notifier.stop()


def notifying(**rollout: Any) -> dict[str, Any]:
    return guarded(
        rollout={"notify": [{"name": "log", "type": "JSON", "secretRef": {"name": "hooks"}}]}
        | rollout
    )


async def arrived(rig: Rig, receiver: Receiver) -> list[Any]:  # noqa: F811
    """The bodies received once everything queued went out (waits with a deadline)."""
    for _ in range(500):
        if not rig.reporter.notifier._queues:
            return receiver.bodies()
        await asyncio.sleep(0.01)
    raise AssertionError("notifications still queued after 5 s")


async def test_a_write_is_notified_once_as_applied(rig: Rig, receiver: Receiver) -> None:  # noqa: F811
    rig.load(imagestream(), workload(web=OLD), notifying())
    await rig.run()
    assert len(rig.api.to(DEPLOYMENTS, "PATCH")) == 1
    (body,) = await arrived(rig, receiver)
    assert body["event"] == "Applied"
    assert body["image"] == NEW
    assert body["targets"] == [{"kind": "Deployment", "name": "web"}]
    assert body["trigger"] == {"namespace": "demo", "name": "follow-app"}
    await rig.run()  # in flight now: nothing more is written, nothing more said
    assert len(await arrived(rig, receiver)) == 1  # no more


async def test_a_reverted_rollout_is_notified_once(rig: Rig, receiver: Receiver) -> None:  # noqa: F811
    rig.load(imagestream(), written(at=LONG_AGO), notifying())
    await rig.run()
    (body,) = await arrived(rig, receiver)
    assert body["event"] == "Reverted"
    assert body["targets"] == [{"kind": "Deployment", "name": "web"}]
    assert body["message"].startswith(f"reverted web to {OLD}: the rollout of {NEW} failed")
    await rig.run()
    assert len(await arrived(rig, receiver)) == 1  # no more


async def test_a_rollout_failed_without_revert_is_notified_as_failed(
    rig: Rig,
    receiver: Receiver,  # noqa: F811
) -> None:
    rig.load(imagestream(), written(at=LONG_AGO), notifying(revert=False))
    await rig.run()
    (body,) = await arrived(rig, receiver)
    assert body["event"] == "Failed"
    assert body["message"].startswith(f"Deployment/web: the rollout of {NEW} failed: ")
    # The status written says Failed: the next pass does not say it again.
    await rig.run()
    assert len(await arrived(rig, receiver)) == 1  # no more


async def test_a_refused_write_is_notified_once_not_at_each_retry(
    rig: Rig,
    receiver: Receiver,  # noqa: F811
) -> None:
    rig.api.on("PATCH", DEPLOYMENTS, api_error(403, 'cannot patch resource "deployments"'))
    rig.load(imagestream(), workload(web=OLD), notifying())
    first = await rig.run()
    assert first.retry == "forbidden"
    (body,) = await arrived(rig, receiver)
    assert body["event"] == "Failed"
    assert body["message"].startswith("Deployment/web: Forbidden: ")
    await rig.run()  # the retry: refused again, and the status already says so
    assert len(await arrived(rig, receiver)) == 1  # no more


async def test_a_healthy_rollout_and_a_trigger_without_receivers_say_nothing(
    rig: Rig,
    receiver: Receiver,  # noqa: F811
) -> None:
    rig.load(imagestream(), written(at=LONG_AGO, status=complete()), notifying())
    await rig.run()
    rig.load(imagestream(), workload(web=OLD), guarded())
    await rig.run()  # written, but nobody to tell
    assert len(rig.api.to(DEPLOYMENTS, "PATCH")) == 1
    assert await arrived(rig, receiver) == []
    assert rig.api.to(SECRET) == []


async def test_a_policy_trigger_says_which_tag_it_followed(rig: Rig, receiver: Receiver) -> None:  # noqa: F811
    trigger = policy_trigger(SEMVER)
    trigger["spec"]["rollout"] = notifying()["spec"]["rollout"]
    rig.load(releases(), workload(web=OLD), trigger)
    await rig.run()
    (body,) = await arrived(rig, receiver)
    assert body["event"] == "Applied"
    assert body["source"] == {"namespace": "demo", "imageStreamTag": "app:1.4.2"}


async def test_an_image_waiting_for_approval_is_notified_once_as_pending(
    rig: Rig,
    receiver: Receiver,  # noqa: F811
) -> None:
    rig.load(imagestream(), workload(web=OLD), notifying(approval="Manual"))
    await rig.run()
    assert rig.api.to(DEPLOYMENTS, "PATCH") == []  # held: nothing written
    (body,) = await arrived(rig, receiver)
    assert body["event"] == "Pending"
    assert body["image"] == NEW
    assert body["source"] == {"namespace": "demo", "imageStreamTag": "app:latest"}
    assert "waits for approval" in body["message"]
    await rig.run()  # still pending, same image: the status says so, nothing more is said
    assert len(await arrived(rig, receiver)) == 1
