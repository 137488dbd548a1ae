"""kopf wiring, and nothing else: each handler hands its event to intake and queues the wakes.

Only ``@kopf.on.event`` is used, for ImageStreams and ImageTriggers: it never
writes to the watched objects (no diff-base annotation, no finalizer), which
matters because ImageStreams are not ours. The workloads and BuildConfigs we
write to are watched by ``watch.py``.

kopf does not tell handlers when it lists again after a "410 Gone", and a
listing carries no DELETED events for what vanished meanwhile (nor does its
first one, for what went between the start-up listing and kopf's own); so a
listed event (type None) schedules a sweep (``Sweeper``) that lists the
resource once more and drops from the index what is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import kopf

from imagestream_trigger.act.client import Api
from imagestream_trigger.api import IMAGESTREAM_RESOURCE, IMAGETRIGGER_RESOURCE, ApiResource
from imagestream_trigger.errors import ApiError
from imagestream_trigger.intake import IMAGETRIGGER, Intake, Wake
from imagestream_trigger.watch import list_each

log = logging.getLogger(__name__)

SWEEP_DELAY_S = 2.0


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: ``@kopf.on.event`` never reads one, and kopf would otherwise build
    one per event, a deep copy of the body (16% of the operator's CPU in a burst)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class Backoffs:
    """kopf's request retries: short, and never exhausted (an outage must not stop the
    operator); re-iterable, since kopf iterates it afresh for every request."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((0.25, 0.5, 1.0), itertools.repeat(1.5))


def connection_info(api: Api) -> kopf.ConnectionInfo:
    """kopf's login: the very credentials of our own client, so both reach one cluster."""
    c = api.credentials()
    return kopf.ConnectionInfo(
        server=c.server,
        ca_path=c.ca_file,
        insecure=not c.verify,
        scheme="Bearer" if c.token else None,
        token=c.token,
        certificate_path=c.cert_file,
        private_key_path=c.key_file,
    )


class Sweeper:
    """After kopf lists a resource, find what was deleted while it did not watch.

    kopf's first listing, just after ours, closes the gap between the two; a later one
    follows a "410 Gone". The first listed event of a kind schedules one sweep of it,
    ``delay`` later: a LIST of its objects, and intake drops from the index what the
    LIST lacks (of what was indexed before it was asked for). A relist of our own watch
    (``everything``) sweeps both kinds as well: what expires one resourceVersion (a
    compaction, an API server restart) expires them all, and kopf's listing of an empty
    result has no event to call us with.
    """

    def __init__(
        self,
        api: Api,
        intake: Intake,
        enqueue: Callable[[list[Wake]], None],
        *,
        selected: Callable[[str], bool],
        delay: float = SWEEP_DELAY_S,
    ) -> None:
        self.api = api
        self.intake = intake
        self.enqueue = enqueue
        self.selected = selected
        self.delay = delay
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[None]] = set()

    def everything(self) -> None:
        """Sweep both kopf-watched resources: our own watch just found its resourceVersion
        expired, and kopf's listing of an empty result gives no event to notice it by."""
        self.relisted("ImageStream", IMAGESTREAM_RESOURCE)
        self.relisted(IMAGETRIGGER, IMAGETRIGGER_RESOURCE)

    def relisted(self, kind: str, resource: ApiResource) -> None:
        if kind in self._pending:
            return
        loop = asyncio.get_running_loop()

        def start() -> None:
            del self._pending[kind]
            task = loop.create_task(self.sweep(kind, resource))
            self._running.add(task)  # a task nobody holds may be collected mid-flight
            task.add_done_callback(self._running.discard)

        self._pending[kind] = loop.call_later(self.delay, start)

    async def sweep(self, kind: str, resource: ApiResource) -> None:
        before = self.intake.known(kind)
        present = set()

        def listed(item: dict[str, Any]) -> None:
            meta = item.get("metadata") or {}
            namespace = str(meta.get("namespace") or "")
            if self.selected(namespace):
                present.add((namespace, str(meta.get("name") or "")))

        try:
            # Names are all a sweep needs: metadata only, not every ImageStream's
            # tag history again (at start-up this LIST follows our own full one).
            await list_each(self.api, resource, "", kind, listed, metadata_only=True)
        except ApiError as error:  # the next relist schedules another sweep
            log.warning("could not list %s to find deletions: %s", resource.plural, error)
            return
        self.enqueue(self.intake.forget_missing(kind, present, among=before))


def register(
    registry: kopf.OperatorRegistry,
    intake: Intake,
    enqueue: Callable[[list[Wake]], None],
    api: Api,
    sweeper: Sweeper,
    *,
    serves: Callable[[str], bool] = lambda namespace: True,
    on_stream_event: Callable[[str | None], None] = lambda type: None,
) -> None:
    """Attach every handler to ``registry`` (a fresh one per operator run)."""

    streams = IMAGESTREAM_RESOURCE

    @kopf.on.event(
        streams.group, streams.version, streams.plural, id="imagestream-events", registry=registry
    )
    async def stream_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        on_stream_event(type)
        enqueue(intake.stream(type, body))
        if type is None:
            sweeper.relisted("ImageStream", streams)

    triggers = IMAGETRIGGER_RESOURCE

    @kopf.on.event(
        triggers.group,
        triggers.version,
        triggers.plural,
        id="imagetrigger-events",
        registry=registry,
    )
    async def trigger_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        # Another shard's: not even indexed (the sweep never forgets what it never knew).
        if not serves(str(body.get("metadata", {}).get("namespace") or "")):
            return
        enqueue(intake.trigger(type, body))
        if type is None:
            sweeper.relisted(IMAGETRIGGER, triggers)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(api)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # We post our own Events (on transitions); kopf's would be about kopf.
        settings.posting.enabled = False
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.watching.server_timeout = 300
        # Memory: list large clusters in pages, and let a per-object worker go as soon as
        # its event is handled: an idle worker holds its object's last body, and kopf's
        # listing starts one per object (after 1 s, 5,000 ImageStreams held ~10 MB at start).
        settings.watching.chunk_size = 500
        settings.queueing.idle_timeout = 0.1
        # Back within seconds after an API outage, and never give up on a watch.
        settings.networking.error_backoffs = Backoffs()
        settings.watching.reconnect_backoff = 0.25
