"""Kubernetes Events on the objects we act on: where ``kubectl describe`` users look.

Events are best effort and never on the critical path: ``post`` only queues
one, and a background sender delivers it once the work queue is idle (or the
Event has waited ``HOLD_S``), so in a burst the writes go first and the API
server is not asked for an Event while a target still waits for its write. A
refused Event is logged, never allowed to fail the work it describes; if the
backlog grows past a bound (the API server is down), the oldest are dropped
with a log line rather than held in memory without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from imagestream_trigger.act.client import Api
from imagestream_trigger.act.writer import utcnow
from imagestream_trigger.errors import ApiError
from imagestream_trigger.index import ObjectRef

log = logging.getLogger(__name__)

COMPONENT = "imagestream-trigger"
# The API server refuses longer messages.
MAX_MESSAGE = 1024
BACKLOG = 10_000
SENDERS = 2
# The longest an Event waits for the work queue to go idle.
HOLD_S = 2.0
POLL_S = 0.02


class Events:
    def __init__(self, api: Api, *, busy: Callable[[], bool] = lambda: False) -> None:
        self.api = api
        self.instance = socket.gethostname()
        # Whether writes are still waiting (the work queue): Events go after them.
        self.busy = busy
        self._backlog: deque[tuple[float, dict[str, Any]]] = deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send_forever()) for _ in range(SENDERS)]

    async def stop(self, drain_s: float = 2.0) -> None:
        """Deliver what is queued (for at most ``drain_s``), then stop the senders."""
        deadline = asyncio.get_running_loop().time() + drain_s
        while self._backlog and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # a poll with a deadline: shutting down, once
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def post(self, ref: ObjectRef, kind: str, reason: str, message: str) -> None:
        now = utcnow()
        if len(self._backlog) >= BACKLOG:
            self._backlog.popleft()
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 1000 == 0:
                log.warning("dropped %d Events: the API server does not take them", self.dropped)
        self._backlog.append(
            (
                time.monotonic(),
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
                    "involvedObject": {
                        "apiVersion": ref.api_version,
                        "kind": ref.kind,
                        "name": ref.name,
                        "namespace": ref.namespace,
                        "uid": ref.uid,
                    },
                    "type": kind,
                    "reason": reason,
                    "message": message[:MAX_MESSAGE],
                    "source": {"component": COMPONENT},
                    "reportingComponent": COMPONENT,
                    "reportingInstance": self.instance,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                },
            )
        )
        self._ready.set()

    def normal(self, ref: ObjectRef, reason: str, message: str) -> None:
        self.post(ref, "Normal", reason, message)

    def warning(self, ref: ObjectRef, reason: str, message: str) -> None:
        self.post(ref, "Warning", reason, message)

    @property
    def pending(self) -> int:
        return len(self._backlog)

    async def _send_forever(self) -> None:
        while True:
            if not self._backlog:
                self._ready.clear()
                await self._ready.wait()
                continue
            queued_at, _ = self._backlog[0]
            if self.busy() and time.monotonic() - queued_at < HOLD_S:
                await asyncio.sleep(POLL_S)
                continue
            _, event = self._backlog.popleft()
            namespace = event["metadata"]["namespace"]
            try:
                await self.api.request(
                    "POST", f"/api/v1/namespaces/{namespace}/events", body=event, resource="events"
                )
            except ApiError as error:
                log.warning(
                    "could not post %s event %s on %s %s/%s: %s",
                    event["type"],
                    event["reason"],
                    event["involvedObject"]["kind"],
                    namespace,
                    event["involvedObject"]["name"],
                    error,
                )
