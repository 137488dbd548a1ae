"""The work queue: client-go's semantics (dedup, one worker per key, per-key backoff)."""

from __future__ import annotations

import asyncio

import pytest

from imagestream_trigger.queue import ShutDown, WorkQueue

TICK = 0.02  # a timer delay the event loop honours well within a test's budget


async def settle() -> None:
    """Let every ready callback and task run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_key_added_while_queued_is_merged() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


async def test_keys_come_out_in_order() -> None:
    q: WorkQueue[int] = WorkQueue()
    for n in (3, 1, 2):
        q.add(n)
    assert [await q.get() for _ in range(3)] == [3, 1, 2]


async def test_a_key_added_while_processing_runs_once_more_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    assert q.processing == 1
    q.add("a")
    q.add("a")  # still one more run, not two
    assert len(q) == 0  # not handed out while a worker holds it
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0
    assert q.processing == 0


async def test_a_key_is_never_handed_to_two_getters_at_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    first = await q.get()
    q.add("a")
    second = asyncio.create_task(q.get())
    await settle()
    assert not second.done()  # "a" is being processed: the second worker waits
    q.done(first)
    assert await asyncio.wait_for(second, 1) == "a"
    q.done("a")
    assert q.tracked() == 0


async def test_one_add_wakes_one_of_several_waiting_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    workers = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.add("a")
    await settle()
    done = [w for w in workers if w.done()]
    assert [w.result() for w in done] == ["a"]
    q.add("b")
    q.add("c")
    await settle()
    assert sorted(w.result() for w in workers if w.done()) == ["a", "b", "c"]


async def test_a_cancelled_waiter_does_not_swallow_a_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    first.cancel()
    await settle()
    q.add("a")
    assert await asyncio.wait_for(second, 1) == "a"


async def test_a_worker_cancelled_after_its_wakeup_passes_the_key_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    q.add("a")  # resolves the first waiter ...
    first.cancel()  # ... whose worker is cancelled before it runs
    await settle()
    try:
        assert await asyncio.wait_for(second, 0.1) == "a"
    finally:
        second.cancel()


# -- backoff -------------------------------------------------------------------------------


async def test_backoff_doubles_from_base_delay_and_caps_at_max_delay() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=8.0, jitter=0.0)
    delays = [q.add_rate_limited("a") for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert q.failures("a") == 6
    # Per key: another key starts from the base delay.
    assert q.add_rate_limited("b") == 1.0
    q.forget("a")
    assert q.failures("a") == 0
    assert q.add_rate_limited("a") == 1.0
    q.shutdown()


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
async def test_jitter_spreads_the_delay(draw: float, factor: float) -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=2.0, max_delay=300.0, jitter=0.2, rng=lambda: draw)
    assert q.add_rate_limited("a") == pytest.approx(2.0 * factor)
    assert q.add_rate_limited("a") == pytest.approx(4.0 * factor)
    q.shutdown()


async def test_backoff_stays_capped_after_very_many_failures() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=300.0, jitter=0.0)
    try:
        for _ in range(1100):
            assert q.add_rate_limited("a") <= 300.0
    finally:
        q.shutdown()


async def test_a_rate_limited_key_comes_back_after_its_delay() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=TICK, jitter=0.0)
    q.add_rate_limited("a")
    assert len(q) == 0
    assert q.waiting == 1
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert q.waiting == 0


# -- delayed adds ----------------------------------------------------------------------------


async def test_add_after_fires_later() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", TICK)
    assert len(q) == 0
    assert q.waiting == 1
    await asyncio.sleep(TICK * 2.5)
    assert len(q) == 1
    assert q.waiting == 0
    assert await q.get() == "a"


async def test_add_after_without_delay_adds_now() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0)
    assert len(q) == 1
    assert q.waiting == 0


async def test_an_earlier_pending_timer_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", TICK)
    q.add_after("a", 10.0)  # later: ignored
    assert q.waiting == 1
    await asyncio.sleep(TICK * 2.5)
    assert len(q) == 1
    assert q.waiting == 0  # nothing left pending for 10 s


async def test_a_sooner_timer_replaces_a_later_one() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 10.0)
    q.add_after("a", TICK)
    assert q.waiting == 1
    await asyncio.sleep(TICK * 2.5)
    assert len(q) == 1
    assert q.waiting == 0
    assert await q.get() == "a"
    q.done("a")
    await asyncio.sleep(TICK)
    assert len(q) == 0  # the 10 s timer was cancelled, not merely outrun


async def test_a_timer_firing_while_queued_is_merged() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("a", TICK)
    await asyncio.sleep(TICK * 2.5)
    assert len(q) == 1


async def test_discard_cancels_the_timer_and_drops_failures() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=TICK, jitter=0.0)
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.failures("a") == 2
    q.discard("a")
    assert q.failures("a") == 0
    assert q.waiting == 0
    await asyncio.sleep(TICK * 2.5)
    assert len(q) == 0
    assert q.tracked() == 0


async def test_discard_leaves_a_queued_run() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.discard("a")
    assert len(q) == 1


# -- shutdown --------------------------------------------------------------------------------


async def test_shutdown_wakes_every_waiting_worker_with_shutdown() -> None:
    q: WorkQueue[str] = WorkQueue()
    workers = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 1)
    assert all(isinstance(r, ShutDown) for r in results)
    with pytest.raises(ShutDown):
        await q.get()


async def test_after_shutdown_nothing_is_added_and_timers_are_cancelled() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=TICK, jitter=0.0)
    q.add_after("a", TICK)
    q.add_rate_limited("b")
    q.shutdown()
    assert q.waiting == 0
    q.add("c")
    q.add_after("d", TICK)
    q.add_rate_limited("e")
    await asyncio.sleep(TICK * 2.5)
    assert len(q) == 0
    with pytest.raises(ShutDown):
        await q.get()


async def test_a_key_added_while_processing_is_not_requeued_after_shutdown() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await q.get()
    q.add("a")
    q.shutdown()
    q.done("a")
    assert len(q) == 0
    assert q.processing == 0


# -- bookkeeping -----------------------------------------------------------------------------


async def test_nothing_is_tracked_once_everything_is_done_and_forgotten() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=TICK, jitter=0.0)
    keys = [f"k{n}" for n in range(20)]
    for key in keys:
        q.add(key)
        q.add(key)
    assert q.tracked() == 20
    for _ in keys:
        key = await q.get()
        if key in ("k0", "k1"):
            q.add_rate_limited(key)  # failed: comes back after its backoff
        q.done(key)
    assert q.tracked() == 2  # their failure counts (and timers)
    for _ in range(2):
        key = await asyncio.wait_for(q.get(), 1)
        q.done(key)
        q.forget(key)
    assert q.tracked() == 0
    assert (len(q), q.processing, q.waiting) == (0, 0, 0)


async def drain(q: WorkQueue[str]) -> list[str]:
    out = []
    while len(q):
        key = await q.get()
        q.done(key)
        out.append(key)
    return out


async def test_background_keys_wait_behind_every_other_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("full-1", "full-2", "full-3"):
        q.add(key, background=True)
    q.add("moved")
    q.add("full-4", background=True)
    q.add("moved-later")
    assert len(q) == 6
    assert await drain(q) == ["moved", "moved-later", "full-1", "full-2", "full-3", "full-4"]
    assert q.tracked() == 0


async def test_a_background_key_added_in_the_foreground_moves_up_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "c"):
        q.add(key, background=True)
    q.add("c")
    q.add("c", background=True)  # stays up front
    assert len(q) == 3
    assert await drain(q) == ["c", "a", "b"]
    assert q.tracked() == 0


async def test_a_key_added_while_processing_keeps_the_foreground_if_any_add_was() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("k")
    key = await q.get()
    q.add("k", background=True)
    q.add("k")
    q.add("other", background=True)
    q.done(key)
    assert await drain(q) == ["k", "other"]
    q.add("k")
    key = await q.get()
    q.add("k", background=True)
    q.add("first")
    q.done(key)
    assert await drain(q) == ["first", "k"]
    assert q.tracked() == 0
