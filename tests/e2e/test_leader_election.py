"""Leader election on a real Lease: one writer at a time, fast handover, no overlap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from imagestream_trigger.errors import NotLeaderError
from imagestream_trigger.lease import Elector, Timing, micro_time
from tests.controlplane.cluster import ControlPlane
from tests.e2e.objects import api_for

pytestmark = pytest.mark.controlplane

FAST = Timing(duration_s=2.0, renew_deadline_s=1.2, retry_period_s=0.3)


class Replica:
    """An elector with its own client, recording when it led and stopped (monotonic)."""

    def __init__(self, plane: ControlPlane, namespace: str, identity: str) -> None:
        self.api = api_for(plane)
        self.led: list[float] = []
        self.lost: list[float] = []
        self.elector = Elector(
            self.api,
            namespace,
            "imagestream-trigger",
            identity,
            FAST,
            on_lead=lambda: self.led.append(time.monotonic()),
            on_lose=lambda: self.lost.append(time.monotonic()),
        )
        self.api.write_gate = self.elector.remaining
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.elector.run())
        return self

    async def crash(self) -> None:
        """Stop dead: no release, as a SIGKILL would."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            await self.crash()
        await self.api.close()


@asynccontextmanager
async def replicas(
    plane: ControlPlane, namespace: str, *names: str
) -> AsyncIterator[list[Replica]]:
    started = [Replica(plane, namespace, name).start() for name in names]
    try:
        yield started
    finally:
        for replica in started:
            await replica.close()


async def until(condition: Callable[[], bool], within: float) -> float:
    """Wait for ``condition``; returns when it became true (monotonic)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic()


def leaders(group: list[Replica]) -> list[Replica]:
    return [r for r in group if r.elector.leading]


async def test_one_of_two_leads_and_a_release_hands_over_at_once(
    control_plane: ControlPlane, namespace: str
) -> None:
    async with replicas(control_plane, namespace, "pod-a", "pod-b") as group:
        await until(lambda: len(leaders(group)) == 1, 10)
        # Stays one: several renewals later, still exactly one.
        for _ in range(10):
            await asyncio.sleep(0.2)
            assert len(leaders(group)) == 1
        [old] = leaders(group)
        [new] = [r for r in group if r is not old]
        released = time.monotonic()
        await old.elector.release()
        assert not old.elector.leading
        took = await until(lambda: new.elector.leading, 5) - released
        # Taken as released, seen through the watch: not after a lease duration.
        assert new.elector.how == "it had been released"
        assert took < FAST.duration_s, took
        assert new.elector.record is not None
        assert new.elector.record.holder == new.elector.identity
        assert new.elector.record.transitions >= 1


async def test_a_release_after_a_renewal_cut_short_still_releases(
    control_plane: ControlPlane, namespace: str
) -> None:
    # On SIGTERM the elector's task is cancelled, then the Lease released. A renewal on
    # the wire at that moment lands without the elector seeing its answer, and the
    # release then carries an old resourceVersion: a conflict it must get past.
    async with replicas(control_plane, namespace, "pod-a") as (leader,):
        await until(lambda: leader.elector.leading, 10)
        await leader.crash()  # the loop stops; the Lease is still held, and valid
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/imagestream-trigger"
        admin = api_for(control_plane)
        try:
            # The landed renewal, as far as the elector can tell: a newer version of the
            # same holder's Lease.
            body = await admin.request("GET", path, resource="leases")
            body["spec"]["renewTime"] = micro_time()
            await admin.request("PUT", path, body=body, resource="leases")
            assert leader.elector.leading
            await leader.elector.release()
            released = await admin.request("GET", path, resource="leases")
        finally:
            await admin.close()
        assert released["spec"].get("holderIdentity", "") == ""


async def test_a_crashed_leader_is_replaced_after_the_lease_expires(
    control_plane: ControlPlane, namespace: str
) -> None:
    async with replicas(control_plane, namespace, "pod-a", "pod-b") as group:
        await until(lambda: len(leaders(group)) == 1, 10)
        [old] = leaders(group)
        [new] = [r for r in group if r is not old]
        crashed = time.monotonic()
        await old.crash()
        took = await until(lambda: new.elector.leading, 10) - crashed
        # Not before the lease could have expired; not much after.
        assert FAST.duration_s - FAST.retry_period_s <= took <= FAST.duration_s + 2.0, took


async def test_a_partitioned_leader_stops_writing_before_another_starts(
    control_plane: ControlPlane, namespace: str
) -> None:
    async with replicas(control_plane, namespace, "pod-a", "pod-b") as group:
        await until(lambda: len(leaders(group)) == 1, 10)
        [old] = leaders(group)
        [new] = [r for r in group if r is not old]
        # Cut the leader off: every request of its client now fails to connect.
        old.api.configuration.host = "https://127.0.0.1:9"
        await until(lambda: new.elector.leading, 10)
        assert old.lost, "the cut-off leader never noticed"
        assert new.led
        # Its last moment allowed to write came before the new leader's first.
        assert old.lost[-1] < new.led[-1]
        assert new.led[-1] - old.lost[-1] >= FAST.duration_s - FAST.renew_deadline_s - 0.3
        with pytest.raises(NotLeaderError):
            await old.api.request(
                "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x", body={}, resource="x"
            )
