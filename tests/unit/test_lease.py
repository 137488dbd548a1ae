"""Leader election's decisions, without a cluster (the behaviour is in tests/e2e/test_lease.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from imagestream_trigger.act.client import Api
from imagestream_trigger.lease import Elector, Record, Step, Timing, _how, next_step
from tests.unit.builders import Call, FakeApi

ME, OTHER = "pod-a", "pod-b"


def held(by: str, duration: float = 8.0, renewed: str = "t1") -> Record:
    return Record(by, duration, renewed, "t0", 3, "42")


@pytest.mark.parametrize(
    ("record", "since", "now", "step"),
    [
        pytest.param(None, 0.0, 0.0, Step.Create, id="no-lease"),
        pytest.param(held(ME), 0.0, 100.0, Step.Renew, id="ours-even-if-old"),
        pytest.param(held(""), 10.0, 10.0, Step.Take, id="released"),
        pytest.param(held(OTHER), 10.0, 17.9, Step.Wait, id="theirs-valid"),
        pytest.param(held(OTHER), 10.0, 18.0, Step.Take, id="theirs-expired-as-seen-here"),
        pytest.param(held(OTHER, duration=1), 10.0, 11.0, Step.Take, id="their-duration-counts"),
    ],
)
def test_next_step(record: Record | None, since: float, now: float, step: Step) -> None:
    assert next_step(record, ME, since, now) is step


@pytest.mark.parametrize(
    ("step", "record", "how"),
    [
        (Step.Create, None, "it did not exist"),
        (Step.Renew, held(ME), "it was already ours"),
        (Step.Take, held(""), "it had been released"),
        (Step.Take, held(OTHER, duration=3), "pod-b had not renewed it for 3s"),
    ],
)
def test_the_log_says_how_the_lease_became_ours(
    step: Step, record: Record | None, how: str
) -> None:
    # The replica tests read it to tell a handover after a release from one after expiry.
    assert _how(step, record) == how


def test_a_record_reads_a_lease_and_tells_terms_apart() -> None:
    body = {
        "metadata": {"resourceVersion": "7"},
        "spec": {
            "holderIdentity": OTHER,
            "leaseDurationSeconds": 8,
            "renewTime": "2026-11-29T20:00:00.000001Z",
            "acquireTime": "2026-11-29T19:00:00.000000Z",
            "leaseTransitions": 2,
        },
    }
    record = Record.of(body)
    assert (record.holder, record.duration_s, record.transitions) == (OTHER, 8.0, 2)
    assert record.same_term(Record.of(body))
    renewed = Record.of({**body, "spec": {**body["spec"], "renewTime": "later"}})
    assert not record.same_term(renewed)
    assert Record.of({}).holder == ""


def test_timing_rules() -> None:
    assert Timing().problems() == []
    assert Timing(duration_s=5, renew_deadline_s=5).problems()
    assert Timing(retry_period_s=5).problems()


def test_an_older_version_seen_late_does_not_end_a_term() -> None:
    elector = Elector(cast(Api, None), "ops", "lease", ME)
    ours = {"metadata": {"resourceVersion": "11"}, "spec": {"holderIdentity": ME}}
    theirs_before: dict[str, Any] = {
        "metadata": {"resourceVersion": "10"},
        "spec": {"holderIdentity": OTHER},
    }
    elector._observe(ours)
    elector._leading = True
    elector._observe(theirs_before)  # delivered late by the watch
    assert elector.record is not None
    assert elector.record.holder == ME
    assert elector._leading
    elector._observe({"metadata": {"resourceVersion": "12"}, "spec": {"holderIdentity": OTHER}})
    assert elector.record.holder == OTHER
    assert not elector._leading


async def test_a_renewal_answered_after_the_release_does_not_make_it_lead_again() -> None:
    # On SIGTERM the runner releases the Lease while the elector's loop may have a renewal
    # on the wire. Its answer, arriving after the release, must not reopen the write gate
    # (nor call on_lead, which would start the workers again beside the next leader).
    version = iter(range(100, 200))
    answer_renewal = asyncio.Event()
    puts: list[str] = []
    renewal_sent = asyncio.Event()

    def lease(spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": "imagestream-trigger", "namespace": "ns", "resourceVersion": ""}
        meta["resourceVersion"] = str(next(version))
        return {"metadata": meta, "spec": spec}

    current = lease({"holderIdentity": ME, "leaseDurationSeconds": 8, "renewTime": "t1"})

    async def put(call: Call) -> dict[str, Any]:
        nonlocal current
        holder = call.body["spec"]["holderIdentity"]
        puts.append(holder)
        if holder == ME and len(puts) == 2:  # the second renewal: held up on the wire
            renewal_sent.set()
            await answer_renewal.wait()
        current = lease(call.body["spec"])
        return current

    api = FakeApi().on("GET", "/leases/imagestream-trigger", lambda call: current)
    api.on("PUT", "/leases/imagestream-trigger", put)
    led: list[int] = []
    elector = Elector(
        cast(Api, api), "ns", "imagestream-trigger", ME, on_lead=lambda: led.append(1)
    )
    assert await elector.attempt()
    assert elector.leading
    assert led == [1]

    renewal = asyncio.create_task(elector.attempt())
    await renewal_sent.wait()
    await elector.release()
    assert not elector.leading
    answer_renewal.set()
    await renewal
    assert puts == [ME, ME, ""]
    assert not elector.leading
    assert elector.remaining() == 0
    assert led == [1]


async def test_a_standby_stops_when_cancelled_as_the_lease_changes() -> None:
    # The runner cancels the elector at shutdown. A standby waits for the Lease to change,
    # again and again (Elector.run); a change seen in the same moment as the cancellation
    # must not swallow it (asyncio.wait_for does, on 3.11), or the elector never stops and
    # shutdown hangs.
    elector = Elector(cast(Api, FakeApi()), "ns", "imagestream-trigger", ME)
    elector.record = held(OTHER)

    async def standby() -> None:
        while True:
            elector._changed_at = elector.clock()
            await elector._wait_for_a_chance()

    waiting = asyncio.create_task(standby())
    await asyncio.sleep(0.01)
    elector._seen.set()
    await asyncio.sleep(0)  # the change is taken in; the wait is about to return
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(waiting), 1)
