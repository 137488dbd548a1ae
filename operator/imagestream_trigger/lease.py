"""Leader election on a coordination.k8s.io/v1 Lease: one writer, warm standbys.

Every replica lists, watches and indexes; only the holder of the Lease writes.
A standby watches the Lease (no polling) and takes it when the holder releases
it or lets it expire, with its indexes already complete.

Never two writers: the holder may write until ``renew_deadline`` after the start
of its last successful renewal, by its own monotonic clock (``remaining``). A
standby takes the Lease only once it has seen the record unchanged for a whole
``duration``, by its own monotonic clock, counted from when it saw the change,
which is after that renewal started. As duration > renew_deadline, the old holder
has stopped before a new one starts, by a margin that covers clocks running at
slightly different rates and a write already on the wire. Wall-clock times are
written for people and never compared.

Why not ``kubernetes.aio.leaderelection``: it never releases the Lease on
shutdown (a rolling update would then wait out a whole duration) and times
with the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from imagestream_trigger.act.client import Api, api_path
from imagestream_trigger.errors import ApiError, ConflictError, NotFoundError

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "coordination.k8s.io", "v1", "leases"


@dataclass(frozen=True, slots=True)
class Timing:
    """client-go's three knobs. The defaults take over from a dead leader in at most
    duration + retry period (about 9 s), and renew once per retry period."""

    duration_s: float = 8.0
    renew_deadline_s: float = 5.0
    retry_period_s: float = 1.0

    def problems(self) -> list[str]:
        found = []
        if not self.renew_deadline_s < self.duration_s:
            found.append("the renew deadline must be shorter than the lease duration")
        if not 0 < self.retry_period_s < self.renew_deadline_s:
            found.append("the retry period must be positive and shorter than the renew deadline")
        return found


@dataclass(frozen=True, slots=True)
class Record:
    """What matters of a Lease. ``renewed`` is compared, never parsed: clocks differ."""

    holder: str
    duration_s: float
    renewed: str
    acquired: str
    transitions: int
    resource_version: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Record:
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_s=float(spec.get("leaseDurationSeconds") or 0),
            renewed=str(spec.get("renewTime") or ""),
            acquired=str(spec.get("acquireTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(meta.get("resourceVersion") or ""),
        )

    def same_term(self, other: Record | None) -> bool:
        return other is not None and (self.holder, self.renewed) == (other.holder, other.renewed)


class Step(StrEnum):
    Create = "Create"  # no Lease yet
    Take = "Take"  # released, or expired as seen from here
    Renew = "Renew"  # ours
    Wait = "Wait"  # someone else's, still valid


def next_step(record: Record | None, identity: str, unchanged_since: float, now: float) -> Step:
    """What to do about the Lease, given what was last seen of it and since when."""
    if record is None:
        return Step.Create
    if record.holder == identity:
        return Step.Renew
    if not record.holder or now - unchanged_since >= record.duration_s:
        return Step.Take
    return Step.Wait


def _how(step: Step, record: Record | None) -> str:
    """How a write of ``step`` makes the Lease ours, in words for the log."""
    if step is Step.Create or record is None:
        return "it did not exist"
    if step is Step.Renew:
        return "it was already ours"
    if not record.holder:
        return "it had been released"
    return f"{record.holder} had not renewed it for {record.duration_s:g}s"


def _older(seen: Record, known: Record) -> bool:
    """Whether ``seen`` is an earlier version of the Lease than ``known``. (Versions are
    opaque to clients in general; kube-apiserver's are etcd revisions, which only grow:
    anything else is never called older.)"""
    a, b = seen.resource_version, known.resource_version
    return a.isdigit() and b.isdigit() and int(a) < int(b)


def micro_time(moment: dt.datetime | None = None) -> str:
    """A MicroTime, as the Lease's time fields are."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    """Holds or waits for one Lease; ``on_lead``/``on_lose`` are called on transitions.

    ``remaining()`` is how long writing is still allowed (0: not the leader); the
    API client checks it before every write.
    """

    def __init__(
        self,
        api: Api,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing = Timing(),
        *,
        on_lead: Callable[[], None] = lambda: None,
        on_lose: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self.on_lead = on_lead
        self.on_lose = on_lose
        self.clock = clock
        self.record: Record | None = None
        self._changed_at = clock()
        self._valid_until = 0.0
        self._leading = False  # as last announced through on_lead / on_lose
        self._how = ""  # how the Lease came to be ours, for the log line on acquiring it
        self._seen = asyncio.Event()  # the watch saw the Lease change
        self._expiry: asyncio.TimerHandle | None = None
        self._released = False  # for good: a stopping replica never takes the Lease again
        self._path = api_path(GROUP, VERSION, PLURAL, namespace)

    def remaining(self) -> float:
        return max(0.0, self._valid_until - self.clock())

    @property
    def leading(self) -> bool:
        return self.remaining() > 0

    @property
    def how(self) -> str:
        """How the Lease last became ours ("it had been released", ...), as logged."""
        return self._how

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            while not self._released:
                await self.attempt()
                if self.leading:
                    await asyncio.sleep(self.timing.retry_period_s)
                else:
                    await self._wait_for_a_chance()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _wait_for_a_chance(self) -> None:
        """Until the Lease changes, or could have expired, as seen from here."""
        self._seen.clear()
        record = self.record
        if record is None or not record.holder:
            wait = self.timing.retry_period_s
        else:
            wait = max(0.0, self._changed_at + record.duration_s - self.clock())
            # A little later than the earliest moment, as client-go's jitter does, so
            # that standbys do not all try at the same instant.
            wait += random.uniform(0, self.timing.retry_period_s / 2)
        # asyncio.timeout, not wait_for: on 3.11, wait_for returns the inner result when a
        # cancellation arrives as the Lease changes, and the elector would not stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._seen.wait()

    async def attempt(self) -> bool:
        """One try to create, take or renew the Lease; whether it is ours afterwards."""
        if self._released:
            return False
        started = self.clock()
        try:
            try:
                body = await self.api.request(
                    "GET",
                    f"{self._path}/{self.name}",
                    resource=PLURAL,
                    request_timeout=self.timing.renew_deadline_s,
                )
                self._observe(body)
            except NotFoundError:
                self.record = None
            step = next_step(self.record, self.identity, self._changed_at, self.clock())
            if step is Step.Wait:
                self._lost("the Lease is held by " + (self.record.holder if self.record else "?"))
                return False
            self._how = _how(step, self.record)
            written = await self._write(step)
        except ConflictError:
            log.debug("lease %s/%s: another replica wrote first", self.namespace, self.name)
            return self.leading
        except ApiError as error:
            log.warning("lease %s/%s: %s", self.namespace, self.name, error)
            return self.leading
        self._observe(written)
        self._renewed(started)
        return self.leading

    async def _write(self, step: Step) -> Any:
        now = micro_time()
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.duration_s)),
            "renewTime": now,
        }
        if step is Step.Create:
            spec |= {"acquireTime": now, "leaseTransitions": 0}
            return await self.api.request(
                "POST",
                self._path,
                body={
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": spec,
                },
                resource=PLURAL,
                request_timeout=self.timing.renew_deadline_s,
                gated=False,
            )
        assert self.record is not None
        if step is Step.Take:
            spec |= {"acquireTime": now, "leaseTransitions": self.record.transitions + 1}
        else:
            spec |= {
                "acquireTime": self.record.acquired,
                "leaseTransitions": self.record.transitions,
            }
        return await self._put(spec)

    async def _put(self, spec: Mapping[str, Any]) -> Any:
        assert self.record is not None
        return await self.api.request(
            "PUT",
            f"{self._path}/{self.name}",
            body={
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    # Optimistic concurrency: of two replicas taking it, one gets a 409.
                    "resourceVersion": self.record.resource_version,
                },
                "spec": spec,
            },
            resource=PLURAL,
            request_timeout=self.timing.renew_deadline_s,
            gated=False,
        )

    async def release(self) -> None:
        """Give the Lease up at once (on SIGTERM), so a standby takes over now; for good."""
        self._released = True
        if not self.leading or self.record is None:
            self._lost("released")
            return
        # Writing stops before the release is sent: the next holder may start at once.
        self._lost("released")
        try:
            try:
                await self._put_released()
            except ConflictError:
                # A renewal whose task was cancelled on the way down may have landed all
                # the same, leaving our resourceVersion behind: read the Lease again and
                # release it if it is still ours (another holder's is not ours to touch).
                self._observe(
                    await self.api.request(
                        "GET",
                        f"{self._path}/{self.name}",
                        resource=PLURAL,
                        request_timeout=self.timing.renew_deadline_s,
                    )
                )
                if self.record is None or self.record.holder != self.identity:
                    return
                await self._put_released()
            log.info("released the lease %s/%s", self.namespace, self.name)
        except ApiError as error:
            log.warning("could not release the lease %s/%s: %s", self.namespace, self.name, error)

    async def _put_released(self) -> None:
        assert self.record is not None
        await self._put(
            {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(),
                "acquireTime": self.record.acquired,
                "leaseTransitions": self.record.transitions,
            }
        )

    # -- what was seen ---------------------------------------------------------------

    def _observe(self, body: Any) -> None:
        if not isinstance(body, Mapping):
            return
        record = Record.of(body)
        if self.record is not None and _older(record, self.record):
            # The watch can deliver an event from before our own write after that write's
            # answer: it must not read as someone else holding the Lease.
            return
        if not record.same_term(self.record):
            self._changed_at = self.clock()
        self.record = record
        if self._leading and record.holder != self.identity:
            self._lost(f"the Lease is now held by {record.holder or 'nobody'}")

    def _renewed(self, started: float) -> None:
        if self._released:
            # A renewal sent before the release and answered after it: the release has
            # handed the Lease over (or will, past the conflict this renewal causes), and
            # a released replica must never write or start its workers again.
            return
        self._valid_until = started + self.timing.renew_deadline_s
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(
            self.timing.renew_deadline_s - (self.clock() - started) + 0.001, self._check_expiry
        )
        if not self._leading:
            self._leading = True
            log.info(
                "acquired the lease %s/%s as %s (%s): this replica writes now",
                self.namespace,
                self.name,
                self.identity,
                self._how,
            )
            self.on_lead()

    def _check_expiry(self) -> None:
        if not self.leading:
            self._lost(f"not renewed within {self.timing.renew_deadline_s:g}s")

    def _lost(self, why: str) -> None:
        self._valid_until = 0.0
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._leading:
            self._leading = False
            log.warning(
                "lost the lease %s/%s (%s): this replica stopped writing",
                self.namespace,
                self.name,
                why,
            )
            self.on_lose()

    # -- the watch ------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Follow the Lease, so a release or a takeover is seen at once, at no cost."""
        while True:
            try:
                listed = await self.api.request(
                    "GET", self._path, resource=PLURAL, request_timeout=30
                )
                for item in listed.get("items") or []:
                    if (item.get("metadata") or {}).get("name") == self.name:
                        self._observe(item)
                version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                async for event in self.api.watch(
                    self._path, resource_version=version, resource=PLURAL
                ):
                    obj = event.get("object") or {}
                    if (obj.get("metadata") or {}).get("name") != self.name:
                        continue
                    if event.get("type") == "DELETED":
                        self.record = None
                        self._changed_at = self.clock()
                    elif event.get("type") in ("ADDED", "MODIFIED"):
                        self._observe(obj)
                    self._seen.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: watch again shortly
                log.debug("lease watch: %s", error)
            await asyncio.sleep(self.timing.retry_period_s)
