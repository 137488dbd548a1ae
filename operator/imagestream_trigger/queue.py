"""A work queue of keys with client-go's semantics: deduplicated, per-key backoff.

* A key added while it waits in the queue is merged with it: a burst of events
  for one ImageTrigger becomes one reconcile.
* A key added while a worker processes it is queued again once that worker is
  done (never two workers on one key).
* A failed key comes back after its own exponential backoff (1 s doubling to
  5 min, with jitter), reset by a success (``forget``).
* Two lanes: keys added as ``background`` (the full passes at start-up, after a
  takeover and at each resync) go after every other key, so a tag that moves
  during a full pass is not served after thousands of keys that need nothing. A
  background key added again in the foreground moves up.

It knows keys only, never what they stand for; no I/O beyond the event loop's
timers.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down: workers stop."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        jitter: float = 0.2,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self._rng = rng
        self._queue: deque[K] = deque()
        self._background: deque[K] = deque()
        # The lane each waiting key sits in (a background entry of a key that moved up
        # is left in its deque and skipped).
        self._lane: dict[K, bool] = {}  # key -> in the background lane
        self._dirty: set[K] = set()  # wants (another) run
        self._again_in_background: set[K] = set()  # added meanwhile, background only
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        # Workers waiting for a key (all in one event loop: no lock needed).
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutdown = False

    # -- adding ----------------------------------------------------------------------

    def add(self, key: K, *, background: bool = False) -> None:
        """Queue ``key`` unless it is already waiting; once more if it is being processed.

        ``background``: after every key added without it."""
        if self._shutdown:
            return
        if key in self._dirty:
            if not background:
                self._again_in_background.discard(key)
                if self._lane.get(key):
                    self._lane[key] = False
                    self._queue.append(key)
                    self._wake()
            return
        self._dirty.add(key)
        if key in self._processing:
            if background:
                self._again_in_background.add(key)
            return
        self._enter(key, background)

    def _enter(self, key: K, background: bool) -> None:
        self._lane[key] = background
        (self._background if background else self._queue).append(key)
        self._wake()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds (an earlier pending timer for it wins)."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` again after its next backoff; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # The exponent is capped: a key failing for days must not overflow a float.
        delay = min(self.base_delay * 2.0 ** min(failures, 62), self.max_delay)
        delay *= 1 + self.jitter * (2 * self._rng() - 1)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts from the shortest backoff again."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def discard(self, key: K) -> None:
        """Drop every trace of a key whose object is gone (a queued run still happens)."""
        self._failures.pop(key, None)
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()

    # -- processing ------------------------------------------------------------------

    async def get(self) -> K:
        """The next key to process (marked as processing); raises ShutDown when stopped."""
        while not self._lane:
            if self._shutdown:
                raise ShutDown
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: pass the wake-up on
                else:
                    waiter.cancel()
                raise
        key = self._next()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def _next(self) -> K:
        while self._queue:
            key = self._queue.popleft()
            if self._lane.get(key) is False:
                del self._lane[key]
                return key
        while True:  # _lane is not empty: a live background entry is left
            key = self._background.popleft()
            if self._lane.get(key) is True:
                del self._lane[key]
                return key

    def done(self, key: K) -> None:
        """Processing of ``key`` ended; a key added meanwhile is queued now."""
        self._processing.discard(key)
        background = key in self._again_in_background
        self._again_in_background.discard(key)
        if key in self._dirty and not self._shutdown:
            self._enter(key, background)

    def shutdown(self) -> None:
        self._shutdown = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not self._shutdown:
                    return

    # -- introspection ---------------------------------------------------------------

    def __len__(self) -> int:
        """Keys waiting to be processed (not those waiting for their backoff)."""
        return len(self._lane)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def waiting(self) -> int:
        """Keys waiting for a delayed add (their backoff)."""
        return len(self._timers)

    def tracked(self) -> int:
        """Every key the queue holds state for: a leak check for tests."""
        return len(
            self._dirty
            | self._processing
            | set(self._failures)
            | set(self._timers)
            | set(self._lane)
            | self._again_in_background
        )
